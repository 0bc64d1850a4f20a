"""Check the installed stack against the versions a route is written for (`python -m helpers.environment --route R`)."""

from __future__ import annotations

import argparse
import sys

from helpers.routes import DEFAULT_ROUTE, ROUTE_ENV, ROUTES, get_route, installed_versions

# The versions of the packages whose APIs each route's helpers call: NeMo 2's, the NeMo 25.09 container's; the
# Megatron-Bridge route's, the NeMo 26.02 container's with ModelOpt 0.43 (CPU) or 0.44 (GPU, installed on top).
EXPECTED = {
    "nemo2": {"nemo-toolkit": "2.5.", "megatron-core": "0.14.", "nvidia-modelopt": "0.35.", "transformers": "4."},
    "bridge": {"megatron-bridge": "0.3.", "megatron-core": "0.1", "nvidia-modelopt": "0.4", "transformers": "4."},
}


def problems(route: str) -> list[str]:
    found = []
    versions = installed_versions(ROUTES[route])
    for package, prefix in EXPECTED[route].items():
        version = versions[package]
        if version is None or not version.startswith(prefix):
            found.append(f"{package} {version or 'is not installed'} (expected {prefix}x)")
    return found


def import_stack(route: str) -> None:
    """Import the route's whole stack once, as its steps do."""
    if route == "nemo2":
        from helpers.run.stack import nemo_llm

        nemo_llm()
    else:
        from helpers.run.stack import megatron_bridge

        megatron_bridge()


def main(argv: list[str] | None = None) -> int:
    import os

    import torch

    p = argparse.ArgumentParser(prog="python -m helpers.environment", description=__doc__)
    p.add_argument("--route", default=os.environ.get(ROUTE_ENV, DEFAULT_ROUTE), choices=list(ROUTES))
    route = get_route(p.parse_args(argv).route)
    for package, version in installed_versions(route).items():
        print(f"{package:16} {version}")
    print(f"{'CUDA':16} {torch.cuda.device_count()} device(s)" if torch.cuda.is_available() else f"{'CUDA':16} none: CPU rehearsal")
    issues = problems(route.name)
    if not issues:
        import_stack(route.name)  # the whole stack imports together
    for issue in issues:
        print(f"problem: {issue}", file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
