"""Scalars from TensorBoard event files, read with TensorBoard's own event reader.

NeMo logs a step's metrics under the step's 0-based index; here `step` counts optimizer steps
completed, so a validation after the 4th step is at step 4 and the loss before training at 0.
A resumed run adds a new `version_*` folder; the steps it repeats (those after the checkpoint it
resumed from) are taken from the newest version, so each step appears once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def event_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)


def scalars(run_dir: Path) -> pd.DataFrame:
    """Every scalar of the run: columns tag, step, value, wall_time; one row per (tag, step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    frames = []
    for order, path in enumerate(event_files(run_dir)):
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            events = accumulator.Scalars(tag)
            frames.append(
                pd.DataFrame(
                    {"tag": tag, "step": [e.step + 1 for e in events], "value": [e.value for e in events],
                     "wall_time": [e.wall_time for e in events], "launch": order}
                )
            )  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=["tag", "step", "value", "wall_time"])
    table = pd.concat(frames).sort_values(["launch", "wall_time"])
    return table.drop_duplicates(["tag", "step"], keep="last").drop(columns="launch").sort_values(["tag", "step"]).reset_index(drop=True)


def series(run_dir: Path, tag: str) -> pd.Series:
    """One scalar of the run indexed by step."""
    table = scalars(run_dir)
    picked = table[table["tag"] == tag]
    return pd.Series(picked["value"].to_numpy(), index=picked["step"].to_numpy(), name=tag)
