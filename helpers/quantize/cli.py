"""Quantize a Hugging Face checkpoint to FP8 with ModelOpt and export it as a unified Hugging Face checkpoint.

    python -m helpers.quantize --pyt_ckpt_path Qwen3-8B-pruned --qformat fp8 --export_path Qwen3-8B-pruned-fp8 \\
        --data_paths wikitext-data/wikitext-train_text_document --calib_size 512 --calib_seq 512 --batch_size 8

The flags are those of ModelOpt's examples/llm_ptq/hf_ptq.py, for its FP8 format only, plus --data_paths (the series'
tokenized training split instead of a downloaded calibration set) and --overwrite. Every setting is checked before
the model is loaded; the export appears at --export_path only once it is complete and its reload gives the
fake-quantized model's logits; quantization_report.json in it holds the checks, the sizes and the recipe.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.errors import Problem, raise_if_any
from helpers.models.checkpoints import is_hf_checkpoint
from helpers.quantize.recipe import KV_CACHE_QFORMATS, QFORMAT, constant_kv_amax_supported, fp8_supported
from helpers.run import entry_point
from helpers.run.outputs import require_not_running


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.quantize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pyt_ckpt_path", required=True, type=Path, help="Hugging Face checkpoint to quantize")
    p.add_argument("--qformat", default=QFORMAT, help="quantization format: fp8 (hf_ptq.py's default; the only one here)")
    p.add_argument("--export_path", required=True, type=Path, help="where to write the FP8 checkpoint")
    p.add_argument("--data_paths", required=True, type=Path, help="tokenized training data prefix (.bin/.idx) to calibrate on")
    p.add_argument("--calib_size", type=int, default=512, help="calibration windows (hf_ptq.py's default: 512)")
    p.add_argument("--calib_seq", type=int, default=512, help="tokens per calibration window (hf_ptq.py's default: 512)")
    p.add_argument("--batch_size", type=int, default=8, help="calibration windows per forward pass")
    p.add_argument("--kv_cache_qformat", choices=KV_CACHE_QFORMATS, help="KV cache format (default: hf_ptq.py's for the installed ModelOpt)")
    p.add_argument("--overwrite", action="store_true", help="quantize again even if a valid export exists")
    return p


def settings_problems(args: argparse.Namespace) -> list[Problem]:
    """What is wrong with the flags themselves, wherever they would run (the dry run checks a plan with these)."""
    problems = []
    if args.qformat != QFORMAT:
        problems.append(Problem("--qformat", f"{args.qformat!r} is not supported here", "use --qformat fp8, or ModelOpt's examples/llm_ptq/hf_ptq.py for other formats"))
    problems += [Problem(f"--{name}", f"is {getattr(args, name)}", f"give at least {least}") for name, least in (("calib_size", 1), ("calib_seq", 2), ("batch_size", 1)) if getattr(args, name) < least]
    if args.kv_cache_qformat == "fp8_cast" and not constant_kv_amax_supported():
        problems.append(Problem("--kv_cache_qformat", "fp8_cast needs ModelOpt's use_constant_amax (0.43 has it, this one does not)", "use --kv_cache_qformat fp8, this ModelOpt's default"))
    if args.export_path.resolve() == args.pyt_ckpt_path.resolve():
        problems.append(Problem("--export_path", "is the checkpoint to quantize", "give a folder of its own"))
    return problems


def check(args: argparse.Namespace) -> None:
    """Every check that needs no model: raises SettingError with all the problems at once."""
    problems = settings_problems(args)
    if args.qformat == QFORMAT and (reason := fp8_supported()):
        problems.append(Problem("--qformat", reason, "run on a GPU, or on the Megatron-Bridge route's stack (ModelOpt 0.43), which quantizes FP8 on CPU"))
    if not is_hf_checkpoint(args.pyt_ckpt_path):
        problems.append(Problem("--pyt_ckpt_path", f"{args.pyt_ckpt_path} is not a Hugging Face checkpoint (config.json, weights, tokenizer)", "give the folder of a complete checkpoint"))
    elif "quantization_config" in (args.pyt_ckpt_path / "config.json").read_text():
        problems.append(Problem("--pyt_ckpt_path", f"{args.pyt_ckpt_path} is already quantized", "give the unquantized checkpoint"))
    if not all(args.data_paths.with_suffix(suffix).is_file() for suffix in (".bin", ".idx")):
        problems.append(Problem("--data_paths", f"{args.data_paths}.bin/.idx do not exist", "give the prefix of the tokenized training split"))
    raise_if_any(problems)
    require_not_running(args.export_path, "--export_path")


def run(args: argparse.Namespace, _: None) -> int:
    """Quantize and export, holding the lock of --export_path."""
    from helpers.data.indexed import token_windows
    from helpers.quantize.ptq import quantize

    windows = token_windows(args.data_paths, args.calib_seq, args.calib_size)
    with entry_point.writing(args.export_path, "--export_path", sigterm=False):
        report = quantize(args.pyt_ckpt_path, args.export_path, windows, args.batch_size, kv_cache_qformat=args.kv_cache_qformat, overwrite=args.overwrite)
    ratio = report["bytes"]["ratio"]
    print(f"FP8 checkpoint: {args.export_path} ({report['bytes']['export']:,} bytes of weights, {ratio:.0%} of the source's)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, check, run)
