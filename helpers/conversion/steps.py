"""Hugging Face <-> NeMo 2 conversion (`llm.import_ckpt`, `llm.export_ckpt`) and the logits check.

A conversion can go silently wrong: without Transformer Engine, NeMo 2.5 drops every norm weight
on import unless the names are mapped. Comparing the next-token logits of both formats on real
text catches any such slip, so every conversion here is followed by that check:

    python -m helpers.conversion import --source HF_DIR --output NEMO_DIR --report check.json
    python -m helpers.conversion export --source NEMO_DIR --output HF_DIR --report check.json \\
        [--source NEMO_DIR_2 --output HF_DIR_2 --report check_2.json ...]

NeMo's conversions build a Lightning trainer, which refuses to start inside a notebook kernel,
so notebooks launch the command (`cli`) through `convert`, and read the JSON reports it writes.
The checkpoint it starts from and the jobs are in `jobs`; the check itself is in `logits`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import shutil
import tempfile
from pathlib import Path

from helpers import rehearsal
from helpers.conversion.jobs import NEMO_MODELS, HFModel, Job, export_job
from helpers.conversion.logits import LogitsCheck
from helpers.models.architecture import Architecture
from helpers.models.checkpoints import is_hf_checkpoint, is_nemo_checkpoint, require_nemo_checkpoint
from helpers.run.launch import python_module, run
from helpers.run.outputs import produce
from helpers.run.stack import nemo_llm
from helpers.workspace import Workspace


def import_to_nemo(hf: HFModel, output: Path, overwrite: bool = False) -> Path:
    """Convert the Hugging Face checkpoint to a NeMo 2 checkpoint at `output` with `llm.import_ckpt`."""
    llm = nemo_llm()
    c = hf.config
    model_class, config_class = (getattr(llm, name) for name in NEMO_MODELS[c["model_type"]])
    # The model object only selects NeMo's importer, which reads the architecture from config.json.
    model = model_class(config_class(**Architecture.from_hf_config(c).megatron_config(), **rehearsal.config_fields(c["model_type"])))

    def convert(partial: Path) -> None:
        with own_tokenizer_folder():
            llm.import_ckpt(model=model, source=f"hf://{hf.path}", output_path=partial)

    return produce(output, convert, is_valid=is_nemo_checkpoint, overwrite=overwrite, what="NeMo checkpoint")


def shared_tokenizer_folder() -> Path:
    """Where NeMo's importers save the Hugging Face tokenizer unless told otherwise (/tmp/nemo_tokenizer)."""
    from nemo.lightning.io.connector import ModelConnector

    return Path(inspect.signature(ModelConnector.save_hf_tokenizer_assets).parameters["save_path"].default)


@contextlib.contextmanager
def own_tokenizer_folder():
    """Inside the block, NeMo's importers save the Hugging Face tokenizer to a new folder of their own.

    Every importer saves it to one fixed folder, /tmp/nemo_tokenizer (the default of `save_hf_tokenizer_assets`,
    nemo/lightning/io/connector.py:319, called by qwen3.py:269 and llama.py:653), which nothing empties, and the
    checkpoint copies that whole folder into context/nemo_tokenizer. Whatever an earlier import left there ends
    up in the new checkpoint and in every export of it: another model's chat_template.jinja (which transformers
    prefers to the template in tokenizer_config.json) or its tokenizer.model; and two imports at once write into
    each other's tokenizer.
    """
    from nemo.lightning.io.connector import ModelConnector

    shared = ModelConnector.save_hf_tokenizer_assets
    parent = Path(tempfile.mkdtemp(prefix="nemo-import-"))
    folder = parent / shared_tokenizer_folder().name  # the checkpoint keeps the folder's name

    def save_to_own_folder(self, tokenizer_name_or_path, save_path=None):
        return shared(self, tokenizer_name_or_path, save_path=str(folder))

    ModelConnector.save_hf_tokenizer_assets = save_to_own_folder
    try:
        yield folder
    finally:
        ModelConnector.save_hf_tokenizer_assets = shared
        shutil.rmtree(parent, ignore_errors=True)


def export_to_hf(checkpoint: Path, output: Path, overwrite: bool = False) -> Path:
    """Convert a NeMo 2 checkpoint to a Hugging Face checkpoint at `output` with `llm.export_ckpt`."""
    require_nemo_checkpoint(checkpoint, "checkpoint")
    llm = nemo_llm()

    def convert(partial: Path) -> None:
        llm.export_ckpt(path=checkpoint, target="hf", output_path=partial)

    return produce(output, convert, is_valid=is_hf_checkpoint, overwrite=overwrite, what="Hugging Face checkpoint")


def command(direction: str, *todo: Job, overwrite: bool = False) -> list[str]:
    """`python -m helpers.conversion import|export ...`: the conversions and their logits checks, as one command."""
    flags = [flag for job in todo for flag in ("--source", job.source, "--output", job.output, "--report", job.report)]
    return python_module("helpers.conversion", direction, *flags, *(["--overwrite"] if overwrite else []))


def convert(direction: str, todo: dict[str, Job], log: Path, overwrite: bool = False) -> dict[str, LogitsCheck]:
    """Run the conversions in one process (NeMo starts once), streamed, raising if one fails; return their logits checks."""
    for job in todo.values():
        job.report.unlink(missing_ok=True)
    run(command(direction, *todo.values(), overwrite=overwrite), log)
    return {label: LogitsCheck(**json.loads(job.report.read_text())["logits"]) for label, job in todo.items()}


def export(ws: Workspace, sources: dict[str, Path], log: Path, overwrite: bool = False) -> dict[str, LogitsCheck]:
    """Export each labelled NeMo checkpoint to Hugging Face in one process; print and return the logits checks."""
    checks = convert("export", {label: export_job(ws, label, source) for label, source in sources.items()}, log, overwrite)
    for label, check in checks.items():
        print(f"{label}: {check}")
    return checks
