"""Where a series' time goes: each launched command's start-up (interpreter, torch and NeMo imports) and work.

`launch.run` times every command it runs with a `Stopwatch`, which watches the command's output for
the line `stack.nemo_llm` prints once NeMo is imported, and appends one record per finished command
to the log folder's timings.jsonl. `breakdown` turns those records and the notebooks' own times into
a table: per notebook, the start-up and the work of its commands, and the time spent in the kernel.

Each record also holds the CPU seconds the command used, with every process it started (`children_cpu`):
beside the wall time it tells how busy the cores were, and what no scheduling can save. On 2 cores, a
notebook that needs 600 CPU seconds cannot finish in less than 300 s, however it overlaps its steps.
"""

from __future__ import annotations

import json
import re
import resource
import time
from pathlib import Path

from helpers.run.cell_output import STACK_IMPORTED_LINE

RECORDS = "timings.jsonl"
_IMPORTED = re.compile(STACK_IMPORTED_LINE)


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's children that have ended, with all they waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Stopwatch:
    """Times one command from the lines it prints: start-up until NeMo is imported, the rest is work."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.cpu_before = children_cpu()
        self.startup: float | None = None

    def line(self, line: str) -> None:
        """The first import line ends the start-up (a process the command starts later overlaps its work)."""
        if self.startup is None and _IMPORTED.match(line):
            self.startup = time.perf_counter() - self.started

    def record(self, log: Path) -> None:
        """Append this command's times to the log folder's records (once it has ended: its CPU time counts then)."""
        total = time.perf_counter() - self.started
        cpu = children_cpu() - self.cpu_before
        entry = {"log": log.stem, "startup_s": round(self.startup or 0.0, 1), "total_s": round(total, 1), "cpu_s": round(cpu, 1)}
        with (log.parent / RECORDS).open("a") as records:
            records.write(json.dumps(entry) + "\n")


def commands(log_dir: Path):
    """One row per finished command (the latest run of each log): its notebook, start-up, work and CPU, in seconds."""
    import pandas as pd

    path = log_dir / RECORDS
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    table = pd.DataFrame(rows, columns=["log", "startup_s", "total_s", "cpu_s"]).drop_duplicates("log", keep="last")
    table["notebook"] = table["log"].str[:2]
    table["work_s"] = (table["total_s"] - table["startup_s"]).round(1)
    return table.set_index("log")[["notebook", "startup_s", "work_s", "total_s", "cpu_s"]]


def breakdown(log_dir: Path, notebook_seconds: dict[str, float], notebook_cpu: dict[str, float]):
    """Per notebook: seconds in its commands' start-ups, in their work and in the kernel; CPU seconds of it all."""
    import pandas as pd

    columns = ["startup_s", "work_s", "total_s", "cpu_s"]
    per_command = commands(log_dir).groupby("notebook")[columns].sum()
    rows = {}
    for name, seconds in notebook_seconds.items():
        spent = per_command.loc[name[:2]] if name[:2] in per_command.index else pd.Series(0.0, index=columns)
        rows[name] = {
            "start-up (s)": spent["startup_s"],
            "work (s)": spent["work_s"],
            "kernel (s)": seconds - spent["total_s"],
            "notebook (s)": seconds,
            "CPU (s)": notebook_cpu[name],
        }
    table = pd.DataFrame(rows).T
    table.loc["series"] = table.sum()
    return table.round(0).assign(**{"cores busy": (table["CPU (s)"] / table["notebook (s)"]).round(2)})
