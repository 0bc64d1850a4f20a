"""Python interpreters started together, for work that needs a process of its own (NeMo sets up its distributed
state once per process, and a probe must not see what an earlier test imported or patched)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Hashable, Sequence


def run_together(commands: dict[Hashable, Sequence[str]], timeout: int = 900, check: bool = True) -> dict[Hashable, subprocess.CompletedProcess]:
    """Run `python <args>` for each entry, all at once (their start-ups overlap); with `check`, fail with the
    output of the first one that fails."""
    running = {key: subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for key, args in commands.items()}
    results = {}
    for key, process in running.items():
        stdout, stderr = process.communicate(timeout=timeout)
        if check:
            assert process.returncode == 0, f"{key}: exit {process.returncode}\n{stdout[-2000:]}\n{stderr[-4000:]}"
        results[key] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


def printed_json(result: subprocess.CompletedProcess):
    """What an interpreter reported as JSON on its last line of output (the libraries it imports print above it)."""
    return json.loads(result.stdout.strip().splitlines()[-1])
