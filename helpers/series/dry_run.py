"""Plan a full-scale run before spending a GPU-hour: `python -m helpers.series --profile qwen3-8b --dry-run`.

From the teacher's published config.json alone (no download, no GPU), it derives the students'
architectures and sizes, builds every command of the four notebooks with the code the notebooks
call, checks each with the rules the entry points apply (as on the profile's GPUs, with the data
notebook 01 will have written), and estimates memory per GPU, time and disk. Any inconsistency
is reported with its fix, and the plan fails. It then plans the distillation on more than one
node (`multi_node`: the reference's budget and ~90B tokens on 12 and 96 nodes) and prints the
Slurm batch script of one such run.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from helpers import conversion, distill, prune
from helpers.distill import budget, nodes
from helpers.distill.checks import DistillFacts, check_distill_args
from helpers.errors import Problem, SettingError, refuse
from helpers.evaluate import losses, mmlu, throughput
from helpers.models.architecture import Architecture, weight_bytes
from helpers.profiles import KINDS, Profile
from helpers.prune import search
from helpers.prune.checks import PruneFacts, check_prune_args
from helpers.quantize import cli as quantize_cli
from helpers.quantize import steps as quantize_steps
from helpers.routes import SEARCHED, get_route
from helpers.workspace import Workspace

HUB_CONFIGS = Path(__file__).parent.parent / "hub_configs"
GPU_HEADROOM = 0.9  # plan to use at most 90% of a GPU's memory: the CUDA context and fragmentation take the rest
TOKENIZED_GB = 0.6  # WikiText-103 as Megatron .bin/.idx (~125M tokens of 4 bytes) and its JSONL
# More than one node: the profile's budget on one node and on the first count, and ~90B tokens, what NVIDIA's
# depth-pruned Qwen3 6B was distilled with, on both (the Slurm script is printed for that budget on the first).
PLANNED_NODES = (12, 96)
PLANNED_TOKENS = 90_000_000_000


@dataclass(frozen=True)
class Teacher:
    arch: Architecture
    tied_embeddings: bool
    context_length: int  # max_position_embeddings


def published_teacher(hf_id: str) -> Teacher:
    """The teacher's architecture from its published config.json (shipped in helpers/hub_configs)."""
    path = HUB_CONFIGS / f"{hf_id.replace('/', '--')}.json"
    if not path.is_file():
        raise refuse("profile", f"no published config of {hf_id} in {HUB_CONFIGS}", f"add its config.json there as {path.name}")
    config = json.loads(path.read_text())
    return Teacher(Architecture.from_hf_config(config), config["tie_word_embeddings"], config["max_position_embeddings"])


def student(teacher: Architecture, targets: dict) -> Architecture:
    """The architecture pruning to `targets` (the flags of `prune.targets`) leaves."""
    if "drop_layers" in targets:
        return replace(teacher, num_layers=teacher.num_layers - len(targets["drop_layers"]))
    return replace(teacher, **{name.removeprefix("target_"): value for name, value in targets.items()})


@dataclass(frozen=True)
class Step:
    notebook: str
    what: str
    command: list[str]


def commands(profile: Profile, ws: Workspace) -> list[Step]:
    """Every command the four notebooks launch for `profile` on the workspace's route, built by the functions they call."""
    report = ws.results
    teacher_job = conversion.Job(ws.hf_teacher, ws.teacher, report / "import-logits.json")
    distilled = {f"{kind}-distilled": distill.run_dir(ws, kind) / "best" for kind in ws.students}
    if ws.route == "bridge":
        from helpers.conversion import bridge as bridge_conversion
        from helpers.distill import bridge_export

        steps = [Step("01", "build the teacher with AutoBridge, then compare logits", bridge_conversion.command(teacher_job))]
        steps += [Step("02", f"prune: {kind}", prune.command(profile, ws, kind)) for kind in (*KINDS, "drop")]
        steps.append(Step("02", f"prune: {SEARCHED} (search under {search_budget(profile):,} parameters)", prune.steps_for(ws).command(profile, ws, SEARCHED, params=search_budget(profile))))
        steps.append(Step("02", "score every pruned student as the search does", prune.steps_for(ws).score_command(profile, ws)))
        exports = Step("04", "export the best distilled checkpoints", bridge_export.command(*(conversion.export_job(ws, label, path) for label, path in distilled.items())))
    else:
        steps = [Step("01", "import the teacher into NeMo 2, then compare logits", conversion.command("import", teacher_job))]
        steps += [Step("02", f"prune: {kind}", prune.command(profile, ws, kind)) for kind in (*KINDS, "drop")]
        pruned = (conversion.export_job(ws, f"{kind}-pruned", ws.pruned(kind)) for kind in KINDS)
        steps.append(Step("02", "export the pruned students", conversion.command("export", *pruned)))
        exports = Step("04", "export the best distilled checkpoints", conversion.command("export", *(conversion.export_job(ws, label, path) for label, path in distilled.items())))
    students = {f"{kind}-pruned": ws.hf_model(f"{kind}-pruned") for kind in ws.students}
    steps.append(Step("02", "validation loss of teacher and pruned students", losses.command({"teacher": ws.hf_teacher} | students, ws.data_prefix("validation"), profile.data.seq_length, 8, report / "02-losses.json")))
    steps += [Step("03", f"distill: {kind}", distill.steps_for(ws).command(profile, ws, kind)) for kind in ws.students]
    steps.append(exports)
    if profile.evaluation.mmlu:
        devices = profile.distill.devices * profile.distill.num_nodes
        steps += [Step("04", f"MMLU 5-shot: {label}", mmlu.command(path, report / "mmlu" / label, devices=devices)) for label, path in ws.deployed.items()]
    steps += [Step("04", f"FP8: {label}", quantize_steps.command(profile, ws, label)) for label in ws.deployed]
    steps += [Step("04", f"vLLM throughput: {label}", throughput.command(path, profile.quantize)) for label, path in quantize_steps.deployable(ws).items()]
    return steps


def _entry_arguments(command: list[str], module: str) -> list[str]:
    return command[command.index(module) + 1 :]


def check_commands(profile: Profile, ws: Workspace, teacher: Teacher) -> list[Problem]:
    """Validate the pruning and distillation commands with the entry points' own rules, as on the planned machine."""
    bridge = ws.route == "bridge"
    if bridge:
        from helpers.distill import bridge as distill_entry
        from helpers.prune import bridge as prune_entry
    problems: list[Problem] = []
    for kind in (*KINDS, "drop"):
        command = prune.command(profile, ws, kind)
        facts = PruneFacts(source=teacher.arch)
        if bridge:
            args = prune_entry.parser().parse_args(_entry_arguments(command, "helpers.prune.bridge"))
            problems += _problems(lambda: prune_entry.check_args(args, facts), f"prune {kind}")
        else:
            args = prune.parser().parse_args(_entry_arguments(command, "helpers.prune"))
            problems += _problems(lambda: check_prune_args(args, facts), f"prune {kind}")
    if SEARCHED in ws.students:
        command = prune.steps_for(ws).command(profile, ws, SEARCHED, params=search_budget(profile))
        args = prune_entry.parser().parse_args(_entry_arguments(command, "helpers.prune.bridge"))
        facts = PruneFacts(source=teacher.arch, tied_embeddings=teacher.tied_embeddings)
        problems += _problems(lambda: prune_entry.check_args(args, facts), f"prune {SEARCHED}")
    for label in ws.deployed:
        args = quantize_cli.parser().parse_args(_entry_arguments(quantize_steps.command(profile, ws, label), "helpers.quantize"))
        problems += [problem._replace(setting=f"FP8 {label}: {problem.setting}") for problem in quantize_cli.settings_problems(args)]
    problems += throughput.problems(profile.quantize, teacher.context_length)
    teacher_size = teacher.arch.parameter_counts(teacher.tied_embeddings)["total"]
    for kind in KINDS:
        arch = student(teacher.arch, prune.targets(profile, kind))
        facts = DistillFacts(
            student=arch,
            teacher=teacher.arch,
            student_parameters=arch.parameter_counts(teacher.tied_embeddings)["total"],
            teacher_parameters=teacher_size,
            same_tokenizer=True,  # pruning keeps the teacher's tokenizer
            cuda=profile.gpu is not None,
        )
        command = distill.steps_for(ws).command(profile, ws, kind)
        if bridge:
            args = distill_entry.parser().parse_args(_entry_arguments(command, "helpers.distill.bridge"))
            problems += _problems(lambda: distill_entry.check_args(args, facts), f"distill {kind}")
        else:
            args = distill.parser().parse_args(_entry_arguments(command, "helpers.distill"))
            problems += _problems(lambda: check_distill_args(args, facts), f"distill {kind}")
    return problems


def search_budget(profile: Profile) -> int:
    """The searched student's budget as planned: the profile's, or the larger hand-picked student's planned size."""
    if profile.prune.search.params:
        return int(profile.prune.search.params)
    teacher = published_teacher(profile.model.hf_id)
    return max(student(teacher.arch, prune.targets(profile, kind)).parameter_counts(teacher.tied_embeddings)["total"] for kind in KINDS)


# ModelOpt's pruning guide: ~10 minutes per candidate for an 8B model scored on 5% of MMLU, ~5 to rank (calibration).
SEARCH_MINUTES = {"per candidate at 6B": 10, "ranking": 5}


def search_section(profile: Profile, teacher: Teacher) -> str:
    """The search as planned: budget against the teacher's size, limits, space, the candidates it will score, time."""
    settings, params = profile.prune.search, search_budget(profile)
    space = search.search_space(teacher.arch, settings.channel_divisor, settings.max_width_pruning, settings.max_depth_pruning, settings.hparams_to_skip)
    scored = search.under_budget(teacher.arch, space, teacher.tied_embeddings, params, settings.top_k)
    size = teacher.arch.parameter_counts(teacher.tied_embeddings)["total"]
    minutes = SEARCH_MINUTES["ranking"] + sum(SEARCH_MINUTES["per candidate at 6B"] * p / 6e9 for _, p in scored)
    lines = [
        f"Architecture search ({SEARCHED}): budget {params:,} parameters ({params / size:.0%} of the teacher's {size:,}); "
        f"at most {settings.max_width_pruning:.0%} of a width and {settings.max_depth_pruning:.0%} of the layers cut; score {settings.score_func}.",
        *(f"    {name:20} {values}" for name, values in space.items()),
        f"{search.combinations(space)} combinations; the {len(scored)} largest under the budget are scored "
        f"({scored[-1][1] / 1e9:.2f}B to {scored[0][1] / 1e9:.2f}B parameters)." if scored else "No combination fits the budget.",
        f"Time: ~{minutes:.0f} minutes (ranking ~{SEARCH_MINUTES['ranking']}, then ~{SEARCH_MINUTES['per candidate at 6B']} minutes per "
        "candidate of 6B scored on 5% of MMLU, as ModelOpt's pruning guide measures it, in proportion to each candidate's size).",
    ]  # fmt: skip
    return "\n".join(lines)


def fp8_section(counts: dict[str, dict[str, int]]) -> str:
    """Each model's weights (from its parameter counts per component) in bf16 and after notebook 04's FP8 step: what its
    checkpoint takes on disk, and about what a serving engine holds in GPU memory for it (the Nemotron-Nano document's
    "model loading memory")."""
    gb = pd.DataFrame({name: {fp8: weight_bytes(count, fp8) / 1e9 for fp8 in (False, True)} for name, count in counts.items()})
    gb.index = ["bf16", "FP8"]
    return (
        "Weights (GB), bf16 and FP8 (notebook 04: the linear layers in FP8; embeddings, norms and output layer in bf16).\n"
        "The FP8 checkpoints of the teacher and the distilled students add their sizes to the disk below:\n" + gb.round(2).to_string()
    )


def _problems(check, step: str) -> list[Problem]:
    try:
        check()
    except SettingError as error:
        return [problem._replace(setting=f"{step}: {problem.setting}") for problem in error.problems]
    return []


def shape(arch: Architecture, tied: bool) -> budget.ModelShape:
    return budget.ModelShape(arch.parameter_counts(tied)["total"], arch.num_layers, arch.hidden_size, arch.vocab_size)


def shapes(profile: Profile) -> tuple[budget.ModelShape, dict[str, budget.ModelShape]]:
    """The teacher's shape and each student's, from the teacher's published config.json and the pruning targets."""
    if not profile.model.hf_id:
        raise refuse("--profile", f"{profile.name} builds its teacher on this machine: there is nothing to plan", "plan a full profile (qwen3-1.7b, qwen3-8b)")
    teacher = published_teacher(profile.model.hf_id)
    students = {kind: shape(student(teacher.arch, prune.targets(profile, kind)), teacher.tied_embeddings) for kind in KINDS}
    return shape(teacher.arch, teacher.tied_embeddings), students


def multi_node(profile: Profile, ws: Workspace, teacher: budget.ModelShape, students: dict[str, budget.ModelShape], rate: budget.Throughput) -> list[str]:
    """The plan on more than one node (`nodes.plan`) and the Slurm script of the larger budget on PLANNED_NODES[0]."""
    scenarios = [*nodes.scenarios(profile, PLANNED_NODES[0], PLANNED_TOKENS), nodes.Scenario(PLANNED_TOKENS, PLANNED_NODES[1])]
    planned, refused = nodes.plans(profile, scenarios, teacher, students, rate)
    per_node = f"{profile.distill.devices} x {profile.gpu.name} per node"
    another = f"python -m helpers.distill.nodes --profile {profile.name} --nodes N --tokens T"
    sections = [f"More than one node ({per_node}; another count or budget: {another}):", nodes.table(planned).to_string(), nodes.efficiency_note(rate)]
    if refused:
        sections.append("Not possible with this global batch:\n" + "\n".join(str(problem) for problem in refused))
    script = [p for p in planned if (p.kd.num_tokens, p.profile.distill.num_nodes) == (PLANNED_TOKENS, PLANNED_NODES[0])]
    if ws.route != "nemo2":
        sections.append(f"The Slurm script is written for the NeMo 2 route's entry point; the {ws.route} route's launches on one node.")
    elif script:
        sections.append(
            f"Slurm batch script of the {KINDS[0]} student, {script[0].label} (the {KINDS[1]} student's differs only in "
            f"the student; notebook 03 and python -m helpers.distill.nodes --write write both into {ws.root / 'slurm'}):\n"
            + distill.slurm_script(script[0], ws, KINDS[0])
        )
    return sections


def plan(profile: Profile, ws: Workspace) -> tuple[str, list[Problem]]:
    """The plan as text a user reads before launching, and every problem found in it."""
    teacher_shape, student_shapes = shapes(profile)  # refuses a profile whose teacher is built on this machine
    teacher = published_teacher(profile.model.hf_id)
    archs = {"teacher": teacher.arch} | {f"{kind}-pruned": student(teacher.arch, prune.targets(profile, kind)) for kind in (*KINDS, "drop")}
    counts = {name: arch.parameter_counts(teacher.tied_embeddings) for name, arch in archs.items()}
    sizes = pd.DataFrame(counts) / 1e9
    problems = check_commands(profile, ws, teacher)
    kd = budget.plan(profile.distill, profile.data.seq_length)
    route = get_route(ws.route)
    sections = [
        f"Dry run of profile {profile.name!r} on the {route.name!r} route: {profile.summary}",
        f"Route: {route.title}. In its container, on the GPU machine:\n    " + "\n    ".join(route.container_setup(profile.name)),
        f"Teacher {profile.model.hf_id} (published config.json), students by the profile's pruning targets:",
        pd.DataFrame({name: arch.as_dict() for name, arch in archs.items()}).to_string(),
        "Parameters (billions):",
        sizes.round(3).to_string(),
        fp8_section(counts),
        f"Distillation budget: {kd.num_tokens:,} tokens of {kd.seq_length} at global batch {kd.gbs} -> {kd.max_steps} steps; "
        f"warmup, logging and validation every {kd.interval} steps; {kd.tokens:,} tokens seen.",
    ]
    if SEARCHED in ws.students:
        sections.append(search_section(profile, teacher))
    sections.append("Commands, in notebook order:")
    sections += [f"[{step.notebook}] {step.what}:\n    {shlex.join(step.command)}" for step in commands(profile, ws)]
    if profile.gpu:
        gpu = profile.gpu
        memory = {}
        for kind in KINDS:
            memory[kind] = budget.memory_per_device(student_shapes[kind], teacher_shape, profile.distill, profile.data.seq_length)
            total = memory[kind].loc["total", "GB"]
            if total > GPU_HEADROOM * gpu.memory_gb:
                problems.append(Problem(f"distill {kind}: --mbs", f"~{total:.0f} GB per GPU, over {GPU_HEADROOM:.0%} of the {gpu.name}'s {gpu.memory_gb:g} GB", "lower --mbs (keep --gbs: more micro-batches per step) or add tensor parallelism"))
        sections.append(f"Memory per GPU during distillation (GB; {gpu.name}, {gpu.memory_gb:g} GB):")
        sections.append(pd.DataFrame({kind: table["GB"] for kind, table in memory.items()}).to_string())
        rate = budget.throughput(gpu)
        for kind in KINDS:
            time = budget.time_estimate(student_shapes[kind], teacher_shape, kd, profile.distill, rate)
            sections.append(f"Time, distilling {kind}: {time['seconds per step']} s per step, {time['run time (validations and checkpoints included)']} in all ({time['assumed throughput']}).")
        sections += multi_node(profile, ws, teacher_shape, student_shapes, rate)
    students = {kind: int(sizes.loc["total", f"{kind}-pruned"] * 1e9) for kind in KINDS}
    sections.append("Disk in the work directory (GB):")
    kept = kd.max_steps // kd.interval + 1 if ws.route == "bridge" else None  # every validation's, and the last
    sections.append(budget.disk_estimate(int(sizes.loc["total", "teacher"] * 1e9), students, TOKENIZED_GB, async_saves=profile.gpu is not None, kept=kept).to_string())
    sections.append("Problems:\n" + "\n".join(str(p) for p in problems) if problems else "No problems found: every command passes the checks its entry point applies.")
    return "\n\n".join(sections), problems


def main(profile: Profile, ws: Workspace) -> int:
    text, problems = plan(profile, ws)
    print(text)
    return 1 if problems else 0

