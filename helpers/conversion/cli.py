"""`python -m helpers.conversion import|export --source ... --output ... --report ...`: convert, then check the logits.

Several conversions in one command share one start-up of NeMo: repeat --source, --output and --report.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from helpers.conversion.jobs import Job, inspect_hf_checkpoint
from helpers.conversion.logits import LogitsCheck, compare_logits, sample_token_ids
from helpers.conversion.steps import export_to_hf, import_to_nemo
from helpers.errors import refuse
from helpers.models.checkpoints import require_nemo_checkpoint
from helpers.run import entry_point


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.conversion", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("direction", choices=("import", "export"), help="import: Hugging Face -> NeMo 2; export: NeMo 2 -> Hugging Face")
    p.add_argument("--source", required=True, type=Path, action="append", help="checkpoint to convert (repeat, with --output and --report, for several)")
    p.add_argument("--output", required=True, type=Path, action="append", help="where to write the converted checkpoint")
    p.add_argument("--report", required=True, type=Path, action="append", help="write the logits check here as JSON")
    p.add_argument("--overwrite", action="store_true", help="convert again even if a valid output exists")
    return p


def jobs(args: argparse.Namespace) -> list[Job]:
    """The conversions the command asks for: the i-th --source goes to the i-th --output and --report."""
    if not len(args.source) == len(args.output) == len(args.report):
        raise refuse(
            "--source/--output/--report",
            f"{len(args.source)} source(s), {len(args.output)} output(s) and {len(args.report)} report(s)",
            "give one --output and one --report after each --source",
        )
    return [Job(*paths) for paths in zip(args.source, args.output, args.report)]


def convert_one(direction: str, job: Job, overwrite: bool) -> LogitsCheck:
    """Convert `job.source` and compare the logits of both copies; write the check to `job.report`."""
    if direction == "import":
        hf_dir = job.source
        nemo = import_to_nemo(inspect_hf_checkpoint(job.source, "--source"), job.output, overwrite=overwrite)
    else:
        require_nemo_checkpoint(job.source, "--source")
        nemo, hf_dir = job.source, export_to_hf(job.source, job.output, overwrite=overwrite)
    check = compare_logits(nemo, hf_dir, sample_token_ids(hf_dir))
    print(f"Logits check, Hugging Face vs NeMo ({job.output.name}): {check}", flush=True)
    job.report.parent.mkdir(parents=True, exist_ok=True)
    job.report.write_text(json.dumps({"source": str(job.source), "output": str(job.output), "logits": asdict(check)}, indent=2))
    return check


def checked_jobs(args: argparse.Namespace) -> list[Job]:
    """`jobs`, every source checked before the first conversion starts."""
    todo = jobs(args)
    for job in todo:
        if args.direction == "import":
            inspect_hf_checkpoint(job.source, "--source")
        else:
            require_nemo_checkpoint(job.source, "--source")
    return todo


def convert_all(args: argparse.Namespace, todo: list[Job]) -> int:
    """Convert every job; exit status 1 if a logits check fails."""
    checks = [convert_one(args.direction, job, args.overwrite) for job in todo]
    return 0 if all(check.passed for check in checks) else 1


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, checked_jobs, convert_all)
