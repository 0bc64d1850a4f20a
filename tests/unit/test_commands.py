"""The commands the notebooks launch: what a user sees is what runs."""

import sys
from pathlib import Path

import pytest

from helpers import conversion, mmlu
from helpers.errors import SettingError


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


def test_one_conversion_command_carries_several_jobs_in_order():
    todo = [conversion.Job(Path(f"/nemo/{k}"), Path(f"/hf/{k}"), Path(f"/r/{k}.json")) for k in ("depth", "width")]
    command = conversion.command("export", *todo, overwrite=True)
    assert command[:3] == [sys.executable, "-m", "helpers.conversion"]
    args = conversion.parser().parse_args(command[3:])
    assert args.direction == "export" and args.overwrite and conversion.jobs(args) == todo


def test_a_source_without_its_output_or_report_is_refused():
    args = conversion.parser().parse_args(["export", "--source", "/a", "--output", "/b", "--report", "/r", "--source", "/c"])
    with pytest.raises(SettingError, match="--source/--output/--report"):
        conversion.jobs(args)
