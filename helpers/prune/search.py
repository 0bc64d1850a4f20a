"""Pruning to a parameter budget: ModelOpt's architecture search (NAS), its search space, its limits and its record.

With a `params` constraint (ModelOpt >= 0.42), `mtp.prune` ranks every layer, head and channel as for a hand-picked
target, then (modelopt/torch/prune/plugins/mcore_minitron.py:389-515 at 0.43):
1. builds the search space: each size's choices are the multiples of its divisor up to the model's size, and the
   size itself (nas/plugins/megatron.py:229-233, 1039-1045); heads go in multiples of the query groups (:258-262).
   Only the largest (1 - max_width_pruning) share of each width's choices and (1 - max_depth_pruning) of the layer
   counts' stay (mcore_minitron.py:517-583);
2. counts the parameters of every combination and keeps the `top_k` largest under the budget;
3. scores those (the pruned model, before any training) with the score function and keeps the best.
`search_space` and `candidates` redo steps 1-2 from the sizes alone, so that a budget the search cannot meet is
refused before the model is loaded, and the dry run can say how many candidates a full-scale search scores.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from itertools import product
from pathlib import Path

from helpers.errors import Problem
from helpers.models.architecture import Architecture

# The divisors prune_minitron.py gives `get_mcore_minitron_config` for a search (0.43: L263-268; 0.44 L278-283,
# where --ss_channel_divisor replaces the first two).
DIVISORS = {"hidden_size": 256, "ffn_hidden_size": 512, "num_layers": 2}
SEARCHABLE = ("hidden_size", "ffn_hidden_size", "num_attention_heads", "num_layers")  # mcore_minitron's, for a dense GPT
MMLU = re.compile(r"mmlu_(\d+)pct")  # a score function: MMLU on N% of each subject
VAL_LOSS = "val_loss"  # the other: minus the loss on held-out windows
RECORD = "search.json"  # in the searched student's folder


def divisors(channel_divisor: int | None) -> dict[str, int]:
    """The search's step for each size: ModelOpt's, or `channel_divisor` for the hidden and MLP sizes."""
    return DIVISORS | ({"hidden_size": channel_divisor, "ffn_hidden_size": channel_divisor} if channel_divisor else {})


def _choices(size: int, step: int) -> list[int]:
    return sorted({*range(step, size + 1, step), size})


def search_space(arch: Architecture, channel_divisor: int | None, max_width_pruning: float, max_depth_pruning: float, skip=()) -> dict[str, list[int]]:
    """The choices the search combines for each size it searches (as ModelOpt prints them: "Search space for ...")."""
    steps = divisors(channel_divisor)
    full = {
        "hidden_size": _choices(arch.hidden_size, steps["hidden_size"]),
        "ffn_hidden_size": _choices(arch.ffn_hidden_size, steps["ffn_hidden_size"]),
        "num_attention_heads": _choices(arch.num_attention_heads, arch.num_query_groups),
        "num_layers": _choices(arch.num_layers, steps["num_layers"]),
    }
    space = {}
    for name, values in full.items():
        if name in skip or len(values) < 2:
            continue
        share = max_depth_pruning if name == "num_layers" else max_width_pruning
        space[name] = values[int((1 - share) * len(values)) :]
    return space


def combinations(space: dict[str, list[int]]) -> int:
    """How many architectures the search space holds (ModelOpt's "Total search space in consideration")."""
    return math.prod(len(values) for values in space.values())


def candidates(arch: Architecture, space: dict[str, list[int]], tied_embeddings: bool) -> list[tuple[dict[str, int], int]]:
    """Every combination of the search space with its parameter count, largest first."""
    combos = [dict(zip(space, values)) for values in product(*space.values())]
    counted = [(combo, replace(arch, **combo).parameter_counts(tied_embeddings)["total"]) for combo in combos]
    return sorted(counted, key=lambda item: item[1], reverse=True)


def under_budget(arch: Architecture, space: dict[str, list[int]], tied_embeddings: bool, budget: float, top_k: int) -> list[tuple[dict[str, int], int]]:
    """The candidates the search scores: the `top_k` largest under the budget."""
    return [(combo, params) for combo, params in candidates(arch, space, tied_embeddings) if params <= budget][:top_k]


def problems(arch: Architecture, tied_embeddings: bool, budget: float, *, channel_divisor: int | None, max_width_pruning: float,
             max_depth_pruning: float, hparams_to_skip, top_k: int, score_func: str, names: dict[str, str]) -> list[Problem]:  # fmt: skip
    """What makes a search impossible or meaningless, before the model is loaded; `names` are the flags' names."""
    found = []
    teacher = arch.parameter_counts(tied_embeddings)["total"]
    if score_func != VAL_LOSS and not MMLU.fullmatch(score_func):
        found.append(Problem(names["score_func"], f"{score_func!r} is no score function", "give mmlu_<N>pct (MMLU on N% of each subject) or val_loss"))
    for name, share in (("max_width_pruning", max_width_pruning), ("max_depth_pruning", max_depth_pruning)):
        if not 0 < share < 1:
            found.append(Problem(names[name], f"{share} is not a fraction", "give a share between 0 and 1, e.g. 0.4 (width) or 0.2 (depth)"))
    unknown = sorted(set(hparams_to_skip) - set(SEARCHABLE))
    if unknown:
        found.append(Problem(names["hparams_to_skip"], f"{unknown}: not sizes the search combines", f"choose from {', '.join(SEARCHABLE)}"))
    if top_k < 1:
        found.append(Problem(names["top_k"], f"{top_k}: the search must score at least one candidate", "give 10, as ModelOpt's default"))
    if budget >= teacher:
        found.append(Problem(names["params"], f"{budget:,.0f} parameters: the model has {teacher:,}, nothing needs pruning", "give a budget below the model's size"))
    elif 0 < max_width_pruning < 1 and 0 < max_depth_pruning < 1 and not unknown:
        space = search_space(arch, channel_divisor, max_width_pruning, max_depth_pruning, hparams_to_skip)
        smallest = replace(arch, **{name: values[0] for name, values in space.items()}).parameter_counts(tied_embeddings)["total"]
        if not space:
            found.append(Problem(names["channel_divisor"], "the search space holds the model alone", "search in smaller steps (a smaller divisor)"))
        elif budget < smallest:
            found.append(Problem(
                names["params"],
                f"{budget:,.0f} parameters: the search's smallest candidate has {smallest:,} ({space_text(space)})",
                f"give a budget of at least {smallest:,}, or let the search cut more (raise {names['max_width_pruning']} "
                f"or {names['max_depth_pruning']}, or search in smaller steps)",
            ))  # fmt: skip
    return found


def space_text(space: dict[str, list[int]]) -> str:
    return "; ".join(f"{name} {values[0]}-{values[-1]}" for name, values in space.items())


def table(record: dict, placed: dict[str, tuple[Architecture, int, float]]):
    """The scored candidates (architecture, parameters, score, chosen) and the `placed` models {label: (architecture,
    parameters, score)} scored with the same function, best first."""
    import pandas as pd

    rows = {f"candidate {n}": {**c["config"], "params": c["params"], "score": c["score"], "source": "search", "chosen": c["config"] == record["chosen"]}
            for n, c in enumerate(record["scored"], 1)}  # fmt: skip
    for label, (arch, params, score) in placed.items():
        rows[label] = {name: getattr(arch, name) for name in SEARCHABLE} | {"params": params, "score": score, "source": "pruned checkpoint", "chosen": False}
    return pd.DataFrame(rows).T.sort_values("score", ascending=False)


def cuts(record: dict, teacher: Architecture) -> str:
    """What the chosen architecture removes from the teacher, in words."""
    chosen = record["chosen"]
    parts = [f"{name} {getattr(teacher, name)} -> {value}" for name, value in chosen.items() if value != getattr(teacher, name)]
    layers = f" (dropped layers {record['dropped_layers']})" if record["dropped_layers"] else ""
    return (", ".join(parts) or "nothing") + layers


def save(folder: Path, record: dict) -> None:
    (folder / RECORD).write_text(json.dumps(record, indent=1))


def load(folder: Path) -> dict:
    """The search's record: budget, limits, search space, the scored candidates and the one chosen."""
    return json.loads((folder / RECORD).read_text())
