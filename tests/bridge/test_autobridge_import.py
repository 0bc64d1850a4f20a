"""The Megatron-Bridge route's import check: AutoBridge's Megatron model gives transformers' logits, or the check fails."""

import json
import subprocess
import sys

import pytest
from small_hf import small_hf_qwen3

from helpers.conversion import bridge
from helpers.conversion.jobs import Job


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return small_hf_qwen3(tmp_path_factory.mktemp("hf"), layers=2)


def test_the_import_check_passes_in_its_own_process(checkpoint, tmp_path):
    report = tmp_path / "check.json"
    done = subprocess.run([sys.executable, "-m", "helpers.conversion.bridge", "--source", checkpoint, "--report", report], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(report.read_text())
    assert record["source"] == str(checkpoint)
    logits = record["logits"]
    assert logits["dtype"] == "float32" and logits["max_abs_diff"] < 1e-4 and logits["tokens"] >= 512


def test_a_corrupted_import_fails_the_check_loudly(checkpoint, tmp_path, monkeypatch, capsys):
    """An import that leaves a norm weight at 1.0 (what a wrong name mapping does) changes the logits: exit 1."""
    import torch

    load = bridge.load

    def corrupted(*args, **kwargs):
        loaded = load(*args, **kwargs)
        with torch.no_grad():
            loaded.module.decoder.final_layernorm.weight.fill_(1.0)
        return loaded

    monkeypatch.setattr(bridge, "load", corrupted)
    report = tmp_path / "check.json"
    assert bridge.main(["--source", str(checkpoint), "--report", str(report)]) == 1
    assert "changes the model's logits" in capsys.readouterr().err
    logits = json.loads(report.read_text())["logits"]
    assert logits["max_abs_diff"] > 1e-2


def test_a_passed_report_is_reused_and_a_missing_one_refused_early(checkpoint, tmp_path, capsys):
    report = tmp_path / "check.json"
    passed = {"max_abs_diff": 1e-7, "mean_abs_diff": 1e-8, "mean_kl": 0.0, "min_cosine": 1.0, "top1_agreement": 1.0,
              "decisive_positions": 600, "decisive_flips": 0, "dtype": "float32", "tokens": 690}  # fmt: skip
    report.write_text(json.dumps({"source": str(checkpoint), "logits": passed}))
    checks = bridge.convert("import", {"teacher": Job(checkpoint, checkpoint, report)}, tmp_path / "import.log")
    assert checks["teacher"].passed and "Reusing the logits check" in capsys.readouterr().out
    assert bridge.main(["--source", str(tmp_path / "missing"), "--report", str(report)]) == 2
    assert "--source:" in capsys.readouterr().err
