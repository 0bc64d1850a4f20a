"""What a launching cell shows: the recorded output of every step of a tiny series (trimmed, in recorded_logs/)
keeps its meaningful lines and warnings on screen and its noise in the log only, and so does a line no rule knows."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.run.cell_output import PACKAGE, STACK_IMPORTED, Kind, Screen, classify
from helpers.run.launch import python_module, run

LOGS = Path(__file__).parent / "recorded_logs"

# Per recorded step: what its cell must show, as (text, number of lines that contain it).
MEANINGFUL = {
    "01-import.log": [("NeMo imported in 3.1 s", 1), ("Wrote the NeMo checkpoint to ", 1), ("Logits check, Hugging Face vs NeMo (Qwen3-tiny-nemo): PASS", 1)],
    "02-prune-depth.log": [
        ("restoring Qwen3-tiny-nemo", 1), ("] pruning", 1), ("Validation DataLoader 0: 100%|██████████| 8/8", 1),
        ("val_loss", 1), ("Layerwise scores for depth pruning: {1: 7.78", 1), ("Dropping layers [5, 6]", 1),
        ("saving the pruned model", 1), ("Pruned checkpoint: /tmp/s_bf16/tiny/models/Qwen3-tiny-nemo-depth-pruned", 1),
    ],
    "02-prune-width.log": [("] pruning", 1), ("val_loss", 1), ("saving the pruned model", 1), ("Pruned checkpoint: ", 1)],
    "02-export.log": [("Wrote the Hugging Face checkpoint to ", 2), ("Logits check, Hugging Face vs NeMo (", 2), ("checkpoint loaded in", 6)],
    "02-losses.log": [(": next-token loss ", 3)],
    "03-distill-depth.log": [
        ("Run /tmp/s_bf16/tiny/distill/Qwen3-tiny-nemo-depth-pruned-distill: no checkpoint yet", 1), ("loading the teacher", 1),
        ("val_loss after step", 3), ("Training epoch 0, iteration", 12), ("reduced_train_loss", 12),
        ("checkpoint saved in", 4), ("Best checkpoint (lowest val_loss 7.3928, step 12)", 1),
    ],
    "03-distill-width.log": [("val_loss after step", 3), ("Training epoch 0, iteration", 12), ("Best checkpoint (", 1)],
    "04-export.log": [("Wrote the Hugging Face checkpoint to ", 2), ("Logits check, Hugging Face vs NeMo (", 2)],
}  # fmt: skip
# What no cell may show: NeMo's info, the libraries' notices, torchrun's banner, the model's module tree,
# Megatron's gradient buckets, the checkpoint tree, NeMo's save to the temporary folder.
NOISE = (
    "[NeMo I", "[NeMo W", "OMP_NUM_THREADS", "GPU available", "bitsandbytes", "OneLogger", "pynvml", "DEPRECATED",
    "transformer_engine", "distributed_backend", "TransformerBlock", "RMSNorm(", "Params for bucket", "decoder.layers",
    "Trainable params", "nemo_tokenizer", "✓", ".partial", "Trainer.fit", "saving model to",
)  # fmt: skip


def shown(lines, clock=None) -> str:
    """What a cell shows of these lines; the command's clock advances a second each time it is read."""
    ticks = iter(range(10**6))
    written = []
    screen = Screen(write=written.append, clock=clock or (lambda: next(ticks)))
    for line in lines:
        screen(line)
    screen.finish(Path("logs/step.log"))
    return "".join(written)


def screen_lines(text: str) -> list[str]:
    """The lines a notebook displays: a carriage return starts the line over."""
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n") if line]


@pytest.mark.parametrize("name", MEANINGFUL)
def test_each_steps_cell_shows_its_meaningful_lines_and_none_of_the_noise(name):
    log = (LOGS / name).read_text().splitlines(keepends=True)
    lines = screen_lines(shown(log))
    for text, count in MEANINGFUL[name]:
        assert sum(text in line for line in lines) == count, (text, lines)
    assert not [line for line in lines if any(noise in line for noise in NOISE)]
    assert lines[-1].startswith("[") and f"done; full output ({len(log)} lines" in lines[-1] and lines[-1].endswith("logs/step.log")
    assert len(lines) <= 40


def test_a_bar_updates_in_place_and_a_line_glued_to_it_is_classified_on_its_own():
    text = shown([
        "Validation DataLoader 0:  50%|█████     | 4/8 [00:04<00:04,  0.99it/s]\n",
        "Validation DataLoader 0: 100%|██████████| 8/8 [00:05<00:00,  1.45it/s][NeMo W 2026-12-06 21:40:34 nemo_logging:405] a notice\n",
        "val_loss after step 6: 7.3959\n",
    ])  # fmt: skip
    assert text.startswith("Validation DataLoader 0:  50%|█████     | 4/8 [00:04<00:04,  0.99it/s]\rValidation DataLoader 0: 100%")
    assert "1.45it/s]\nval_loss after step 6: 7.3959\n" in text and "a notice" not in text
    assert "(3 lines, 1 of them warnings of the libraries)" in text


def test_errors_and_the_warnings_to_act_on_are_shown_once_however_many_ranks_print_them():
    ours = f"{PACKAGE}/distill/cli.py:12: UserWarning: the run's data changed"
    lines = [
        "[rank0]: Traceback (most recent call last):", "[rank0]:   File \"x.py\", line 3, in <module>",
        "[rank0]: FloatingPointError: the distillation loss is nan at step 3", "[rank1]: FloatingPointError: the distillation loss is nan at step 3",
        "E1206 21:40:17.122000 1300 torch/distributed/elastic/multiprocessing/api.py:882] failed (exitcode: 1) local_rank: 0",
        "[NeMo E 2026-12-06 21:40:28 nemo_logging:405] could not write the checkpoint", ours,
        "<frozen runpy>:128: RuntimeWarning: 'helpers.prune.resave' found in sys.modules after import of package 'helpers.prune'",
        "[NeMo W 2026-12-06 21:40:28 validation:372] Some keys found in the checkpoint are missing in the provided sharded state dict. ",
        "Missing keys (for all ranks): {'decoder.layers.0.mlp.linear_fc1.weight'}. ",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB",
    ]  # fmt: skip
    assert [classify(line).kind for line in lines] == [Kind.LOG, Kind.LOG] + [Kind.ERROR] * 4 + [Kind.WARNING] * 4 + [Kind.ERROR]
    text = shown(lines)
    assert text.count("FloatingPointError: the distillation loss is nan at step 3") == 1 and ours in text
    assert "Missing keys (for all ranks)" in text and "Traceback" not in text  # its body is in the tail `run` raises with


def test_a_line_no_rule_knows_goes_to_the_log_only(tmp_path, capsys):
    unknown = ["Initializing the frobnicator: 42 widgets", "[NeMo I 2026-12-06 21:40:28 new_module:12] Something new"]
    assert [classify(line).kind for line in unknown] == [Kind.LOG, Kind.LOG]
    script = tmp_path / "step.py"
    script.write_text("\n".join(f"print({line!r})" for line in [*unknown, "Pruned checkpoint: /tmp/student"]))
    run([sys.executable, script], tmp_path / "logs" / "step.log")
    out = capsys.readouterr().out
    assert not any(line in out for line in unknown) and "\nPruned checkpoint: /tmp/student\n" in out
    assert (tmp_path / "logs" / "step.log").read_text().splitlines()[:2] == unknown
    assert f"done; full output (3 lines): {tmp_path / 'logs' / 'step.log'}\n" in out


def test_a_phase_shows_the_minutes_and_seconds_since_the_command_began_and_start_up_shows_once():
    seconds = iter([0, 75, 80, 81])
    text = shown([STACK_IMPORTED.format(stack="NeMo", seconds=74.4), "[NeMo I 2026-12-06 21:40:28 pruner:111] Pruning model...", STACK_IMPORTED.format(stack="NeMo", seconds=6.0)], clock=lambda: next(seconds))  # fmt: skip
    assert text.splitlines() == ["[1:15] NeMo imported in 74.4 s", "[1:20] pruning", "[1:21] done; full output (3 lines): logs/step.log"]


# Modules whose prints reach a launched command's output (the entry points' and what they print through).
COMMAND_MODULES = (
    "conversion/cli.py", "prune/cli.py", "prune/resave.py", "distill/cli.py", "distill/callbacks.py", "evaluate/losses.py",
    "run/outputs.py", "data/indexed.py",
)  # fmt: skip


def text(node: ast.expr) -> str:
    """The text an expression of a message makes, each value it formats written as 1."""
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(text(part) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return text(node.left) + text(node.right)
    return "1"


def printed(path: Path) -> list[str]:
    """The first line of every message `print` writes in a module."""
    calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"]
    return [text(call.args[0]).splitlines()[0] for call in calls if call.args]


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_every_message_a_command_of_ours_prints_is_shown(module):
    messages = printed(PACKAGE / module)
    assert messages and all(classify(message).kind == Kind.RESULT for message in messages), [
        message for message in messages if classify(message).kind != Kind.RESULT
    ]


def test_the_re_save_launches_without_pythons_warning_about_its_module():
    result = subprocess.run(python_module("helpers.prune.resave", "--help"), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m helpers.prune.resave")
    assert "found in sys.modules" not in result.stderr, result.stderr
