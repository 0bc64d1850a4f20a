"""Run code in an interpreter of its own: NeMo initialises distributed state once per process."""

import subprocess
import sys


def run_python(script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter (NeMo needs a process of its own); fail with its output if it fails."""
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result
