"""Export distilled Megatron checkpoints to Hugging Face, each with its logits check (the Megatron-Bridge route).

    python -m helpers.distill.bridge_export --checkpoint distill/RUN/checkpoints/iter_0000040 \\
        --output models/hf-export/depth-distilled --report results/export-depth-distilled-logits.json [--checkpoint ...]

The export is distill.py's (--hf_export_path): `AutoBridge.export_ckpt` with the run's student as the template, so
the folder holds its config, the distilled weights and the student's tokenizer files. The check builds the Megatron
checkpoint as a model and compares its next-token logits with the exported folder's in transformers (`logits.judge`);
the command exits 1 if one differs. An exported folder is reused unless --overwrite; the check always runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from helpers.conversion import bridge as conversion
from helpers.conversion.jobs import Job
from helpers.conversion.logits import LogitsCheck, sample_token_ids
from helpers.distill import runs
from helpers.errors import refuse
from helpers.models.checkpoints import is_hf_checkpoint
from helpers.run import entry_point
from helpers.run.launch import python_module
from helpers.run.outputs import produce


def student(checkpoint: Path) -> Path:
    """The Hugging Face student the checkpoint's run distilled (recorded in its settings)."""
    started = runs.started_with(checkpoint.parent.parent)
    if not (checkpoint / "metadata.json").is_file() or started is None:
        raise refuse("--checkpoint", f"{checkpoint} is not a checkpoint of a `helpers.distill.bridge` run", "give <output_dir>/checkpoints/iter_<step> of a run")
    return Path(started["student_hf_path"])


def export(checkpoint: Path, output: Path, overwrite: bool = False) -> Path:
    """Write the checkpoint as a Hugging Face folder at `output` (reused if valid, unless `overwrite`)."""
    from megatron.bridge import AutoBridge

    template = AutoBridge.from_hf_pretrained(str(student(checkpoint)))

    def convert(partial: Path) -> None:
        template.export_ckpt(megatron_path=str(checkpoint), hf_path=str(partial), show_progress=False, strict=True)

    return produce(output, convert, is_valid=is_hf_checkpoint, overwrite=overwrite, what="Hugging Face checkpoint")


def check(checkpoint: Path, output: Path) -> LogitsCheck:
    """The Megatron checkpoint's logits against the exported folder's, on the sample text."""
    from megatron.bridge import AutoBridge
    from megatron.core.utils import unwrap_model

    bridge = AutoBridge.from_hf_pretrained(str(output))
    model = bridge.load_megatron_model(str(checkpoint), wrap_with_ddp=False)
    for module in model:
        module.eval()
    loaded = conversion.Loaded(bridge, None, model, unwrap_model(model[0]))
    return conversion.compare(loaded, output, sample_token_ids(output))


def read_check(report: Path) -> LogitsCheck:
    """The logits check a report of this command holds."""
    return LogitsCheck(**json.loads(report.read_text())["logits"])


def command(*todo: Job, overwrite: bool = False) -> list[str]:
    flags = [flag for job in todo for flag in ("--checkpoint", job.source, "--output", job.output, "--report", job.report)]
    return python_module("helpers.distill.bridge_export", *flags, *(["--overwrite"] if overwrite else []))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.distill.bridge_export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, action="append", help="<output_dir>/checkpoints/iter_<step> (repeat for several)")
    p.add_argument("--output", required=True, type=Path, action="append", help="the Hugging Face folder to write")
    p.add_argument("--report", required=True, type=Path, action="append", help="write the logits check here as JSON")
    p.add_argument("--overwrite", action="store_true", help="export again over an existing folder")
    return p


def checked(args: argparse.Namespace) -> None:
    """One --output and one --report a --checkpoint, every checkpoint checked before the first model is built."""
    if not len(args.checkpoint) == len(args.output) == len(args.report):
        raise refuse("--checkpoint/--output/--report", "unequal counts", "give one --output and one --report after each --checkpoint")
    for checkpoint in args.checkpoint:
        student(checkpoint)


def export_all(args: argparse.Namespace, _: None) -> int:
    """Export every checkpoint, then check each export's logits; exit status 1 if one differs."""
    from helpers import rehearsal

    rehearsal.enable_bridge()
    jobs = list(zip(args.checkpoint, args.output, args.report))
    for checkpoint, output, _ in jobs:  # before a process group exists: export_ckpt makes one of its own
        export(checkpoint, output, args.overwrite)  # (megatron/bridge/models/conversion/auto_bridge.py:804)
    conversion.start_distributed()
    failed = []
    for checkpoint, output, report in jobs:
        logits = check(checkpoint, output)
        print(f"Logits check, Megatron checkpoint vs its Hugging Face export ({output.name}): {logits}", flush=True)
        conversion.write_report(report, logits, source=checkpoint, output=output)
        failed += [] if logits.passed else [str(output)]
    conversion.stop_distributed()
    if failed:
        print(f"helpers.distill.bridge_export: {', '.join(failed)} changes the model's logits (see above)", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, checked, export_all)


if __name__ == "__main__":
    sys.exit(main())
