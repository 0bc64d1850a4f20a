"""Where the teacher comes from: the Hugging Face Hub, a GGUF file in a package, or (tiny profile) built offline."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.data import build_cache, tiny_teacher
from helpers.data.corpus import build_offline_wikitext, is_corpus_dir
from helpers.data.gguf_teacher import gguf_to_hf
from helpers.data.tokenizer import build_qwen3_tokenizer, is_tokenizer_dir
from helpers.errors import refuse
from helpers.models.checkpoints import is_hf_checkpoint
from helpers.profiles import ModelSource, Profile
from helpers.run.outputs import produce
from helpers.workspace import Workspace


def corpus_dir(ws: Workspace) -> Path:
    """The offline WikiText-format corpus (the data of the profiles that download none)."""
    return ws.assets / "offline-wikitext"


def prepare_teacher(profile: Profile, ws: Workspace, overwrite: bool = False) -> Path:
    """The teacher's Hugging Face checkpoint in the workspace: downloaded, converted from GGUF, or built (tiny)."""
    source = profile.model
    if not profile.data.hf_dataset:  # the offline corpus: the data, and the tiny teacher's training text
        produce(corpus_dir(ws), build_offline_wikitext, is_valid=is_corpus_dir, overwrite=overwrite, what="offline WikiText corpus")
    if source.hf_id:
        build, what = (lambda partial: _download(source.hf_id, partial)), f"{source.name} checkpoint"
    elif source.gguf:
        build, what = (lambda partial: gguf_to_hf(source.gguf, partial)), f"{source.name} checkpoint (from {source.gguf.file})"
    else:
        tokenizer = produce(
            ws.assets / "qwen3-tokenizer", build_qwen3_tokenizer, is_valid=is_tokenizer_dir, overwrite=overwrite, what="Qwen3 tokenizer"
        )
        build, what = _tiny_teacher(source, tokenizer, corpus_dir(ws), rebuild=overwrite), f"{source.name} teacher"
    return produce(ws.hf_teacher, build, is_valid=is_hf_checkpoint, overwrite=overwrite, what=what)


def _tiny_teacher(source: ModelSource, tokenizer: Path, corpus: Path, rebuild: bool):
    """Train the tiny teacher, or copy the one this machine already trained from the same recipe."""

    def build(partial: Path) -> None:
        build_cache.reuse_or_build(
            tiny_teacher.recipe(source.tiny, tokenizer, corpus),
            lambda out: tiny_teacher.build_tiny_teacher(source.tiny, tokenizer, corpus, out),
            partial, what=f"{source.name} teacher", rebuild=rebuild,
        )  # fmt: skip

    return build


def _download(hf_id: str, local_dir: Path) -> None:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(hf_id, local_dir=local_dir)
    except Exception as error:  # offline, gated, or misspelled
        raise refuse(
            "model source",
            f"could not download {hf_id} from the Hugging Face Hub: {error}",
            "check the network and `huggingface-cli login`, or copy the checkpoint into place yourself",
        ) from error


def tiny_training_report(hf_dir: Path) -> dict | None:
    """How the tiny teacher was trained (None for a teacher this series did not train)."""
    report = hf_dir / "tiny_training.json"
    return json.loads(report.read_text()) if report.is_file() else None
