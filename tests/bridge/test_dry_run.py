"""The full profiles planned on the Megatron-Bridge route without a GPU: its container, its commands, its checks."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.profiles import PROFILES
from helpers.series import dry_run
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
                     "-m helpers.distill.bridge_export", "-m helpers.quantize --pyt_ckpt_path", "vllm bench throughput --model"):  # fmt: skip
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


def test_the_plan_quantizes_the_deployable_models_and_benchmarks_every_checkpoint():
    profile = PROFILES["qwen3-8b"]
    steps = dry_run.commands(profile, WS)
    fp8 = {step.what: step.command for step in steps if step.what.startswith("FP8: ")}
    assert list(fp8) == ["FP8: teacher", "FP8: depth-distilled", "FP8: width-distilled", "FP8: nas-distilled"]
    teacher = fp8["FP8: teacher"]
    assert teacher[teacher.index("--export_path") + 1] == "/w/qwen3-8b/bridge/models/fp8/teacher" and teacher[teacher.index("--calib_size") + 1] == "512"
    models = [step.command[step.command.index("--model") + 1] for step in steps if step.what.startswith("vLLM throughput: ")]
    labels = ("Qwen3-8B", "hf-export/depth-distilled", "hf-export/width-distilled", "hf-export/nas-distilled")
    fp8_labels = ("fp8/teacher", "fp8/depth-distilled", "fp8/width-distilled", "fp8/nas-distilled")
    assert models == [f"/w/qwen3-8b/bridge/models/{label}" for label in (*labels, *fp8_labels)]
    text, _ = dry_run.plan(profile, WS)
    sizes = text[text.index("Weights (GB)") :].splitlines()
    # 8.19B parameters in bf16; in FP8 its 6.95B linear-layer parameters take one byte each
    assert sizes[3].split()[:2] == ["bf16", "16.38"] and sizes[4].split()[:2] == ["FP8", "9.44"]


def test_the_plan_refuses_what_the_quantization_command_and_vllm_would_refuse():
    profile = PROFILES["qwen3-8b"]
    bad = dataclasses.replace(profile, quantize=dataclasses.replace(profile.quantize, calib_size=0, bench_input_len=40000))
    _, problems = dry_run.plan(bad, WS)
    settings = [p.setting for p in problems]
    assert settings == [*(f"FP8 {label}: --calib_size" for label in ("teacher", "depth-distilled", "width-distilled", "nas-distilled")), "quantize.bench_input_len"]
