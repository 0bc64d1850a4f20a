"""Refuse pruning settings that cannot work, before a model is loaded.

Every rule here stands for a failure that otherwise shows up late: after a multi-minute load,
as an assertion deep in ModelOpt, or as a checkpoint that breaks when it is next loaded.
The same function guards the notebook (before launching torchrun) and `python -m helpers.prune`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from helpers.data.prefixes import missing_data, missing_datasets
from helpers.errors import Problem, flag, raise_if_any
from helpers.models.architecture import Architecture
from helpers.models.checkpoints import architecture, is_nemo_checkpoint

# Granularity of ModelOpt 0.35.1's Minitron search space for GPT models (the `default_rules` of
# modelopt/torch/prune/plugins/mcore_minitron.py): a width target must be one of its choices.
WIDTH_DIVISORS = {"target_hidden_size": 64, "target_ffn_hidden_size": 64}

WIDTH_TARGETS = {
    "target_hidden_size": "hidden_size",
    "target_ffn_hidden_size": "ffn_hidden_size",
    "target_num_attention_heads": "num_attention_heads",
    "target_num_query_groups": "num_query_groups",
}
TARGETS = {**WIDTH_TARGETS, "target_num_layers": "num_layers"}


@dataclass(frozen=True)
class PruneFacts:
    """What the pruning rules need to know from disk, read once by `gather` (or planned by a dry run)."""

    source: Architecture  # the model at --restore_path, as its weights have it
    missing_data: tuple[str, ...] = ()  # --data_paths prefixes without .bin/.idx
    save_path_occupied: bool = False  # --save_path already holds something
    tokenizer_missing: bool = False  # --tokenizer is given but is not a folder
    tied_embeddings: bool = False  # the output layer shares the embedding's weights (counted once)


def gather(args: argparse.Namespace) -> PruneFacts:
    """Read what the rules judge; --restore_path must already be known to be a NeMo checkpoint."""
    save = Path(args.save_path)
    return PruneFacts(
        source=architecture(Path(args.restore_path)),
        missing_data=missing_datasets(args.data_paths),
        save_path_occupied=save.is_file() or is_nemo_checkpoint(save) or (save.is_dir() and any(save.iterdir())),
        tokenizer_missing=bool(args.tokenizer) and not Path(args.tokenizer).is_dir(),
    )


def check_prune_args(args: argparse.Namespace, facts: PruneFacts, names: Mapping[str, str] | None = None) -> None:
    """Raise a SettingError listing every problem of `args` for pruning the model `facts.source`.

    `args` has the attributes of NeMo's gpt_prune.py flags; `names` gives the setting a user wrote for any of them
    (the Megatron-Bridge route's flags are ModelOpt's), which the problems name instead of `--attribute`.
    """
    source = facts.source
    named = partial(_named, names or {})
    problems: list[Problem] = []
    problems += _target_problems(args, source, named)
    problems += _layer_drop_problems(args, source, named)
    problems += _parallelism_problems(args, source, named)
    problems += _calibration_problems(args, facts, named)
    problems += _output_problems(args, facts, named)
    raise_if_any(problems)


def _named(names: Mapping[str, str], attribute: str) -> str:
    return names.get(attribute) or flag(attribute)


def _targets(args) -> dict[str, int]:
    return {name: getattr(args, name) for name in TARGETS if getattr(args, name) is not None}


def _target_problems(args, source: Architecture, flag: Callable[[str], str] = flag) -> list[Problem]:
    problems = []
    targets = _targets(args)
    for name, value in targets.items():
        current = getattr(source, TARGETS[name])
        if value <= 0:
            problems.append(Problem(flag(name), f"{value} is not a size", f"give a positive number up to {current}"))
        elif value > current:
            problems.append(Problem(flag(name), f"{value} is larger than the model's {current}", f"pruning only removes: give at most {current}"))
        elif name in WIDTH_DIVISORS and value % WIDTH_DIVISORS[name]:
            divisor = WIDTH_DIVISORS[name]
            below, above = value // divisor * divisor, (value // divisor + 1) * divisor
            problems.append(
                Problem(
                    flag(name),
                    f"{value} is not a multiple of {divisor}, the granularity of ModelOpt's Minitron search space "
                    "(ModelOpt stops with `AssertionError: Invalid choice` once the model is loaded)",
                    f"use {below} or {min(above, getattr(source, TARGETS[name]))}",
                )
            )
    heads, groups = args.target_num_attention_heads, args.target_num_query_groups
    if (heads is None) != (groups is None):
        pair = ("target_num_attention_heads", "target_num_query_groups")
        given, missing = pair if heads is not None else pair[::-1]
        problems.append(Problem(flag(missing), f"{flag(given)} needs it: heads are pruned within query groups", f"give both (for example {flag('target_num_query_groups')} {source.num_query_groups})"))
    elif heads is not None and 0 < groups <= heads and 0 < heads <= source.num_attention_heads:
        per_group = source.num_attention_heads // source.num_query_groups
        if heads % groups:
            problems.append(Problem(flag("target_num_query_groups"), f"{groups} query groups do not divide {heads} heads", "choose groups that divide the heads"))
        elif heads // groups > per_group:
            problems.append(Problem(flag("target_num_attention_heads"), f"{heads // groups} heads per group, the model has only {per_group}", f"keep at most {per_group * groups} heads for {groups} groups"))
    if targets and all(value == getattr(source, TARGETS[name]) for name, value in targets.items()):
        problems.append(Problem("targets", "every target equals the model's current size: nothing would be pruned", "give a smaller target"))
    return problems


def _layer_drop_problems(args, source: Architecture, flag: Callable[[str], str] = flag) -> list[Problem]:
    drop = args.drop_layers
    if drop is None:
        if not _targets(args) and getattr(args, "target_params", None) is None:  # a budget: the search picks targets
            return [Problem("targets", "nothing to prune", f"give {flag('target_num_layers')}, width targets or {flag('drop_layers')}")]
        return []
    problems = []
    if _targets(args):
        problems.append(Problem(flag("drop_layers"), "cannot be combined with --target_* options", "either drop layers by number or prune to targets"))
    if not drop:
        problems.append(Problem(flag("drop_layers"), "no layer given", "list the (1-indexed) layers to drop"))
    outside = sorted({n for n in drop if not 1 <= n <= source.num_layers})
    if outside:
        problems.append(Problem(flag("drop_layers"), f"layers {outside} do not exist (layers are numbered 1 to {source.num_layers})", "list layers between 1 and the model's layer count"))
    repeated = sorted({n for n in drop if drop.count(n) > 1})
    if repeated:
        problems.append(Problem(flag("drop_layers"), f"layers {repeated} are listed more than once", "list each layer once"))
    if len(set(drop)) >= source.num_layers:
        problems.append(Problem(flag("drop_layers"), "would drop every layer", "keep at least one layer"))
    return problems


def _parallelism_problems(args, source: Architecture, flag: Callable[[str], str] = flag) -> list[Problem]:
    problems = []
    if args.tp_size > 1 and args.drop_layers is None:
        problems.append(Problem(flag("tp_size"), f"{args.tp_size}: Minitron pruning runs with tensor parallel size 1 only", "use --tp_size 1 and split the model with --pp_size"))
    world, shards = args.devices * args.num_nodes, args.tp_size * args.pp_size
    if world != shards:
        problems.append(
            Problem(
                flag("devices"),
                f"{args.devices} device(s) x {args.num_nodes} node(s) = {world} processes, but tp {args.tp_size} x pp {args.pp_size} = {shards} model shards "
                "(pruning has no data parallelism: every process must hold a different part of the model)",
                f"make {flag('devices')} x {flag('num_nodes')} equal {flag('tp_size')} x {flag('pp_size')}",
            )
        )
    first, last = args.num_layers_in_first_pipeline_stage, args.num_layers_in_last_pipeline_stage
    stages, layers = args.pp_size, source.num_layers
    if stages > layers:
        problems.append(Problem(flag("pp_size"), f"{stages} pipeline stages for {layers} layers", f"use at most {layers} stages"))
    elif first is None and last is None:
        if layers % stages:
            problems.append(
                Problem(flag("pp_size"), f"{layers} layers do not split evenly into {stages} pipeline stages", f"choose a {flag('pp_size')} that divides the layers, or set {flag('num_layers_in_first_pipeline_stage')} / {flag('num_layers_in_last_pipeline_stage')}")
            )
    else:
        fixed = (first or 0) + (last or 0)
        middle = stages - (first is not None) - (last is not None)
        rest = layers - fixed
        if rest < 0 or (middle == 0 and rest != 0) or (middle > 0 and rest % middle):
            problems.append(
                Problem(flag("num_layers_in_first_pipeline_stage"), f"first {first} / last {last} layers leave {rest} layers for {middle} other stages", "choose stage sizes that add up to the layer count")
            )
    return problems


def _calibration_problems(args, facts: PruneFacts, flag: Callable[[str], str] = flag) -> list[Problem]:
    if args.drop_layers is not None:
        return []  # dropping named layers needs no data
    problems = []
    if not args.seq_length or args.seq_length <= 0:
        problems.append(Problem(flag("seq_length"), "needed to calibrate importance", "give the sequence length (4096 for Qwen3-8B on WikiText)"))
    if args.mbs <= 0 or args.num_train_samples <= 0:
        problems.append(Problem(flag("mbs"), "micro batch and sample count must be positive", f"for example {flag('mbs')} 4 {flag('num_train_samples')} 1024"))
    elif args.num_train_samples % args.mbs:
        problems.append(Problem(flag("num_train_samples"), f"{args.num_train_samples} is not divisible by {flag('mbs')} {args.mbs}", f"use a multiple of {args.mbs}, e.g. {args.num_train_samples // args.mbs * args.mbs or args.mbs}"))
    if not args.data_paths:
        problems.append(Problem(flag("data_paths"), "no calibration data: importance would be measured on random tokens", "give the tokenized data prefix written by notebook 01"))
    problems += [missing_data(prefix) for prefix in facts.missing_data]
    if facts.tokenizer_missing:
        problems.append(Problem(flag("tokenizer"), f"{args.tokenizer} is not a folder", "give a local Hugging Face tokenizer folder, or omit it to use the model's own"))
    return problems


def _output_problems(args, facts: PruneFacts, flag: Callable[[str], str] = flag) -> list[Problem]:
    save, restore = Path(args.save_path).resolve(), Path(args.restore_path).resolve()
    if save == restore:
        return [Problem(flag("save_path"), f"is the {flag('restore_path')}: pruning would overwrite its own input", "choose a new folder")]
    if facts.save_path_occupied and not args.overwrite:
        return [Problem(flag("save_path"), f"{save} already holds a checkpoint", f"choose another {flag('save_path')}, or pass {flag('overwrite')} to replace it")]
    return []
