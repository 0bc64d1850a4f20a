"""What every conversion starts from, on both routes: a Hugging Face checkpoint checked for what the converters
handle (`inspect_hf_checkpoint`), and a job: the checkpoint, where its conversion goes, where its logits check goes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from helpers.errors import refuse
from helpers.models.architecture import HF_NAMES
from helpers.models.checkpoints import is_hf_checkpoint
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

    SUMMARY = ("model_type", *HF_NAMES.values(), "tie_word_embeddings")

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
            "use such a checkpoint, or add your architecture's NeMo model and config classes to NEMO_MODELS in helpers/conversion/jobs.py",
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


class Job(NamedTuple):
    """One conversion: the checkpoint to convert, where to write it, and where to write its logits check."""

    source: Path
    output: Path
    report: Path


def export_job(ws: Workspace, label: str, source: Path) -> Job:
    """Export the NeMo checkpoint `source` to the work directory's Hugging Face copy of `label`."""
    return Job(source, ws.exported(label), ws.results / f"export-{label}-logits.json")
