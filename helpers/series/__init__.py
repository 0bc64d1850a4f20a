"""Run the whole series: execute the four notebooks in order, then print a one-screen summary.

    python -m helpers.series                       # SmolLM2-135M on CPU, work directory ./workspace
    python -m helpers.series --profile tiny        # the mechanics in minutes
    python -m helpers.series --profile qwen3-1.7b --workdir /data/work
    python -m helpers.series --profile qwen3-8b --dry-run   # the plan and its checks, no GPU needed
    python -m helpers.series --route bridge        # the same series on Megatron-Bridge + ModelOpt (make run ROUTE=bridge)

Each notebook runs in a fresh kernel, with the repository as its working directory, exactly as
JupyterLab would run it. The executed copies go to <workdir>/<profile>/<route>/executed/ (also when a
cell fails, so the failing output can be read there) and the figures to .../figures/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from helpers import REPOSITORY
from helpers.profiles import DEFAULT_PROFILE, PROFILE_ENV, get_profile
from helpers.routes import DEFAULT_ROUTE, ROUTE_ENV, ROUTES, get_route, require_route_installed
from helpers.run import timings
from helpers.workspace import DEFAULT_WORKDIR, WORKDIR_ENV, Workspace, open_workspace, workspace_root

NOTEBOOKS = (
    "01_model_and_data_preparation.ipynb",
    "02_pruning.ipynb",
    "03_distillation.ipynb",
    "04_depth_vs_width_comparison.ipynb",
)


class NotebookFailed(RuntimeError):
    """A cell of a notebook raised; the executed copy holds its output."""


def execute(notebook: Path, executed: Path, timeout: int | None = None) -> float:
    """Execute `notebook` in a fresh kernel, writing the executed copy to `executed`; return the seconds taken."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from tqdm.auto import tqdm

    nb = nbformat.read(notebook, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    progress = tqdm(total=code_cells, desc=notebook.stem, unit="cell")
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # the kernel's own notices, not the cells' warnings
        resources={"metadata": {"path": str(notebook.parent)}},
        on_cell_executed=lambda cell, **_: progress.update(1) if cell.cell_type == "code" else None,
    )
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        raise NotebookFailed(f"{notebook.name} failed; its executed copy is {executed}\n{error}") from error
    finally:
        progress.close()
        executed.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed)
    return time.perf_counter() - started


def summary(ws: Workspace, seconds: dict[str, float], cpu: dict[str, float]) -> str:
    """Timings, the comparison table and where everything is, on one screen."""
    from helpers import distill
    from helpers.evaluate import comparison, speed

    measured = pd.DataFrame(comparison.load(ws)["models"]).set_index("model")
    note = speed.unreliable_note(measured)
    kd = distill.summary(ws)[["val_loss before KD (step 0)", "best val_loss", "best step"]]
    per_notebook = ", ".join(f"{name[:2]} {value / 60:.1f} min" for name, value in seconds.items())
    return "\n".join(
        [
            f"Series finished in {sum(seconds.values()) / 60:.1f} min ({per_notebook}).",
            "",
            comparison.overview(measured).to_string() + (f"\n{note}" if note else ""),
            "",
            "Distillation (validation loss):",
            kd.to_string(),
            "",
            "Where the time went: each notebook's commands (start-up until NeMo is imported, then work) and its kernel;",
            "the CPU seconds of the notebook's kernel and every process it started, and how many cores that kept busy:",
            timings.breakdown(ws.logs, seconds, cpu).to_string(),
            "",
            "Each command (seconds):",
            timings.commands(ws.logs).to_string(),
            "",
            f"Executed notebooks: {ws.executed}",
            f"Figures:            {ws.figures}",
            f"Results:            {ws.results / 'comparison.csv'}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.series", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default=os.environ.get(PROFILE_ENV, DEFAULT_PROFILE), help=f"profile to run (default: {DEFAULT_PROFILE})")
    p.add_argument("--route", default=os.environ.get(ROUTE_ENV, DEFAULT_ROUTE), help=f"route to run (default: {DEFAULT_ROUTE}): {', '.join(ROUTES)}")
    p.add_argument("--workdir", default=os.environ.get(WORKDIR_ENV, DEFAULT_WORKDIR), help="work directory (default: ./workspace)")
    p.add_argument("--timeout", type=int, help="seconds one cell may take (default: no limit)")
    p.add_argument("--dry-run", action="store_true", help="plan a full profile without a GPU or a download: commands, checks, memory, time, disk")
    args = p.parse_args(argv)

    os.environ[PROFILE_ENV], os.environ[ROUTE_ENV] = args.profile, args.route  # the flags win over inherited values
    profile, route = get_profile(args.profile), get_route(args.route)
    if args.dry_run:
        from helpers.series import dry_run

        root = workspace_root(args.workdir, profile.name, route.name)
        return dry_run.main(profile, Workspace(root=root, model_name=profile.model.name, route=route.name))
    require_route_installed(route)
    # The notebooks read these in their first cell; the kernels inherit them.
    os.environ[WORKDIR_ENV] = str(Path(args.workdir).expanduser().resolve())
    ws = open_workspace(profile.name, profile.model.name, route=route.name)
    print(f"Running the series on profile {profile.name!r}, route {route.name!r}, in {ws.root}")
    seconds, cpu = {}, {}
    for name in NOTEBOOKS:
        cpu_before = timings.children_cpu()  # the kernel is this process's child, and ends with the notebook
        try:
            seconds[name] = execute(REPOSITORY / name, ws.executed / name, args.timeout)
        except NotebookFailed as error:
            print(error, file=sys.stderr)
            return 1
        cpu[name] = timings.children_cpu() - cpu_before
        print(f"{name}: {seconds[name]:.0f} s, {cpu[name]:.0f} CPU s")
    print("\n" + summary(ws, seconds, cpu))
    return 0

