"""Every distillation setting that cannot work is refused by `python -m helpers.distill` before a model loads."""

import dataclasses
import json

import pytest
import torch
from fakes import TINY, command_line, nemo_checkpoint

from helpers.distill import cli, runs

BASE = {
    "--name": "run", "--devices": "2", "--max_steps": "12", "--warmup_steps": "2", "--gbs": "4", "--mbs": "2",
    "--seq_length": "128", "--precision": "32", "--val_check_interval": "2", "--limit_val_batches": "4", "--log_interval": "2",
}  # fmt: skip


def argv(models, log_dir, **changes):
    flags = {**BASE, "--model_path": str(models["student"]), "--teacher_path": str(models["teacher"]),
             "--data_paths": str(models["data"]), "--log_dir": str(log_dir)}  # fmt: skip
    return command_line(flags | {f"--{name}": value for name, value in changes.items()})


@pytest.fixture(scope="module")
def odd_students(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    return {
        "vocabulary": nemo_checkpoint(root / "vocab", dataclasses.replace(TINY, num_layers=4, vocab_size=2048)),
        "tokenizer": nemo_checkpoint(root / "tok", dataclasses.replace(TINY, num_layers=4), tokenizer_text="another"),
    }


def kd_config(tmp_path, text):
    path = tmp_path / "kd.yaml"
    path.write_text(text)
    return str(path)


REFUSED = {
    "gbs not divisible by mbs x data parallel": ({"gbs": "6"}, "--gbs: 6 is not divisible by --mbs 2 x 2 data-parallel rank(s)"),
    "tp x pp that does not divide the devices": ({"tp_size": "3"}, "--tp_size: tp 3 x pp 1 x cp 1 = 3 does not divide the 2 processes"),
    "pp that does not divide the layers": ({"pp_size": "4", "devices": "4"}, "--pp_size: 4 does not divide the teacher's 6 layers"),
    "bf16 without a GPU": ({"precision": "bf16-mixed"}, "--precision: bf16-mixed needs a GPU"),
    "unknown precision": ({"precision": "fp8"}, "--precision: 'fp8' is not one of"),
    "missing data": ({"data_paths": "/nowhere/data"}, "--data_paths: /nowhere/data.bin / .idx not found"),
    "warmup longer than the run": ({"warmup_steps": "20"}, "--warmup_steps: 20 is outside 0..--max_steps 12"),
    "no validation within the run": ({"val_check_interval": "20"}, "--val_check_interval: 20 is beyond --max_steps 12"),
    "min_lr above lr": ({"lr": "1e-4", "min_lr": "1e-3"}, "--min_lr: 0.001 is not between 0 and --lr 0.0001"),
    "zero steps": ({"max_steps": "0"}, "--max_steps: 0 must be positive"),
    "nodes the global batch cannot share": ({"num_nodes": "2"}, "use a multiple of 8, or a node count that divides --gbs 4 evenly: --num_nodes 1"),
    "a timeout that is not positive": ({"distributed_timeout_minutes": "0"}, "--distributed_timeout_minutes: 0.0 must be positive"),
}
if not torch.cuda.is_available():
    REFUSED["tensor parallel on CPU"] = ({"tp_size": "2"}, "--tp_size: tensor parallelism turns on sequence parallelism")


@pytest.mark.parametrize("changes, message", REFUSED.values(), ids=REFUSED.keys())
def test_bad_settings_are_refused_and_nothing_is_written(models, tmp_path, capsys, changes, message):
    assert cli.main(argv(models, tmp_path / "logs", **changes)) == 2
    error = capsys.readouterr().err
    assert message in error and "fix:" in error
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("odd, message", [("vocabulary", "the student's vocabulary has 2048 rows, the teacher's 1024"),
                                          ("tokenizer", "the student and the teacher carry different tokenizers")])  # fmt: skip
def test_student_and_teacher_must_share_the_tokenizer(models, odd_students, tmp_path, capsys, odd, message):
    assert cli.main(argv(models, tmp_path / "logs", model_path=str(odd_students[odd]))) == 2
    assert f"--model_path: {message}" in capsys.readouterr().err


def test_student_must_be_smaller_than_the_teacher(models, tmp_path, capsys):
    swapped = argv(models, tmp_path / "logs", model_path=str(models["teacher"]), teacher_path=str(models["student"]))
    assert cli.main(swapped) == 2
    assert "is not smaller than the teacher" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("logit_layers: [output_layer, output_layer]\ntemperature: 2\n", "unknown keys ['temperature']"),
    ("intermediate_layer_pairs:\n  - [decoder.layers.4.mlp, decoder.layers.5.mlp]\n", "'decoder.layers.4.mlp': the student has layers 0..3"),
    ("kd_loss_scale: 0\n", "kd_loss_scale must be positive"),
    ("logit_layers: [a\n", "is not valid YAML"),
])  # fmt: skip
def test_kd_config_is_checked(models, tmp_path, capsys, text, message):
    assert cli.main(argv(models, tmp_path / "logs", kd_config=kd_config(tmp_path, text))) == 2
    assert message in capsys.readouterr().err


def test_valid_settings_pass(models, tmp_path):
    good = "logit_layers: [output_layer, output_layer]\nintermediate_layer_pairs:\n  - [decoder.layers.3.mlp, decoder.layers.5.mlp]\nskip_lm_loss: true\nkd_loss_scale: 1.0\n"
    args = cli.parser().parse_args(argv(models, tmp_path / "logs", kd_config=kd_config(tmp_path, good)))
    assert cli.check(args).status == "new"


def finished_run(models, log_dir):
    """The run of BASE's settings, finished: its checkpoints of steps 10 and 12 and its record."""
    args = cli.parser().parse_args(argv(models, log_dir))
    run_dir = log_dir / "run"
    for loss, step, last in ((7.5, 9, ""), (7.4, 11, ""), (7.4, 11, "-last")):
        name = f"run--val_loss={loss:.4f}-step={step}-consumed_samples={4 * (step + 1)}.0{last}"
        nemo_checkpoint(run_dir / "checkpoints" / name, TINY)
    runs.save_settings(run_dir, cli.settings(args))
    return run_dir


def test_a_run_with_other_settings_is_not_resumed(models, tmp_path, capsys):
    finished_run(models, tmp_path / "logs")
    assert cli.main(argv(models, tmp_path / "logs", lr="2e-3", max_steps="8")) == 2
    refusal = capsys.readouterr().err
    assert "--lr: 0.002, but the run in" in refusal and "was started with 0.0001" in refusal
    assert "--max_steps: 8, but the run in" in refusal and "a run's budget may only grow" in refusal
    assert cli.check(cli.parser().parse_args(argv(models, tmp_path / "logs", lr="2e-3", overwrite=""))).status == "new"


def test_a_finished_run_is_reported_not_retrained(models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun would set it
    run_dir = finished_run(models, tmp_path / "logs")
    assert cli.main(argv(models, tmp_path / "logs")) == 0
    out = capsys.readouterr().out
    assert "finished: all 12 steps are done" in out and "a larger --max_steps continues it at --min_lr" in out
    assert json.loads((run_dir / "best.json").read_text())["step"] == 12


def test_a_run_still_going_is_not_started_twice(models, tmp_path, capsys):
    from helpers.run.outputs import exclusive

    with exclusive(tmp_path / "logs" / "run", "--name"):  # as a torchrun left going by a kernel restart
        assert cli.main(argv(models, tmp_path / "logs")) == 2
    assert "--name: another process is still writing" in capsys.readouterr().err
    assert not (tmp_path / "logs" / "run").exists()


def test_a_run_with_another_loss_is_another_run(tmp_path):
    from helpers.distill import steps
    from helpers.profiles import get_profile
    from helpers.workspace import Workspace

    profile, ws = get_profile("tiny"), Workspace(root=tmp_path, model_name="Qwen3")
    logits_only = cli.parser().parse_args(steps.flags(profile, ws, "depth"))
    intermediate = cli.parser().parse_args(steps.flags(profile, ws, "depth", kd_config=tmp_path / "kd_middle.yaml"))
    assert logits_only.name == steps.run_name(ws, "depth") and intermediate.name == f"{logits_only.name}-kd_middle"
