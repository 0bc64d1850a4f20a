"""Hugging Face <-> NeMo 2 conversion (`llm.import_ckpt`, `llm.export_ckpt`) and the logits check.

A conversion can go silently wrong: without Transformer Engine, NeMo 2.5 drops every norm weight
on import unless the names are mapped. Comparing the next-token logits of both formats on real
text catches any such slip, so every conversion here is followed by that check:

    python -m helpers.conversion import --source HF_DIR --output NEMO_DIR --report check.json
    python -m helpers.conversion export --source NEMO_DIR --output HF_DIR --report check.json \\
        [--source NEMO_DIR_2 --output HF_DIR_2 --report check_2.json ...]

NeMo's conversions build a Lightning trainer, which refuses to start inside a notebook kernel,
so notebooks launch this module as a command (`convert`) and read the JSON report it writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from helpers import cpu_rehearsal, evaluation, nemo_model
from helpers.checkpoints import is_hf_checkpoint, is_nemo_checkpoint, require_nemo_checkpoint
from helpers.errors import SettingError, refuse
from helpers.launch import python_module, run
from helpers.outputs import produce
from helpers.stack import nemo_llm
from helpers.workspace import Workspace

QWEN3_HEAD_DIM = 128  # NeMo 2.5's Qwen3 importer does not read head_dim; it assumes 128
# The NeMo model and config classes (in nemo.collections.llm) of each Hugging Face `model_type` the series converts.
NEMO_MODELS = {"qwen3": ("Qwen3Model", "Qwen3Config"), "llama": ("LlamaModel", "LlamaConfig")}
# When two copies of one model count as the same, by weight dtype. fp32 copies must agree to rounding on every
# logit. In bf16 the kernels of two libraries round differently at every layer, so single logits may differ by
# several bf16 steps (0.25 apart for logits in [32, 64)) without anything being wrong: the criterion is the mean
# KL divergence of the next-token distributions. Measured on the tiny Qwen3, HF bf16 against HF fp32: 6e-5 nats
# after 6 layers, with the hidden states' relative error growing linearly with depth (0.2% -> 0.6%); extrapolated
# to Qwen3-8B's 36 layers ~1.5e-3 nats. The bound leaves a margin of ~7 over that.
FP32_MAX_ABS_DIFF = 1e-3
HALF_PRECISION_MAX_KL = 1e-2
MIN_TOP1_AGREEMENT = 0.95
SAMPLE_TEXT = (
    " = Pruning and distillation = \n Structured pruning removes whole layers, attention heads or "
    "neurons from a trained language model. Knowledge distillation then trains the smaller student "
    "to reproduce the predictions of the original teacher, which recovers most of the lost accuracy. \n"
)


@dataclass(frozen=True)
class HFModel:
    """What the conversion needs to know about a Hugging Face checkpoint."""

    path: Path
    config: dict
    tokenizer_size: int


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
            "use such a checkpoint, or add your architecture's NeMo model and config classes to conversion.NEMO_MODELS",
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
            **cpu_rehearsal.config_fields(c["model_type"]),
        )
    )

    def convert(partial: Path) -> None:
        llm.import_ckpt(model=model, source=f"hf://{hf.path}", output_path=partial)

    return produce(output, convert, is_valid=is_nemo_checkpoint, overwrite=overwrite, what="NeMo checkpoint")


def export_to_hf(checkpoint: Path, output: Path, overwrite: bool = False) -> Path:
    """Convert a NeMo 2 checkpoint to a Hugging Face checkpoint at `output` with `llm.export_ckpt`."""
    require_nemo_checkpoint(checkpoint, "checkpoint")
    llm = nemo_llm()

    def convert(partial: Path) -> None:
        llm.export_ckpt(path=checkpoint, target="hf", output_path=partial)

    return produce(output, convert, is_valid=is_hf_checkpoint, overwrite=overwrite, what="Hugging Face checkpoint")


@dataclass(frozen=True)
class LogitsCheck:
    """How closely two copies of one model agree on the next-token logits of the same tokens."""

    max_abs_diff: float
    mean_abs_diff: float
    mean_kl: float  # KL(reference || candidate) of the next-token distributions, nats per position
    min_cosine: float  # of the logit vectors, per position (reported: a shared component keeps it near 1)
    top1_agreement: float
    dtype: str
    tokens: int

    @property
    def passed(self) -> bool:
        close = self.max_abs_diff <= FP32_MAX_ABS_DIFF if self.dtype == "float32" else self.mean_kl <= HALF_PRECISION_MAX_KL
        return close and self.top1_agreement >= MIN_TOP1_AGREEMENT

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        criterion = f"max |difference| <= {FP32_MAX_ABS_DIFF:g}" if self.dtype == "float32" else f"mean KL <= {HALF_PRECISION_MAX_KL:g}"
        return (
            f"{verdict} ({self.dtype}: {criterion}, top-1 >= {MIN_TOP1_AGREEMENT:.0%}): max |difference| {self.max_abs_diff:.2e}, "
            f"mean {self.mean_abs_diff:.2e}, mean KL {self.mean_kl:.2e}, min cosine {self.min_cosine:.5f}, "
            f"same top-1 token at {self.top1_agreement:.1%} of {self.tokens} positions"
        )


def judge(candidate: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype) -> LogitsCheck:
    """Compare next-token logits [batch, sequence, vocabulary] of a converted model with the original's."""
    candidate, reference = candidate.float(), reference.float()
    difference = (candidate - reference).abs()
    log_p, log_q = torch.log_softmax(reference, -1), torch.log_softmax(candidate, -1)
    return LogitsCheck(
        max_abs_diff=difference.max().item(),
        mean_abs_diff=difference.mean().item(),
        mean_kl=(log_p.exp() * (log_p - log_q)).sum(-1).mean().item(),
        min_cosine=torch.nn.functional.cosine_similarity(candidate, reference, dim=-1).min().item(),
        top1_agreement=(candidate.argmax(-1) == reference.argmax(-1)).float().mean().item(),
        dtype=str(dtype).removeprefix("torch."),
        tokens=reference.shape[0] * reference.shape[1],
    )


def sample_token_ids(tokenizer_dir: Path, text: str = SAMPLE_TEXT) -> torch.Tensor:
    """`text` tokenized by the model's own tokenizer, as a batch of one."""
    from transformers import AutoTokenizer

    return torch.tensor([AutoTokenizer.from_pretrained(tokenizer_dir)(text)["input_ids"]])


def compare_logits(checkpoint: Path, hf_dir: Path, token_ids: torch.Tensor) -> LogitsCheck:
    """Next-token logits of the NeMo checkpoint against the Hugging Face one, on the same tokens."""
    with evaluation.loaded(hf_dir) as reference_model, torch.no_grad():
        dtype = reference_model.dtype
        reference = reference_model(token_ids.to(reference_model.device)).logits.float().cpu()
    with nemo_model.loaded(checkpoint) as module:
        candidate = nemo_model.logits(module, token_ids)[..., : reference.shape[-1]]
    return judge(candidate, reference, dtype)


class Job(NamedTuple):
    """One conversion: the checkpoint to convert, where to write it, and where to write its logits check."""

    source: Path
    output: Path
    report: Path


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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        todo = jobs(args)
        for job in todo:  # every source is checked before the first conversion starts
            if args.direction == "import":
                inspect_hf_checkpoint(job.source, "--source")
            else:
                require_nemo_checkpoint(job.source, "--source")
    except SettingError as error:
        print(f"helpers.conversion refused to start:\n{error}", file=sys.stderr)
        return 2
    checks = [convert_one(args.direction, job, args.overwrite) for job in todo]
    return 0 if all(check.passed for check in checks) else 1


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


if __name__ == "__main__":
    sys.exit(main())
