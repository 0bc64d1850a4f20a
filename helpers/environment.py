"""Check the installed stack against the versions this series is written for (`python -m helpers.environment`)."""

from __future__ import annotations

import sys
from importlib import metadata

# The NeMo 25.09 container's versions of the packages whose APIs the helpers call.
EXPECTED = {
    "nemo-toolkit": "2.5.",
    "megatron-core": "0.14.",
    "nvidia-modelopt": "0.35.",
    "transformers": "4.",
}


def installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def problems() -> list[str]:
    found = []
    for package, prefix in EXPECTED.items():
        version = installed(package)
        if version is None or not version.startswith(prefix):
            found.append(f"{package} {version or 'is not installed'} (expected {prefix}x)")
    return found


def main() -> int:
    import torch

    for package in (*EXPECTED, "torch"):
        print(f"{package:16} {installed(package)}")
    print(f"{'CUDA':16} {torch.cuda.device_count()} device(s)" if torch.cuda.is_available() else f"{'CUDA':16} none: CPU rehearsal")
    issues = problems()
    if not issues:
        from helpers.stack import nemo_llm

        nemo_llm()  # the whole stack imports together
    for issue in issues:
        print(f"problem: {issue}", file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
