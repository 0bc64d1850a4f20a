"""Minitron pruning on the Megatron-Bridge route: students of the target shapes, cut where Minitron ranked lowest,
exported to Hugging Face with the pruned model's logits, and every bad setting refused before a model loads."""

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from small_hf import data_prefix, small_hf_qwen3, tensors

from helpers import prune as pruning
from helpers.models.checkpoints import architecture
from helpers.profiles import get_profile
from helpers.prune import bridge, bridge_steps, importance, search
from helpers.run.launch import torchrun
from helpers.workspace import Workspace

CALIBRATION = ["--calib_num_samples", "8", "--calib_mbs", "2", "--seq_length", "64"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("bridge-prune")
    return {"model": small_hf_qwen3(root, layers=4), "data": data_prefix(root), "root": root}


def prune(teacher, output, *flags, pp_size=2):
    """`helpers.prune.bridge` on `pp_size` processes (torchrun) or one (python -m)."""
    common = ["--pp_size", pp_size, "--hf_model_name_or_path", teacher["model"], "--output_hf_path", output,
              "--data_paths", teacher["data"], "--index_mapping_dir", teacher["root"] / "index", *CALIBRATION, *flags]  # fmt: skip
    command = torchrun(pp_size, "helpers.prune.bridge", *common) if pp_size > 1 else [sys.executable, "-m", "helpers.prune.bridge", *map(str, common)]
    return subprocess.run(command, check=False, capture_output=True, text=True)


@pytest.fixture(scope="module")
def depth(teacher):
    output = teacher["root"] / "depth"
    done = prune(teacher, output, "--prune_export_config", '{"num_layers": 2}')
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return output, done.stdout


@pytest.fixture(scope="module")
def width(teacher):
    output = teacher["root"] / "width"
    done = prune(teacher, output, "--prune_export_config", '{"hidden_size": 64, "ffn_hidden_size": 128}')
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return output, done.stdout


SEARCH = {"params": 850_000, "channel_divisor": 32, "top_k": 2, "score_num_samples": 2}  # 6 of 8 combinations fit


@pytest.fixture(scope="module")
def searched(teacher):
    output = teacher["root"] / "nas"
    done = prune(teacher, output, "--prune_target_params", str(SEARCH["params"]), "--prune_score_func", "val_loss", "--score_data_path",
                 teacher["data"], "--score_num_samples", "2", "--ss_channel_divisor", "32", "--top_k", "2")  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return output, done.stdout


def test_a_search_exports_the_best_scored_candidate_under_the_budget(searched):
    output, log = searched
    record = search.load(output)
    assert [c["params"] for c in record["scored"]] == [821_376, 772_224] and record["chosen"] == max(record["scored"], key=lambda c: c["score"])["config"]
    assert {name: getattr(architecture(output), name) for name in record["chosen"]} == record["chosen"]
    assert "[BEST SUBNET]" in log and importance.load(output)["targets"] == {"params": SEARCH["params"]}


def layer(weights, number):
    """The weights of one (1-indexed) layer, by their names within the layer."""
    prefix = f"model.layers.{number - 1}."
    return {name.removeprefix(prefix): w for name, w in weights.items() if name.startswith(prefix)}


def test_depth_pruning_keeps_the_highest_ranked_layers_on_two_pipeline_stages(teacher, depth):
    output, log = depth
    assert architecture(output).as_dict() == {**architecture(teacher["model"]).as_dict(), "num_layers": 2}
    record = importance.load(output)
    scores = record["layers"]
    assert sorted(scores) == [1, 2, 3, 4] and all(score > 0 for score in scores.values())
    assert record["dropped_layers"] == sorted(sorted(scores, key=scores.get)[:2])
    kept = [number for number in range(1, 5) if number not in record["dropped_layers"]]
    student, original = tensors(output), tensors(teacher["model"])
    for new, old in enumerate(kept, 1):  # the student's layers are the teacher's kept ones, unchanged
        assert all(torch.equal(w, layer(original, old)[name]) for name, w in layer(student, new).items())
    assert "Logits check, pruned Megatron-Core model vs its Hugging Face export: PASS" in log


def test_width_pruning_keeps_the_most_important_channels(teacher, width):
    output, log = width
    assert architecture(output).as_dict() == {**architecture(teacher["model"]).as_dict(), "hidden_size": 64, "ffn_hidden_size": 128}
    record = importance.load(output)
    assert sorted(record["layers"]) == [1, 2, 3, 4] and record["dropped_layers"] == []
    assert len(record["hidden_size"]) == 128 and {len(v) for v in record["ffn_hidden_size"].values()} == {256}
    assert sorted(record["ffn_hidden_size"]) == [1, 2, 3, 4]
    embedding, original = tensors(output)["model.embed_tokens.weight"], tensors(teacher["model"])["model.embed_tokens.weight"]
    top = set(torch.tensor(record["hidden_size"]).argsort(descending=True)[:64].tolist())
    kept = {next(j for j in range(128) if torch.equal(original[:, j], embedding[:, i])) for i in range(64)}
    assert kept == top
    assert "Logits check, pruned Megatron-Core model vs its Hugging Face export: PASS" in log


def test_dropping_named_layers_in_one_process(teacher, tmp_path):
    output = tmp_path / "dropped"
    done = prune(teacher, output, "--drop_layers", "2", "3", pp_size=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert architecture(output).num_layers == 2 and importance.load(output)["dropped_layers"] == [2, 3]
    student, original = tensors(output), tensors(teacher["model"])
    assert all(torch.equal(w, layer(original, 4)[name]) for name, w in layer(student, 2).items())


REFUSED = {
    "off ModelOpt's grid": (["--prune_export_config", '{"hidden_size": 96}'], "--prune_export_config hidden_size: 96 is not a multiple of 64"),
    "larger than the model": (["--prune_export_config", '{"num_layers": 6}'], "--prune_export_config num_layers: 6 is larger than the model's 4"),
    "query groups": (["--prune_export_config", '{"num_attention_heads": 2, "num_query_groups": 2}'], "ModelOpt prunes query groups no longer"),
    "unknown size": (["--prune_export_config", '{"vocab_size": 256}'], "['vocab_size']: not sizes this series prunes"),
    "samples and micro batch": (["--prune_export_config", '{"num_layers": 2}', "--calib_mbs", "3"], "--calib_num_samples: 8 is not divisible by --calib_mbs 3"),
    "stages and layers": (["--prune_export_config", '{"num_layers": 2}', "--pp_size", "3"], "--pp_size: 4 layers do not split evenly into 3"),
    "layers that do not exist": (["--drop_layers", "5"], "--drop_layers: layers [5] do not exist"),
}


@pytest.mark.parametrize("flags, message", REFUSED.values(), ids=REFUSED.keys())
def test_bad_settings_are_refused_before_loading(teacher, tmp_path, capsys, flags, message):
    output = tmp_path / "pruned"
    argv = ["--hf_model_name_or_path", str(teacher["model"]), "--output_hf_path", str(output), "--data_paths", str(teacher["data"]), *CALIBRATION, *flags]
    assert bridge.main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "fix:" in error
    assert not output.exists()


def test_an_existing_student_is_kept_unless_overwrite(teacher, depth, capsys):
    argv = ["--hf_model_name_or_path", str(teacher["model"]), "--output_hf_path", str(depth[0]), "--prune_export_config", '{"num_layers": 2}',
            "--data_paths", str(teacher["data"]), *CALIBRATION]  # fmt: skip
    assert bridge.main(argv) == 2
    assert "--output_hf_path:" in capsys.readouterr().err
    bridge.check(bridge.parser().parse_args([*argv, "--overwrite"]))


def test_the_notebook_steps_reuse_finished_students_and_their_checks(teacher, depth, width, searched, tmp_path, capsys):
    ws = Workspace(root=tmp_path, model_name="small", route="bridge")
    ws.models.mkdir(parents=True)
    ws.teacher.symlink_to(teacher["model"])
    for kind, student in {"depth": depth, "width": width, "nas": searched}.items():
        ws.pruned(kind).symlink_to(student[0])
    tiny = get_profile("tiny")
    search_settings = dataclasses.replace(tiny.prune.search, **SEARCH)
    settings = dataclasses.replace(tiny.prune, depth_num_layers=2, width_hidden_size=64, width_ffn_hidden_size=128, drop_layers=(1, 4), search=search_settings)
    profile = dataclasses.replace(tiny, prune=settings)
    assert pruning.run_pruning(profile, ws, "depth") == ws.pruned("depth") and "Reusing" in capsys.readouterr().out
    assert bridge_steps.is_done(ws.pruned("width"), profile, ws, "width") and not bridge_steps.is_done(ws.pruned("depth"), profile, ws, "width")
    assert bridge_steps.is_done(ws.pruned("depth"), profile, ws, "drop") == (importance.load(depth[0])["dropped_layers"] == [1, 4])
    checks = bridge_steps.students(ws)
    assert bridge_steps.is_done(ws.pruned("nas"), profile, ws, "nas") and pruning.run_search(profile, ws) == ws.pruned("nas")
    assert set(checks) == {"depth-pruned", "width-pruned", "nas-pruned"} and all(check.passed and check.dtype == "float32" for check in checks.values())
    off_grid = dataclasses.replace(profile, prune=dataclasses.replace(settings, width_hidden_size=96))
    assert "--prune_export_config hidden_size: 96 is not a multiple of 64" in pruning.refusal(off_grid, ws, "width")
    for kind in ("depth", "width", "drop"):
        command = bridge_steps.command(profile, ws, kind)
        assert command[command.index("-m") + 1] == "helpers.prune.bridge"
        args = bridge.parser().parse_args(bridge_steps.flags(profile, ws, kind))
        assert (args.prune_export_config, args.drop_layers) == (
            (None, [1, 4]) if kind == "drop" else (json.loads(json.dumps(bridge_steps.targets(profile, kind))), None)
        )
