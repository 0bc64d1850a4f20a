"""The re-save of a pruned checkpoint refuses one that lacks a weight, by name, and completes one that lacks only an
`_extra_state` entry (what ModelOpt's layer spec leaves out of every pruned checkpoint on a GPU)."""

import pickle
import shutil

import pytest
from interpreters import run_together

from helpers.models.checkpoints import is_nemo_checkpoint

WEIGHT = "module.decoder.layers.mlp.linear_fc2.weight"
EXTRA_STATE = "module.decoder.layers.self_attention.linear_qkv._extra_state"


def saved_keys(checkpoint) -> set[str]:
    from torch.distributed.checkpoint import FileSystemReader

    return set(FileSystemReader(checkpoint / "weights").read_metadata().state_dict_metadata)


def without(checkpoint, key: str, copy):
    """A copy of the NeMo checkpoint whose weights lack every entry of `key`, as if it had never been saved."""
    from torch.distributed.checkpoint import FileSystemReader

    shutil.copytree(checkpoint, copy)
    metadata = FileSystemReader(copy / "weights").read_metadata()
    kept = {name: entry for name, entry in metadata.state_dict_metadata.items() if not name.startswith(key)}
    metadata.state_dict_metadata = kept
    metadata.storage_data = {index: entry for index, entry in metadata.storage_data.items() if index.fqn in kept}
    (copy / "weights" / ".metadata").write_bytes(pickle.dumps(metadata))
    assert not any(name.startswith(key) for name in saved_keys(copy))
    return copy


@pytest.fixture(scope="module")
def resaved(small_nemo, tmp_path_factory):
    """Each case's output and how `python -m helpers.prune.resave` ended (both processes at once)."""
    root = tmp_path_factory.mktemp("resave")
    cases = {
        key: (without(small_nemo.pruned("depth"), key, root / name), root / f"{name}-resaved")
        for name, key in (("no-weight", WEIGHT), ("no-extra-state", EXTRA_STATE))
    }
    commands = {key: ("-m", "helpers.prune.resave", source, output) for key, (source, output) in cases.items()}
    ended = run_together(commands, check=False)
    return {key: (output, ended[key]) for key, (_source, output) in cases.items()}


def test_a_checkpoint_lacking_a_weight_is_refused_by_name_and_nothing_is_written(resaved):
    output, ended = resaved[WEIGHT]
    assert ended.returncode == 2, ended.stderr[-3000:]
    assert f"lacks 1 weight(s) of its model: {WEIGHT}." in ended.stderr, ended.stderr[-3000:]
    assert "fix: prune again" in ended.stderr
    assert not output.exists()


def test_a_checkpoint_lacking_only_an_extra_state_is_saved_whole(small_nemo, resaved):
    output, ended = resaved[EXTRA_STATE]
    assert ended.returncode == 0, ended.stderr[-3000:]
    assert is_nemo_checkpoint(output)
    assert saved_keys(output) == saved_keys(small_nemo.pruned("depth"))  # the lacking entry included
