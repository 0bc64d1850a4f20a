"""The full profiles planned on the Megatron-Bridge route without a GPU: its container, its commands, its checks."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import dry_run
from helpers.profiles import PROFILES
from helpers.workspace import Workspace

WS = Workspace(Path("/w/qwen3-8b/bridge"), "Qwen3-8B", route="bridge")


@pytest.mark.parametrize("name", ["qwen3-8b", "qwen3-1.7b"])
def test_series_dry_run_on_the_bridge_route_succeeds(name, tmp_path):
    result = subprocess.run([sys.executable, "-m", "helpers.series", "--profile", name, "--route", "bridge", "--dry-run", "--workdir", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No problems found" in result.stdout and not any(tmp_path.iterdir())  # a plan writes nothing
    for expected in ("nvcr.io/nvidia/nemo:26.02", "pip install nvidia-modelopt==0.44.0", "-m helpers.conversion.bridge",
                     "-m helpers.prune.bridge", "--prune_export_config", "-m helpers.distill.bridge --student_hf_path",
                     "-m helpers.distill.bridge_export"):  # fmt: skip
        assert expected in result.stdout, expected
    assert "llm.import_ckpt" not in result.stdout and "-m helpers.distill " not in result.stdout


def test_the_bridge_plan_prunes_the_same_students_from_hugging_face_checkpoints():
    text, problems = dry_run.plan(PROFILES["qwen3-8b"], WS)
    assert not problems
    steps = dry_run.commands(PROFILES["qwen3-8b"], WS)
    depth = next(step.command for step in steps if step.what == "prune: depth")
    assert depth[depth.index("--prune_export_config") + 1] == '{"num_layers": 24}'
    assert depth[depth.index("--hf_model_name_or_path") + 1] == "/w/qwen3-8b/bridge/models/Qwen3-8B"
    assert "11 checkpoints with optimizer state" in text  # Bridge keeps every validation's checkpoint


def test_the_bridge_dry_run_refuses_a_bad_target_with_its_own_flag_names():
    profile = PROFILES["qwen3-8b"]
    bad = dataclasses.replace(profile, prune=dataclasses.replace(profile.prune, width_hidden_size=3600))
    _, problems = dry_run.plan(bad, WS)
    assert [p.setting for p in problems] == ["prune width: --prune_export_config hidden_size"] and "multiple of 64" in problems[0].problem


def test_the_bridge_dry_run_refuses_a_global_batch_the_micro_batches_cannot_make():
    profile = PROFILES["qwen3-8b"]
    bad = dataclasses.replace(profile, distill=dataclasses.replace(profile.distill, gbs=770))
    _, problems = dry_run.plan(bad, WS)
    assert any(p.setting.startswith("distill depth: --gbs") for p in problems), problems
