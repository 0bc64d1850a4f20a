"""Hugging Face <-> NeMo 2 conversion (`llm.import_ckpt`, `llm.export_ckpt`) and the logits check.

A conversion can go silently wrong: without Transformer Engine, NeMo 2.5 drops every norm weight
on import unless the names are mapped. Comparing the next-token logits of both formats on real
text catches any such slip, so every conversion here is followed by that check:

    python -m helpers.conversion import --source HF_DIR --output NEMO_DIR --report check.json
    python -m helpers.conversion export --source NEMO_DIR --output HF_DIR --report check.json \\
        [--source NEMO_DIR_2 --output HF_DIR_2 --report check_2.json ...]

NeMo's conversions build a Lightning trainer, which refuses to start inside a notebook kernel,
so notebooks launch the command (`cli`) through `convert`, and read the JSON reports it writes.
The check itself is in `logits`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from helpers import rehearsal
from helpers.checkpoints import is_hf_checkpoint, is_nemo_checkpoint, require_nemo_checkpoint
from helpers.conversion.logits import LogitsCheck
from helpers.errors import refuse
from helpers.launch import python_module, run
from helpers.outputs import produce
from helpers.stack import nemo_llm
from helpers.workspace import Workspace

QWEN3_HEAD_DIM = 128  # NeMo 2.5's Qwen3 importer does not read head_dim; it assumes 128
# The NeMo model and config classes (in nemo.collections.llm) of each Hugging Face `model_type` the series converts.
NEMO_MODELS = {"qwen3": ("Qwen3Model", "Qwen3Config"), "llama": ("LlamaModel", "LlamaConfig")}


@dataclass(frozen=True)
class HFModel:
    """What the conversion needs to know about a Hugging Face checkpoint."""

    path: Path
    config: dict
    tokenizer_size: int

    SUMMARY = ("model_type", "num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads",
               "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings")  # fmt: skip

    def summary(self) -> dict:
        """The config entries the conversion depends on, the dtype and the tokenizer's size."""
        dtype = self.config.get("torch_dtype") or self.config.get("dtype")  # transformers 4.57 writes "dtype"
        return {key: self.config.get(key) for key in self.SUMMARY} | {"dtype": dtype, "tokenizer size": self.tokenizer_size}


def inspect_hf_checkpoint(path: Path, setting: str = "model path") -> HFModel:
    """Check that `path` is a Hugging Face checkpoint NeMo can import (Qwen3, Llama); refuse it otherwise."""
    from transformers import AutoTokenizer

    if not path.exists():
        raise refuse(setting, f"{path} does not exist", "run the 'Get the teacher' step first, or fix the path")
    if not (path / "config.json").is_file():
        raise refuse(setting, f"{path} has no config.json: not a Hugging Face checkpoint", "give the folder that holds config.json")
    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") not in NEMO_MODELS:
        raise refuse(
            setting,
            f"{path} holds a {config.get('model_type')!r} model; this series converts {', '.join(NEMO_MODELS)}",
            "use such a checkpoint, or add your architecture's NeMo model and config classes to NEMO_MODELS in helpers/conversion/steps.py",
        )
    if config["model_type"] == "qwen3" and config.get("head_dim", QWEN3_HEAD_DIM) != QWEN3_HEAD_DIM:
        raise refuse(setting, f"head_dim is {config['head_dim']}", f"NeMo's Qwen3 importer only handles head_dim {QWEN3_HEAD_DIM}")
    if not is_hf_checkpoint(path):
        raise refuse(setting, f"{path} lacks weights (*.safetensors) or tokenizer files", "download the complete checkpoint")
    tokenizer_size = len(AutoTokenizer.from_pretrained(path))
    if tokenizer_size > config["vocab_size"]:
        raise refuse(
            setting,
            f"the tokenizer has {tokenizer_size} tokens but the embedding only {config['vocab_size']} rows",
            "use the tokenizer the model was trained with (its ids must index the embedding)",
        )
    return HFModel(path=path, config=config, tokenizer_size=tokenizer_size)


def import_to_nemo(hf: HFModel, output: Path, overwrite: bool = False) -> Path:
    """Convert the Hugging Face checkpoint to a NeMo 2 checkpoint at `output` with `llm.import_ckpt`."""
    llm = nemo_llm()
    c = hf.config
    model_class, config_class = (getattr(llm, name) for name in NEMO_MODELS[c["model_type"]])
    # The model object only selects NeMo's importer, which reads the architecture from config.json.
    model = model_class(
        config_class(
            num_layers=c["num_hidden_layers"],
            hidden_size=c["hidden_size"],
            ffn_hidden_size=c["intermediate_size"],
            num_attention_heads=c["num_attention_heads"],
            num_query_groups=c["num_key_value_heads"],
            **rehearsal.config_fields(c["model_type"]),
        )
    )

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


class Job(NamedTuple):
    """One conversion: the checkpoint to convert, where to write it, and where to write its logits check."""

    source: Path
    output: Path
    report: Path


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


def export_job(ws: Workspace, label: str, source: Path) -> Job:
    """Export the NeMo checkpoint `source` to the work directory's Hugging Face copy of `label`."""
    return Job(source, ws.exported(label), ws.results / f"export-{label}-logits.json")


def export(ws: Workspace, sources: dict[str, Path], log: Path, overwrite: bool = False) -> dict[str, LogitsCheck]:
    """Export each labelled NeMo checkpoint to Hugging Face in one process; print and return the logits checks."""
    checks = convert("export", {label: export_job(ws, label, source) for label, source in sources.items()}, log, overwrite)
    for label, check in checks.items():
        print(f"{label}: {check}")
    return checks


def import_teacher(ws: Workspace, overwrite: bool = False) -> LogitsCheck:
    """Bring the teacher into Megatron-Core and prove it faithful by logits, on the workspace's route.

    NeMo 2 imports it into a NeMo 2 checkpoint (`llm.import_ckpt`) and compares that with Hugging Face's. The
    Megatron-Bridge route converts nothing to disk: every step builds the model from the Hugging Face checkpoint
    with AutoBridge, and the check runs on what AutoBridge builds (`helpers.conversion.bridge`).
    """
    job = Job(source=ws.hf_teacher, output=ws.teacher, report=ws.results / "import-logits.json")
    if ws.route == "bridge":
        from helpers.conversion import bridge as route_steps
    else:
        route_steps = sys.modules[__name__]
    return route_steps.convert("import", {"teacher": job}, log=ws.logs / "01-import.log", overwrite=overwrite)["teacher"]
