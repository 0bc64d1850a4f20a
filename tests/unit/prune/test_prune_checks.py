"""Every pruning setting that cannot work is refused by `python -m helpers.prune` before a model loads."""

import pytest
from fakes import command_line

from helpers.models.checkpoints import is_nemo_checkpoint
from helpers.prune import cli

BASE = {
    "--devices": "2", "--pp_size": "2", "--seq_length": "128", "--num_train_samples": "64", "--mbs": "4",
    "--target_num_layers": "4",
}  # fmt: skip


def argv(models, save, **changes):
    """The flags of a valid depth-pruning launch, with `changes` applied (None removes a flag)."""
    flags = {**BASE, "--restore_path": str(models["teacher"]), "--save_path": str(save), "--data_paths": str(models["data"])}
    return command_line(flags | {f"--{name}": value for name, value in changes.items()})


REFUSED = {
    "target larger than the model": ({"target_num_layers": "8"}, "--target_num_layers: 8 is larger than the model's 6"),
    "zero target": ({"target_ffn_hidden_size": "0"}, "--target_ffn_hidden_size: 0 is not a size"),
    "negative target": ({"target_hidden_size": "-64"}, "--target_hidden_size: -64 is not a size"),
    "ffn not a multiple of 64": ({"target_ffn_hidden_size": "600"}, "--target_ffn_hidden_size: 600 is not a multiple of 64"),
    "hidden not a multiple of 64": ({"target_hidden_size": "200"}, "use 192 or 256"),
    "heads without query groups": ({"target_num_attention_heads": "2"}, "--target_num_query_groups: --target_num_attention_heads needs it"),
    "query groups without heads": ({"target_num_query_groups": "1"}, "--target_num_attention_heads: --target_num_query_groups needs it"),
    "groups that do not divide heads": ({"target_num_attention_heads": "3", "target_num_query_groups": "2"}, "--target_num_query_groups: 2 query groups do not divide 3 heads"),
    "samples not divisible by mbs": ({"num_train_samples": "62"}, "--num_train_samples: 62 is not divisible by --mbs 4"),
    "tensor parallel with targets": ({"tp_size": "2", "devices": "4"}, "--tp_size: 2: Minitron pruning runs with tensor parallel size 1 only"),
    "pipeline stages that do not divide the layers": ({"pp_size": "4", "devices": "4"}, "--pp_size: 6 layers do not split evenly into 4 pipeline stages"),
    "devices that do not match the model shards": ({"devices": "4"}, "--devices: 4 device(s) x 1 node(s) = 4 processes"),
    "drop_layers out of range": ({"target_num_layers": None, "drop_layers": "0 7"}, "--drop_layers: layers [0, 7] do not exist"),
    "drop_layers repeated": ({"target_num_layers": None, "drop_layers": "2 2"}, "--drop_layers: layers [2] are listed more than once"),
    "drop_layers dropping every layer": ({"target_num_layers": None, "drop_layers": "1 2 3 4 5 6"}, "--drop_layers: would drop every layer"),
    "drop_layers with targets": ({"drop_layers": "2"}, "--drop_layers: cannot be combined with --target_* options"),
    "nothing to prune": ({"target_num_layers": None}, "targets: nothing to prune"),
    "missing calibration data": ({"data_paths": "/nowhere/wikitext"}, "--data_paths: /nowhere/wikitext.bin / .idx not found"),
}


@pytest.mark.parametrize("changes, message", REFUSED.values(), ids=REFUSED.keys())
def test_bad_settings_are_refused_and_nothing_is_written(models, tmp_path, capsys, changes, message):
    save = tmp_path / "pruned"
    assert cli.main(argv(models, save, **changes)) == 2
    error = capsys.readouterr().err
    assert message in error and "fix:" in error
    assert not save.exists() and list(tmp_path.iterdir()) == []


def test_valid_settings_pass_the_checks(models, tmp_path):
    for changes in ({}, {"target_num_layers": None, "drop_layers": "5 6", "tp_size": "2", "pp_size": "1"},
                    {"target_num_layers": None, "target_ffn_hidden_size": "576", "target_hidden_size": "192"},
                    {"pp_size": "4", "devices": "4", "num_layers_in_first_pipeline_stage": "3"}):  # fmt: skip
        cli.check(cli.parser().parse_args(argv(models, tmp_path / "pruned", **changes)))


def test_an_existing_checkpoint_is_kept_unless_overwrite(models, capsys):
    save = models["student"]
    assert cli.main(argv(models, save)) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err and is_nemo_checkpoint(save)
    cli.check(cli.parser().parse_args(argv(models, save, overwrite="")))


def test_restore_path_must_be_a_nemo_checkpoint(models, tmp_path, capsys):
    (tmp_path / "hf-model").mkdir()
    (tmp_path / "hf-model" / "config.json").write_text("{}")
    for restore in (tmp_path / "hf-model", tmp_path / "missing"):
        assert cli.main(argv(models, tmp_path / "pruned", restore_path=str(restore))) == 2
        assert "--restore_path:" in capsys.readouterr().err
    assert not (tmp_path / "pruned").exists()


def test_the_launch_must_match_devices(models, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert cli.main(argv(models, tmp_path / "pruned")) == 2
    assert "launch with torchrun --nproc_per_node 2" in capsys.readouterr().err
