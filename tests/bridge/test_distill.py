"""Distillation on the Megatron-Bridge route: real `torchrun -m helpers.distill.bridge` runs of small random Qwen3s.

Two students of one 2-layer teacher, as notebook 03 distills them (`bridge_steps`) on the tiny profile cut to 4 steps:
the depth student's run goes through, the width student's is killed after its first checkpoint and launched again.
"""

import contextlib
import json
import subprocess
import time
from dataclasses import replace

import psutil
import pytest
from safetensors.torch import load_file
from small_qwen3 import random_documents, small_qwen3, word_tokenizer

from helpers.distill import bridge, bridge_steps, runs
from helpers.errors import SettingError
from helpers.profiles import get_profile
from helpers.run.launch import child_env
from helpers.workspace import Workspace

TINY = get_profile("tiny")
PROFILE = replace(TINY, distill=replace(TINY.distill, num_tokens=4 * 4 * 128, interval=2))  # 4 steps of 4 x 128 tokens
# The killed run: 16 steps, so that after its first checkpoint seven more saves (each ~1 s on CPU) lie ahead of the
# kill. With 4 steps the run could finish before a test worker at the lowest CPU priority noticed the first one.
LONG = replace(PROFILE, distill=replace(PROFILE.distill, num_tokens=16 * 4 * 128))


def student(ws: Workspace, kind: str, tokenizer):
    """A 1-layer student: a random Qwen3 where notebook 02 writes the pruned one."""
    return small_qwen3(ws.pruned(kind), tokenizer, layers=1)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("bridge-distill")
    ws = Workspace(root=root, model_name="Qwen3-small", route="bridge")
    tokenizer = word_tokenizer(root / "tokenizer")
    small_qwen3(ws.teacher, tokenizer, layers=2)
    for kind in ("depth", "width"):
        student(ws, kind, tokenizer)
    random_documents(ws.data_prefix("train"))
    return ws


@pytest.fixture(scope="module")
def depth(ws):
    return bridge_steps.run_distillation(PROFILE, ws, "depth")


def test_the_kd_loss_falls_and_every_validation_is_recorded(ws, depth):
    curves = bridge_steps.curves(ws, ["depth"]).pivot(index="step", columns="tag", values="value")
    kd = curves["reduced_train_loss"].dropna()
    assert list(kd.index) == [1, 2, 3, 4] and kd[4] < kd[1]
    assert list(curves["val_loss"].dropna().index) == [0, 2, 4]  # before training, then every --eval_interval
    row = bridge_steps.summary(ws, ["depth"]).loc["depth-pruned"]
    assert row["val_loss before KD (step 0)"] == round(curves["val_loss"][0], 4)
    assert bridge_steps.step_seconds(ws, ["depth"])["depth"] > 0


def test_the_best_checkpoint_is_the_validated_one_with_the_lowest_loss(ws, depth):
    saved = bridge.checkpoints(bridge_steps.run_dir(ws, "depth"))
    assert [c.step for c in saved] == [2, 4]
    best = min(saved, key=lambda c: c.val_loss)
    assert depth == {"checkpoint": str(best.path), "val_loss": best.val_loss, "step": best.step}
    assert (bridge_steps.run_dir(ws, "depth") / "best").resolve() == best.path.resolve()


def test_a_finished_run_is_reused_and_a_changed_setting_refused(ws, depth, capsys):
    assert bridge_steps.run_distillation(PROFILE, ws, "depth") == depth
    assert "finished: all 4 steps are done" in capsys.readouterr().out
    flags = bridge_steps.flags(PROFILE, ws, "depth")
    for name, value in (("lr", "0.01"), ("train_iters", "3")):
        changed = list(flags)
        changed[changed.index(f"--{name}") + 1] = value
        with pytest.raises(SettingError) as refused:
            bridge.check(bridge.parser().parse_args(changed))
        assert refused.value.problems[0].setting == f"--{name}" and "--overwrite" in refused.value.problems[0].fix


def test_the_rules_speak_this_entry_points_flags(ws):
    flags = bridge_steps.flags(PROFILE, ws, "depth", overwrite=True)
    flags[flags.index("--eval_interval") + 1] = "9"
    with pytest.raises(SettingError) as refused:
        bridge.check(bridge.parser().parse_args(flags))
    assert refused.value.problems[0].setting == "--eval_interval" and "--train_iters 4" in refused.value.problems[0].problem


def test_a_killed_run_resumes_from_its_last_complete_checkpoint(ws):
    run_dir, log = bridge_steps.run_dir(ws, "width"), ws.logs / "killed.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        launcher = subprocess.Popen(bridge_steps.command(LONG, ws, "width"), stdout=output, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True)
    deadline = time.monotonic() + 300
    while not bridge.checkpoints(run_dir):
        assert launcher.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    processes = [psutil.Process(launcher.pid), *psutil.Process(launcher.pid).children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()  # as a lost machine stops them: no clean-up
    psutil.wait_procs(processes)
    launcher.wait()
    state = runs.state(run_dir, 16, bridge.LAYOUT)
    assert state.status == "partial", state
    killed_at = bridge.checkpoints(run_dir)[-1].step
    best = bridge_steps.run_distillation(LONG, ws, "width")
    resumed = (ws.logs / "03-distill-width.log").read_text()
    assert f"interrupted at step {killed_at} of 16: training resumes from there" in resumed
    assert "iteration        1/" not in resumed and f"iteration {killed_at + 1:8d}/" in resumed
    assert best["step"] % 2 == 0 and runs.state(run_dir, 16, bridge.LAYOUT).status == "finished"


def test_the_exported_students_give_the_checkpoints_logits(ws, depth):
    checks = bridge_steps.export_students(ws, kinds=("depth", "width"))  # the students this module distilled
    assert set(checks) == {"depth-distilled", "width-distilled"} and all(check.passed for check in checks.values())
    assert checks["depth-distilled"].max_abs_diff < 1e-4 and checks["depth-distilled"].dtype == "float32"
    exported = ws.exported("depth-distilled")
    assert json.loads((exported / "config.json").read_text())["num_hidden_layers"] == 1
    assert (exported / "tokenizer.json").read_bytes() == (ws.pruned("depth") / "tokenizer.json").read_bytes()
    before, after = load_file(ws.pruned("depth") / "model.safetensors"), load_file(exported / "model.safetensors")
    assert set(after) == set(before) and any(not after[name].equal(before[name]) for name in before)  # distilled weights


def test_a_checkpoint_its_trackers_name_before_it_is_complete_is_removed(tmp_path):
    folder = tmp_path / "checkpoints"
    for step in (2, 4):
        (folder / f"iter_{step:07d}").mkdir(parents=True)
        (folder / f"iter_{step:07d}" / "train_state.pt").write_text(f"state {step}")
    (folder / "iter_0000002" / "run_config.yaml").write_text("{}")
    (folder / "latest_train_state.pt").write_text("state 4")  # killed between the trackers and run_config.yaml
    (folder / "latest_checkpointed_iteration.txt").write_text("4")
    assert bridge.remove_unfinished(tmp_path) == [folder / "iter_0000004"]
    assert [c.step for c in bridge.checkpoints(tmp_path)] == [2] and not (folder / "iter_0000004").exists()
    assert (folder / "latest_train_state.pt").read_text() == "state 2" and (folder / "latest_checkpointed_iteration.txt").read_text() == "2"
