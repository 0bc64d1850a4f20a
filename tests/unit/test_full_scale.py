"""The full profiles, planned without a GPU: the dry runs, their arithmetic, and parity with the reference's commands."""

import dataclasses
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import distill, prune
from helpers.profiles import PROFILES
from helpers.series import dry_run
from helpers.workspace import Workspace

WS = Workspace(Path("/w/qwen3-8b"), "Qwen3-8B")

# The reference tutorial's commands (NVIDIA's Qwen3-8B pruning and distillation blog post and NeMo notebooks),
# with paths made absolute under the work directory as the notebooks lay it out.
REFERENCE = {
    "depth": "torchrun --nproc_per_node 2 /opt/NeMo/scripts/llm/gpt_prune.py --devices 2 --pp_size 2 "
    "--restore_path Qwen3-8B-nemo --legacy_ckpt --save_path Qwen3-8B-nemo-depth-pruned --seq_length 4096 "
    "--num_train_samples 1024 --mbs 4 --data_paths wikitext-data/wikitext-train_text_document --target_num_layers 24",
    "width": "torchrun --nproc_per_node 2 /opt/NeMo/scripts/llm/gpt_prune.py --devices 2 --pp_size 2 "
    "--restore_path Qwen3-8B-nemo --legacy_ckpt --save_path Qwen3-8B-nemo-width-pruned --seq_length 4096 "
    "--num_train_samples 1024 --mbs 4 --data_paths wikitext-data/wikitext-train_text_document "
    "--target_ffn_hidden_size 9216 --target_hidden_size 3584",
    "drop": "torchrun --nproc_per_node 2 /opt/NeMo/scripts/llm/gpt_prune.py --devices 2 --pp_size 2 "
    "--restore_path Qwen3-8B-nemo --legacy_ckpt --save_path Qwen3-8B-nemo-depth-pruned "
    "--drop_layers 24 25 26 27 28 29 30 31 32 33 34 35",
    "distill depth": "torchrun --nproc_per_node 8 /opt/NeMo/scripts/llm/gpt_train.py --name Qwen3-8B-nemo-depth-pruned-distill "
    "--devices 8 --num_nodes 1 --tp_size 8 --model_path Qwen3-8B-nemo-depth-pruned --teacher_path Qwen3-8B-nemo "
    "--legacy_ckpt --max_steps 40 --warmup_steps 4 --gbs 768 --mbs 8 --lr 1e-4 --min_lr 1e-5 --seq_length 4096 "
    "--log_dir . --log_interval 4 --val_check_interval 4 --limit_val_batches 1 "
    "--data_paths wikitext-data/wikitext-train_text_document",
}
REFERENCE["distill width"] = REFERENCE["distill depth"].replace("depth", "width")

# What we do differently on purpose. Flags the reference does not pass:
EXTRA = {
    "--tp_size",  # pruning: explicit 1 (the reference relies on the default, also 1)
    "--index_mapping_dir",  # Megatron's sample index cached beside the data, not beside the script
    "--num_workers",  # data-loader processes: gpt_prune.py/gpt_train.py's default, made explicit
    "--pp_size",  # distillation: explicit 1 (the default)
    "--cp_size",  # distillation: explicit 1 (the default)
    "--precision",  # distillation: explicit bf16-mixed (the default)
}
# Flags with another value: the folder runs are written to (the work directory's distill/, not the notebook folder).
DIFFERENT = {"--log_dir": "distill"}
PATH_FLAGS = ("--restore_path", "--save_path", "--model_path", "--teacher_path", "--data_paths")


def parsed(words: list[str]) -> tuple[str, dict[str, str]]:
    """Processes per node, and the `--flag value...` pairs after the script or module (a switch maps to "")."""
    script = next(i for i, word in enumerate(words) if word.endswith(".py") or words[i - 1] == "-m")
    pairs: dict[str, str] = {}
    for word in words[script + 1 :]:
        if word.startswith("--"):
            key, pairs[word] = word, ""
        else:
            pairs[key] = f"{pairs[key]} {word}".strip()
    return words[words.index("--nproc_per_node") + 1], pairs


def same_value(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def ours(kind: str) -> list[str]:
    profile = PROFILES["qwen3-8b"]
    if kind.startswith("distill"):
        return distill.command(profile, WS, kind.split()[1])
    return prune.command(profile, WS, kind)


@pytest.mark.parametrize("kind", REFERENCE)
def test_full_scale_commands_match_the_reference_flag_by_flag(kind):
    (reference_procs, reference), (procs, command) = parsed(REFERENCE[kind].split()), parsed(ours(kind))
    assert procs == reference_procs
    for flag, value in reference.items():
        assert flag in command, f"{flag} of the reference is missing"
        if flag in PATH_FLAGS:  # the same folder names, under the work directory
            assert [Path(v).name for v in command[flag].split()] == [Path(v).name for v in value.split()], flag
        elif flag in DIFFERENT:
            assert Path(command[flag]).name == DIFFERENT[flag], flag
        else:
            assert same_value(command[flag], value), f"{flag}: {command[flag]} here, {value} in the reference"
    extra = set(command) - set(reference)
    assert extra <= EXTRA, f"flags the reference does not pass: {extra - EXTRA}"


@pytest.mark.parametrize("name", ["qwen3-8b", "qwen3-1.7b"])
def test_dry_run_plans_the_full_profile_without_problems(name):
    profile = PROFILES[name]
    text, problems = dry_run.plan(profile, Workspace(Path("/w") / name, profile.model.name))
    assert problems == []
    assert "No problems found" in text and "Memory per GPU" in text and "Disk in the work directory" in text


def test_qwen3_8b_and_its_students_have_the_published_sizes():
    teacher = dry_run.published_teacher("Qwen/Qwen3-8B")
    sizes = {kind: dry_run.student(teacher.arch, prune.targets(PROFILES["qwen3-8b"], kind)).parameter_counts(False)["total"]
             for kind in ("depth", "width", "drop")}  # fmt: skip
    assert round(teacher.arch.parameter_counts(False)["total"] / 1e9, 1) == 8.2
    assert all(5.8e9 < size < 6.1e9 for size in sizes.values()), sizes
    assert sizes["drop"] == sizes["depth"]


def test_drop_layers_keep_the_last_layer_as_the_reference_does():
    for name in ("qwen3-8b", "qwen3-1.7b"):
        p, layers = PROFILES[name].prune, dry_run.published_teacher(PROFILES[name].model.hf_id).arch.num_layers
        assert layers not in p.drop_layers and len(p.drop_layers) == layers - p.depth_num_layers
    assert PROFILES["qwen3-8b"].prune.drop_layers == tuple(range(24, 36))


def test_single_gpu_profile_at_micro_batch_2_is_refused_for_memory():
    profile = PROFILES["qwen3-1.7b"]
    doubled = dataclasses.replace(profile, distill=dataclasses.replace(profile.distill, mbs=2))
    _, problems = dry_run.plan(doubled, Workspace(Path("/w/q"), profile.model.name))
    assert {p.setting for p in problems} == {"distill depth: --mbs", "distill width: --mbs"}
    assert all("over 90% of the H100 80GB SXM's 80 GB" in p.problem for p in problems)


def test_dry_run_refuses_a_bad_target_with_the_entry_points_rule():
    profile = PROFILES["qwen3-8b"]
    bad = dataclasses.replace(profile, prune=dataclasses.replace(profile.prune, width_hidden_size=3600))
    _, problems = dry_run.plan(bad, WS)
    assert [p.setting for p in problems] == ["prune width: --target_hidden_size"] and "multiple of 64" in problems[0].problem


@pytest.mark.parametrize("name", ["qwen3-8b", "qwen3-1.7b"])
def test_series_dry_run_command_succeeds(name, tmp_path):
    result = subprocess.run([sys.executable, "-m", "helpers.series", "--profile", name, "--dry-run", "--workdir", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No problems found" in result.stdout and not any(tmp_path.iterdir())  # a plan writes nothing


def test_the_time_estimate_is_calibrated_on_the_references_measured_runs():
    """The reference measured ~48 min (depth) and ~55 min (width) for its 40 steps on 8 x H100, end to end."""
    import re

    text, _ = dry_run.plan(PROFILES["qwen3-8b"], WS)
    minutes = {kind: float(m) for kind, m in re.findall(r"Time, distilling (\w+): [\d.]+ s per step, ([\d.]+) min in all", text)}
    assert minutes.keys() == {"depth", "width"}
    for kind, measured in {"depth": 48, "width": 55}.items():
        assert abs(minutes[kind] - measured) / measured < 0.08, (kind, minutes[kind], measured)


def test_the_disk_plan_counts_the_checkpoints_in_flight_at_the_peak():
    """Async saves keep the old best and last until the new ones are final: 4 copies of a 14 B/parameter checkpoint."""
    from helpers.distill import budget

    students = {"depth": 6_000_000_000, "width": 5_000_000_000}
    table = budget.disk_estimate(8_000_000_000, students, 0.5, async_saves=True)["GB"]
    done = table["total, when the series is done"]
    assert done == pytest.approx(8 * 2 * 2 + 11 * 2 * 3 + 11 * 2 * 14 + 0.5, abs=0.1)  # teacher x2; students as NeMo, HF, HF distilled; runs
    peak = table[[row for row in table.index if row.startswith("peak")]].item()
    before_width = 8 * 2 * 2 + 11 * 2 * 2 + 6 * 2 * 14 + 0.5  # no distilled exports yet; the depth run's two checkpoints
    assert peak == pytest.approx(before_width + 4 * 5 * 14, abs=0.1) and peak > done
    synchronous = budget.disk_estimate(8_000_000_000, students, 0.5, async_saves=False)["GB"]
    assert synchronous.iloc[-1] == pytest.approx(before_width + 3 * 5 * 14, abs=0.1)


def test_the_dry_run_plans_90b_tokens_on_12_and_96_nodes_with_the_slurm_script_of_12(tmp_path):
    text, problems = dry_run.plan(PROFILES["qwen3-8b"], WS)
    assert problems == []
    plan = text.split("More than one node")[1].split("Slurm batch script")[0]
    header = plan.splitlines()[2]
    assert " ".join(header.split()) == "125M tokens on 1 node 125M tokens on 12 nodes 90B tokens on 12 nodes 90B tokens on 96 nodes"
    assert "steps                                                     40                      40                 28,611                 28,611" in plan
    script = tmp_path / "depth.sbatch"
    script.write_text("#!/bin/bash" + text.split("#!/bin/bash")[1].split("\n\nDisk in the work directory")[0])
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert "#SBATCH --nodes=12" in script.read_text().splitlines()
    srun = shlex.split(script.read_text().split("\nsrun ")[1].replace("\\\n", " "))
    assert srun[srun.index("torchrun") :][:12] == [
        "torchrun", "--nnodes", "12", "--nproc_per_node", "8", "--rdzv_backend", "c10d", "--rdzv_endpoint", "$HEAD_NODE:29500",
        "--rdzv_id", "$SLURM_JOB_ID", "-m",
    ]  # fmt: skip
    flags = srun[srun.index("helpers.distill") + 1 :]
    assert flags[flags.index("--num_nodes") + 1] == "12" and flags[flags.index("--max_steps") + 1] == "28611"


def test_the_dry_run_names_the_node_counts_a_global_batch_allows():
    text, problems = dry_run.plan(PROFILES["qwen3-1.7b"], Workspace(Path("/w/q"), "Qwen3-1.7B"))
    assert problems == [] and "Slurm batch script" not in text  # 128 sequences split over 12 or 96 replicas: no
    assert "12 nodes: --gbs: 128 is not divisible by --mbs 1 x 12 data-parallel rank(s)" in text
    assert "--num_nodes 1, 2, 4, 8, 16, 32, 64, 128" in text
