"""MMLU as the reference measured it: the lm-evaluation-harness command, and reading its result."""

import sys
from pathlib import Path

from helpers.evaluate import mmlu


def test_mmlu_command_is_five_shot_lm_eval_on_the_hf_checkpoint():
    command = mmlu.command(Path("/m/Qwen3-8B-depth"), Path("/out"), devices=1)
    assert command[:3] == [sys.executable, "-m", "lm_eval"]
    args = dict(zip(command[3::2], command[4::2]))
    assert args == {"--model": "hf", "--model_args": "pretrained=/m/Qwen3-8B-depth,dtype=bfloat16", "--tasks": "mmlu",
                    "--num_fewshot": "5", "--batch_size": "4", "--output_path": "/out"}  # fmt: skip


def test_mmlu_spreads_over_gpus_with_accelerate():
    command = mmlu.command(Path("/m"), Path("/out"), devices=8)
    assert command[:6] == ["accelerate", "launch", "--multi_gpu", "--num_processes", "8", "-m"] and command[6] == "lm_eval"


def test_mmlu_reads_the_accuracy_lm_eval_wrote(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "results_2026.json").write_text('{"results": {"mmlu": {"acc,none": 0.749}}}')
    assert mmlu.accuracy(tmp_path) == 0.749
