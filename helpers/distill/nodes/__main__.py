"""`python -m helpers.distill.nodes`: plan one full profile's distillation across nodes, and its Slurm scripts."""

from __future__ import annotations

import argparse
import os
import sys

from helpers.distill import budget, nodes, steps
from helpers.distill.nodes import Scenario, efficiency_note, plan, table
from helpers.errors import SettingError
from helpers.profiles import KINDS, PROFILES
from helpers.routes import DEFAULT_ROUTE
from helpers.series import dry_run
from helpers.workspace import DEFAULT_WORKDIR, WORKDIR_ENV, Workspace, workspace_root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.distill.nodes", description=nodes.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="qwen3-8b", choices=[name for name, each in PROFILES.items() if each.gpu], help="a full profile")
    p.add_argument("--nodes", type=int, required=True, help="nodes, each with the profile's devices")
    p.add_argument("--tokens", type=float, required=True, help="the token budget, e.g. 90e9")
    p.add_argument("--workdir", default=os.environ.get(WORKDIR_ENV, DEFAULT_WORKDIR), help="the work directory every node mounts")
    p.add_argument("--write", action="store_true", help="write each student's Slurm script into <workdir>/<profile>/nemo2/slurm/")
    args = p.parse_args(argv)
    profile = PROFILES[args.profile]
    ws = Workspace(workspace_root(args.workdir, profile.name, DEFAULT_ROUTE), profile.model.name)
    rate = budget.throughput(profile.gpu)
    try:
        planned = plan(profile, Scenario(int(args.tokens), args.nodes), *dry_run.shapes(profile), rate)
    except SettingError as error:
        print(f"helpers.distill.nodes refused:\n{error}", file=sys.stderr)
        return 2
    print(f"{table([planned]).to_string()}\n{efficiency_note(rate)}\n")
    if args.write:
        print("Wrote", *steps.write_slurm_scripts([planned], ws, Scenario(int(args.tokens), args.nodes)), sep="\n")
    else:
        print(steps.slurm_script(planned, ws, KINDS[0]))
    return 0


sys.exit(main())
