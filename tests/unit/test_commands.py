"""The commands the notebooks launch: what a user sees is what runs."""

import sys
from pathlib import Path

from helpers import distillation, mmlu, pruning
from helpers.budget import plan
from helpers.profiles import PROFILES
from helpers.workspace import Workspace


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


def test_full_scale_commands_carry_the_reference_flags():
    profile, ws = PROFILES["qwen3-8b"], Workspace(Path("/w"), "Qwen3-8B")
    prune = pruning.command(profile, ws, "width")
    assert prune[prune.index("--nproc_per_node") + 1] == "2" and prune[prune.index("-m") + 1] == "helpers.prune"
    prune_args = dict(zip(prune[prune.index("helpers.prune") + 1 :: 2], prune[prune.index("helpers.prune") + 2 :: 2]))
    assert {k: prune_args[k] for k in ("--pp_size", "--mbs", "--num_train_samples", "--seq_length", "--target_ffn_hidden_size", "--target_hidden_size")} == {
        "--pp_size": "2", "--mbs": "4", "--num_train_samples": "1024", "--seq_length": "4096", "--target_ffn_hidden_size": "9216", "--target_hidden_size": "3584"}  # fmt: skip
    kd = distillation.flags(profile, ws, "depth")
    kd_args = dict(zip(kd[::2], kd[1::2]))
    assert {k: kd_args[k] for k in ("--devices", "--tp_size", "--gbs", "--mbs", "--max_steps", "--val_check_interval", "--lr", "--min_lr")} == {
        "--devices": "8", "--tp_size": "8", "--gbs": "768", "--mbs": "8", "--max_steps": "40", "--val_check_interval": "4", "--lr": "0.0001", "--min_lr": "1e-05"}  # fmt: skip
    assert kd_args["--model_path"] == "/w/models/Qwen3-8B-nemo-depth-pruned" and plan(profile.distill, 4096).max_steps == 40
