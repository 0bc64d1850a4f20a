"""Where every artifact of the series lives: one folder per profile and route inside the work directory."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers.errors import refuse
from helpers.routes import DEFAULT_ROUTE, ROUTES

WORKDIR_ENV = "TUTORIAL_WORKDIR"
DEFAULT_WORKDIR = "./workspace"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Workspace:
    """Paths of the artifacts one profile produces on one route; names follow the reference tutorial's.

    The NeMo 2 route converts the teacher into a NeMo 2 checkpoint and prunes it into NeMo 2 checkpoints; the
    Megatron-Bridge route reads the Hugging Face teacher directly and prunes it into Hugging Face checkpoints.
    """

    root: Path
    model_name: str
    route: str = DEFAULT_ROUTE

    @property
    def assets(self) -> Path:
        """Inputs built offline: the WikiText-format corpus of the profiles that download no data, and the tiny
        teacher's tokenizer."""
        return self.root / "assets"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def hf_teacher(self) -> Path:
        return self.models / self.model_name

    @property
    def _checkpoint_name(self) -> str:
        return f"{self.model_name}-nemo" if self.route == "nemo2" else self.model_name

    @property
    def teacher(self) -> Path:
        """The teacher as pruning and distillation read it: a NeMo 2 checkpoint, or (bridge) the Hugging Face one."""
        return self.models / self._checkpoint_name

    @property
    def students(self) -> tuple[str, ...]:
        """The kinds of pruned student this route makes: "depth", "width", and (if its ModelOpt searches) "nas"."""
        return ROUTES[self.route].students

    def pruned(self, kind: str) -> Path:
        """The `kind` ("depth", "width" or "nas") pruned student, before distillation."""
        return self.models / f"{self._checkpoint_name}-{kind}-pruned"

    def exported(self, label: str) -> Path:
        """A checkpoint of pruning (NeMo 2) or distillation (both routes) exported to Hugging Face format."""
        return self.models / "hf-export" / label

    def hf_model(self, label: str) -> Path:
        """The Hugging Face folder of a compared model: "teacher", "<kind>-pruned" or "<kind>-distilled"."""
        if label == "teacher":
            return self.hf_teacher
        kind, stage = label.rsplit("-", 1)
        if stage == "pruned" and self.route == "bridge":  # pruning on the Bridge route writes Hugging Face checkpoints
            return self.pruned(kind)
        return self.exported(label)

    @property
    def deployed(self) -> dict[str, Path]:
        """The teacher and each distilled student, the checkpoints one would deploy (what is quantized to FP8 and
        scored on MMLU): {label: Hugging Face folder}."""
        return {label: self.hf_model(label) for label in ("teacher", *(f"{kind}-distilled" for kind in self.students))}

    def fp8(self, label: str) -> Path:
        """The FP8 checkpoint of a compared model ("teacher" or "<kind>-distilled")."""
        return self.models / "fp8" / label

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


def workspace_root(workdir: str | Path, profile_name: str, route: str) -> Path:
    """<workdir>/<profile>/<route>: both routes run one profile side by side without overwriting each other."""
    return Path(workdir).expanduser().resolve() / profile_name / route


def open_workspace(profile_name: str, model_name: str, workdir: str = DEFAULT_WORKDIR, route: str = DEFAULT_ROUTE) -> Workspace:
    """The workspace under $TUTORIAL_WORKDIR if set, else `workdir`; refused if it cannot be written."""
    setting = WORKDIR_ENV if os.environ.get(WORKDIR_ENV) else "WORKDIR"
    base = Path(os.environ.get(WORKDIR_ENV) or workdir).expanduser().resolve()
    root = workspace_root(base, profile_name, route)
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
    return Workspace(root=root, model_name=model_name, route=route)
