"""Where every artifact of the series lives: one folder per profile inside the work directory."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers.errors import refuse

WORKDIR_ENV = "TUTORIAL_WORKDIR"
DEFAULT_WORKDIR = "./workspace"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Workspace:
    """Paths of the artifacts one profile produces; names follow the reference tutorial's."""

    root: Path
    model_name: str

    @property
    def assets(self) -> Path:
        """Offline inputs built for the tiny profile (tokenizer, corpus)."""
        return self.root / "assets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def hf_teacher(self) -> Path:
        return self.models / self.model_name

    @property
    def teacher(self) -> Path:
        return self.models / f"{self.model_name}-nemo"

    def pruned(self, kind: str) -> Path:
        """The `kind` ("depth" or "width") pruned student, before distillation."""
        return self.models / f"{self.model_name}-nemo-{kind}-pruned"

    def exported(self, label: str) -> Path:
        """A NeMo checkpoint exported back to Hugging Face format."""
        return self.models / "hf-export" / label

    @property
    def data(self) -> Path:
        return self.root / "wikitext-data"

    def jsonl(self, split: str) -> Path:
        return self.data / f"wikitext-{split}.jsonl"

    def data_prefix(self, split: str) -> Path:
        """Megatron dataset prefix: `<prefix>.bin` and `<prefix>.idx`."""
        return self.data / f"wikitext-{split}_text_document"

    @property
    def index_mapping_dir(self) -> Path:
        return self.data / "index-mappings"

    @property
    def distill_logs(self) -> Path:
        return self.root / "distill"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def executed(self) -> Path:
        """Executed copies of the notebooks (`make run`)."""
        return self.root / "executed"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def logs(self) -> Path:
        """Full output of every command a notebook launched."""
        return self.root / "logs"

    def figure(self, name: str) -> Path:
        self.figures.mkdir(parents=True, exist_ok=True)
        return self.figures / f"{name}.png"


def open_workspace(profile_name: str, model_name: str, workdir: str = DEFAULT_WORKDIR) -> Workspace:
    """The workspace under $TUTORIAL_WORKDIR if set, else `workdir`; refused if it cannot be written."""
    setting = WORKDIR_ENV if os.environ.get(WORKDIR_ENV) else "WORKDIR"
    base = Path(os.environ.get(WORKDIR_ENV) or workdir).expanduser().resolve()
    root = base / profile_name
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root):
            pass
    except OSError as error:
        raise refuse(
            setting,
            f"the work directory {base} is not writable ({error.strerror or error})",
            f"point {WORKDIR_ENV} (or the WORKDIR parameter) at a folder you can write to",
        ) from error
    return Workspace(root=root, model_name=model_name)
