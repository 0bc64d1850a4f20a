"""Keep the importance scores Minitron computes while `llm.prune` runs, and read them back.

ModelOpt ranks what to cut from activations collected on calibration data, then discards the
scores. Here they are recorded just before ModelOpt sorts the weights by them, gathered from
every pipeline stage, and saved as JSON inside the pruned checkpoint (`importance.json`):
- `layers`: block importance of each layer, 1 - cos(layer input, layer output), summed over
  calibration batches (1-indexed layer numbers); the lowest ones are dropped by depth pruning;
- `hidden_size`: importance of each embedding channel (from the layer norms' outputs);
- `ffn_hidden_size`: importance of each MLP neuron, per layer (from the input of linear_fc2);
- `num_heads_per_group` / `num_query_groups`: attention head scores, per layer, when heads are pruned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILENAME = "importance.json"
PER_LAYER = ("ffn_hidden_size", "num_heads_per_group", "num_query_groups")


@contextmanager
def recorded(scores: dict) -> Iterator[dict]:
    """While active, Minitron's scores are written into `scores` (the same dict on every rank)."""
    import torch
    from modelopt.torch.opt.utils import named_hparams
    from modelopt.torch.prune.plugins import mcore_minitron

    original = mcore_minitron.sort_parameters

    def sort_and_record(model, hps_to_sort=None, verbose=False):
        gpt = next(m for m in model.modules() if hasattr(getattr(m, "decoder", None), "layers"))
        local: dict = {"layers": {}, **{name: {} for name in PER_LAYER}}
        for layer in gpt.decoder.layers:
            local["layers"][layer.layer_number] = float(layer._scores)
        for name, hp in named_hparams(gpt, configurable=True):
            kind = name.split(".")[-1]
            if kind not in (hps_to_sort or ()) or hp.importance is None:
                continue
            values = [round(float(v), 6) for v in hp.importance.flatten()]
            if kind in PER_LAYER:
                index = int(name.split("decoder.layers.")[1].split(".")[0])
                local[kind][gpt.decoder.layers[index].layer_number] = values
            else:
                local[kind] = values
        stages = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(stages, local)
        for stage in stages:
            for key, value in stage.items():
                if isinstance(value, dict):
                    scores.setdefault(key, {}).update(value)
                else:
                    scores[key] = value
        return original(model, hps_to_sort, verbose=False)  # verbose prints every score tensor

    mcore_minitron.sort_parameters = sort_and_record
    try:
        yield scores
    finally:
        mcore_minitron.sort_parameters = original


def save(scores: dict, checkpoint: Path, **metadata) -> Path:
    """Write the scores (and what pruning did with them) into the checkpoint folder."""
    scores = {key: value for key, value in scores.items() if value != {}}
    path = checkpoint / FILENAME
    path.write_text(json.dumps({**metadata, **scores}, indent=1))
    return path


def load(checkpoint: Path) -> dict:
    """The importance record of a pruned checkpoint, with integer layer numbers."""
    record = json.loads((checkpoint / FILENAME).read_text())
    for key in ("layers", *PER_LAYER):
        if key in record:
            record[key] = {int(layer): value for layer, value in record[key].items()}
    return record


def layer_findings(scores: dict[int, float], dropped: list[int]) -> str:
    """What the layer scores of this run say, in words: where the first and last layers rank, and what was cut."""
    ranked = sorted(scores, key=scores.get, reverse=True)
    first, last = min(scores), max(scores)
    middle = [layer for layer in dropped if first + len(scores) // 4 <= layer <= last - len(scores) // 4]

    def rank(layer: int) -> str:
        return f"ranks {ranked.index(layer) + 1} of {len(scores)} ({scores[layer]:.3g})"

    return (
        f"First layer {first} {rank(first)}; last layer {last} {rank(last)}. "
        f"Dropped: {sorted(dropped)} ({len(middle)} of {len(dropped)} from the middle half of the stack)."
    )
