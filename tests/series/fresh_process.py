"""Run code in an interpreter of its own: NeMo initialises distributed state once per process."""

import subprocess
import sys


def run_python(script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter (NeMo needs a process of its own); fail with its output if it fails."""
    return run_pythons((script, *args), timeout=timeout)[0]


def run_pythons(*scripts: tuple[str, ...], timeout: int = 900) -> list[subprocess.CompletedProcess]:
    """Run each (script, *args) in a fresh interpreter, all at once (their start-ups overlap); fail if one fails."""
    started = [
        (script, subprocess.Popen([sys.executable, "-c", *script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for script in scripts
    ]
    results = []
    for script, process in started:
        stdout, stderr = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"exit {process.returncode}\n{stdout[-2000:]}\n{stderr[-4000:]}"
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results
