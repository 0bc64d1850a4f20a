"""Refuse distillation settings that cannot work, before a teacher and a student are loaded."""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from helpers.data.prefixes import missing_data, missing_datasets
from helpers.distill.budget import data_parallel_size, model_parallel_size
from helpers.errors import Problem, flag, raise_if_any
from helpers.models.architecture import Architecture
from helpers.models.checkpoints import architecture, is_hf_checkpoint, parameter_counts, tokenizer_dir

KD_CONFIG_KEYS = {"logit_layers", "intermediate_layer_pairs", "skip_lm_loss", "kd_loss_scale"}
PRECISIONS = ("bf16-mixed", "16-mixed", "32")
HF_TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
                      "vocab.txt", "merges.txt", "tokenizer.model", "chat_template.jinja"}  # fmt: skip


@dataclass(frozen=True)
class DistillFacts:
    """What the distillation rules need to know from disk and the machine, read once by `gather` (or planned)."""

    student: Architecture
    teacher: Architecture
    student_parameters: int
    teacher_parameters: int
    same_tokenizer: bool
    cuda: bool  # this machine has a CUDA device
    missing_data: tuple[str, ...] = ()
    kd_config: dict | str | None = None  # the --kd_config YAML, or why it could not be read


def gather(args: argparse.Namespace) -> DistillFacts:
    """Read what the rules judge; --model_path and --teacher_path must already be known to be NeMo checkpoints."""
    import torch

    student, teacher = Path(args.model_path), Path(args.teacher_path)
    return DistillFacts(
        student=architecture(student),
        teacher=architecture(teacher),
        student_parameters=parameter_counts(student)["total"],
        teacher_parameters=parameter_counts(teacher)["total"],
        same_tokenizer=_tokenizer_digest(student) == _tokenizer_digest(teacher),
        cuda=torch.cuda.is_available(),
        missing_data=missing_datasets(args.data_paths),
        kd_config=_read_kd_config(args.kd_config),
    )


def check_distill_args(args: argparse.Namespace, facts: DistillFacts) -> None:
    """Raise a SettingError listing every problem of `args` for distilling `facts.teacher` into `facts.student`."""
    problems: list[Problem] = []
    problems += _model_problems(facts)
    problems += _parallelism_problems(args, facts)
    problems += _schedule_problems(args)
    problems += _data_problems(args, facts)
    problems += _kd_config_problems(facts)
    raise_if_any(problems)


def _tokenizer_digest(checkpoint: Path) -> str:
    """A digest of the tokenizer's files: in a Hugging Face folder its tokenizer.json, else those of HF_TOKENIZER_FILES
    (not the model's own, nor files other tools leave there); in a NeMo checkpoint, its tokenizer folder's."""
    hf = is_hf_checkpoint(checkpoint)
    if hf and (checkpoint / "tokenizer.json").is_file():  # what decides the ids; tokenizer_config.json may name the
        return hashlib.sha256((checkpoint / "tokenizer.json").read_bytes()).hexdigest()  # slow or the fast class alike
    files = sorted(p for p in tokenizer_dir(checkpoint).glob("*") if (p.name in HF_TOKENIZER_FILES if hf else p.suffix in {".json", ".txt", ".model"}))
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def _read_kd_config(path: str | None) -> dict | str | None:
    if not path:
        return None
    if not Path(path).is_file():
        return f"{path} does not exist"
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as error:
        return f"{path} is not valid YAML: {error}"


def _model_problems(facts: DistillFacts) -> list[Problem]:
    student, teacher = facts.student, facts.teacher
    problems = []
    if student.vocab_size != teacher.vocab_size:
        problems.append(Problem(flag("model_path"), f"the student's vocabulary has {student.vocab_size} rows, the teacher's {teacher.vocab_size}", "distill between models that share one tokenizer: logits must index the same tokens"))
    elif not facts.same_tokenizer:
        problems.append(Problem(flag("model_path"), "the student and the teacher carry different tokenizers", "prune the student from this teacher, so both share its tokenizer"))
    student_size, teacher_size = facts.student_parameters, facts.teacher_parameters
    if student_size >= teacher_size:
        problems.append(Problem(flag("model_path"), f"the student ({student_size / 1e6:.1f}M parameters) is not smaller than the teacher ({teacher_size / 1e6:.1f}M)", "give the pruned checkpoint as --model_path and the original as --teacher_path"))
    return problems


def _parallelism_problems(args, facts: DistillFacts) -> list[Problem]:
    student, teacher = facts.student, facts.teacher
    if min(args.tp_size, args.pp_size, args.cp_size, args.devices, args.num_nodes) < 1:
        return [Problem(flag("devices"), "parallel sizes and device counts must be at least 1", "check --devices, --num_nodes, --tp_size, --pp_size, --cp_size")]
    problems = data_parallel_problems(args)
    for model, arch in (("student", student), ("teacher", teacher)):
        for size, value in (("attention heads", arch.num_attention_heads), ("query groups", arch.num_query_groups), ("MLP size", arch.ffn_hidden_size)):
            if value % args.tp_size:
                problems.append(Problem(flag("tp_size"), f"{args.tp_size} does not divide the {model}'s {value} {size}", "choose a tensor parallel size that divides heads, query groups and MLP size"))
        if arch.num_layers % args.pp_size:
            problems.append(Problem(flag("pp_size"), f"{args.pp_size} does not divide the {model}'s {arch.num_layers} layers", "choose a pipeline parallel size that divides both layer counts"))
    if args.cp_size > 1 and args.seq_length % (2 * args.cp_size):
        problems.append(Problem(flag("cp_size"), f"--seq_length {args.seq_length} is not divisible by 2 x cp", f"use a sequence length divisible by {2 * args.cp_size}"))
    if args.tp_size > 1 and not facts.cuda:
        problems.append(
            Problem(
                flag("tp_size"),
                "tensor parallelism turns on sequence parallelism, which Megatron's norms refuse without Transformer Engine "
                "(megatron/core/transformer/torch_norm.py:32), so it cannot run on CPU",
                "rehearse with --tp_size 1 (data parallelism works: --devices 2)",
            )
        )
    if args.precision not in PRECISIONS:
        problems.append(Problem(flag("precision"), f"{args.precision!r} is not one of {PRECISIONS}", "use bf16-mixed on GPUs"))
    elif args.precision != "32" and not facts.cuda:
        problems.append(Problem(flag("precision"), f"{args.precision} needs a GPU; this machine has none", "rehearse on CPU with --precision 32"))
    if args.distributed_timeout_minutes is not None and args.distributed_timeout_minutes <= 0:
        problems.append(Problem(flag("distributed_timeout_minutes"), f"{args.distributed_timeout_minutes} must be positive", "give minutes above the slowest checkpoint save, or omit it"))
    return problems


def data_parallel_problems(settings) -> list[Problem]:
    """Whether the processes of all nodes split into model replicas that share the global batch evenly.

    `settings` has the flags' names (argparse's namespace, or a profile's DistillSettings). With several nodes
    the fix names the node counts that work with this global batch.
    """
    world = settings.devices * settings.num_nodes
    shards = model_parallel_size(settings)
    if world % shards:
        return [Problem(flag("tp_size"), f"tp {settings.tp_size} x pp {settings.pp_size} x cp {settings.cp_size} = {shards} does not divide the {world} processes", "make --devices x --num_nodes a multiple of tp x pp x cp")]
    data_parallel = data_parallel_size(settings)
    if settings.gbs % (settings.mbs * data_parallel) == 0:
        return []
    fix = f"use a multiple of {settings.mbs * data_parallel}"
    if settings.num_nodes > 1:
        fix += f", or a node count that divides --gbs {settings.gbs} evenly: --num_nodes {', '.join(map(str, node_counts(settings)))}"
    return [Problem(flag("gbs"), f"{settings.gbs} is not divisible by --mbs {settings.mbs} x {data_parallel} data-parallel rank(s)", fix)]


def node_counts(settings) -> list[int]:
    """The node counts whose model replicas share --gbs evenly, micro-batches of --mbs each (at most gbs/mbs replicas)."""
    shards = model_parallel_size(settings)
    most = settings.gbs // settings.mbs * shards // settings.devices
    return [n for n in range(1, most + 1) if settings.devices * n % shards == 0 and settings.gbs % (settings.mbs * settings.devices * n // shards) == 0]


def _schedule_problems(args) -> list[Problem]:
    problems = []
    positive = ("max_steps", "gbs", "mbs", "seq_length", "val_check_interval", "limit_val_batches", "log_interval")
    for name in positive:
        if getattr(args, name) <= 0:
            problems.append(Problem(flag(name), f"{getattr(args, name)} must be positive", "give a positive number"))
    if problems:
        return problems
    if args.warmup_steps < 0 or args.warmup_steps > args.max_steps:
        problems.append(Problem(flag("warmup_steps"), f"{args.warmup_steps} is outside 0..--max_steps {args.max_steps}", "warm up for a fraction of the run"))
    if args.val_check_interval > args.max_steps:
        problems.append(Problem(flag("val_check_interval"), f"{args.val_check_interval} is beyond --max_steps {args.max_steps}: no validation, so no checkpoint would be kept", "validate at least once: at most --max_steps"))
    if not 0 <= args.min_lr <= args.lr:
        problems.append(Problem(flag("min_lr"), f"{args.min_lr} is not between 0 and --lr {args.lr}", "the schedule decays from --lr to --min_lr"))
    return problems


def _data_problems(args, facts: DistillFacts) -> list[Problem]:
    if not args.data_paths:
        return [Problem(flag("data_paths"), "no training data", "give the tokenized data prefix written by notebook 01")]
    return [missing_data(prefix) for prefix in facts.missing_data]


def _kd_config_problems(facts: DistillFacts) -> list[Problem]:
    config, student, teacher = facts.kd_config, facts.student, facts.teacher
    if config is None:
        return []
    if isinstance(config, str):
        return [Problem(flag("kd_config"), config, "give a readable YAML file, or omit the flag for logits-only distillation")]
    problems = []
    unknown = set(config) - KD_CONFIG_KEYS
    if unknown:
        problems.append(Problem(flag("kd_config"), f"unknown keys {sorted(unknown)}", f"use only {sorted(KD_CONFIG_KEYS)}"))
    if config.get("kd_loss_scale", 1.0) <= 0:
        problems.append(Problem(flag("kd_config"), "kd_loss_scale must be positive", "for example kd_loss_scale: 1.0"))
    for pair in config.get("intermediate_layer_pairs", []):
        for name, arch, who in zip(pair, (student, teacher), ("student", "teacher")):
            index = _layer_index(name)
            if index is not None and not 0 <= index < arch.num_layers:
                problems.append(Problem(flag("kd_config"), f"{name!r}: the {who} has layers 0..{arch.num_layers - 1}", "pair layers that exist (0-indexed)"))
    return problems


def _layer_index(module_name: str) -> int | None:
    parts = module_name.split(".")
    for before, value in zip(parts, parts[1:]):
        if before == "layers" and value.isdigit():
            return int(value)
    return None
