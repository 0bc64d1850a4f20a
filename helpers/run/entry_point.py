"""What every entry point does the same way: its shared flags, NeMo's data module, and `main`'s sequence.

    main            parse, check (a refusal: its message and exit status 2), then the work
    writing         the work on a folder: SIGTERM exits 143 (cleanups run), rank 0 holds the folder's lock
    run_module      `python -m`: exit with a module's `main()`
    *_flags         flag groups two entry points share, in NeMo's or ModelOpt's names
    pretraining_data  NeMo's PreTrainingDataModule of the data flags, with the model's own tokenizer
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from importlib import import_module
from pathlib import Path
from typing import NoReturn, TypeVar

from helpers.errors import SettingError
from helpers.run.launch import is_rank0
from helpers.run.outputs import exclusive

Started = TypeVar("Started")
SPLIT_HELP = "train,validation,test ratios of the data"


def main(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    start: Callable[[argparse.Namespace], Started],
    work: Callable[[argparse.Namespace, Started], int],
) -> int:
    """Parse `argv`; `start(args)` checks the settings and the launch, a SettingError refusing to start (its message
    on stderr, exit status 2); then `work(args, started)` with what `start` returned: the exit status."""
    args = parser.parse_args(argv)
    try:
        started = start(args)
    except SettingError as error:
        print(f"{parser.prog.removeprefix('python -m ')} refused to start:\n{error}", file=sys.stderr)
        return 2
    return work(args, started)


@contextmanager
def writing(output: Path, flag: str, *, sigterm: bool = True) -> Iterator[None]:
    """The block writes `output` (named by `flag`): rank 0 holds its lock; with `sigterm`, SIGTERM (torchrun
    stopping the command) exits with status 143 through Python, so that cleanups still run."""
    if sigterm:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with exclusive(output, flag) if is_rank0() else nullcontext():  # the lock ends with the process
        yield


def run_module(module: str, *, nemo: bool = False) -> NoReturn:
    """Exit with `module`'s `main()`. A `nemo` entry point turns garbage collection off first, through every import
    until NeMo's stack is in (`stack.pause_garbage_collection`)."""
    if nemo:
        from helpers.run.stack import pause_garbage_collection

        pause_garbage_collection()
    sys.exit(import_module(module).main())


def launch_flags(p: argparse.ArgumentParser) -> None:
    """NeMo's processes: --devices per node on --num_nodes nodes."""
    p.add_argument("--devices", type=int, default=1, help="processes (GPUs) per node")
    p.add_argument("--num_nodes", type=int, default=1)


def pipeline_stage_flags(p: argparse.ArgumentParser) -> None:
    """An uneven pipeline split: the layers of the first and last stages."""
    p.add_argument("--num_layers_in_first_pipeline_stage", type=int, help="default: split layers evenly")
    p.add_argument("--num_layers_in_last_pipeline_stage", type=int, help="default: split layers evenly")


def data_flags(p: argparse.ArgumentParser, nargs: str, split_help: str = SPLIT_HELP, cache_flags: tuple[str, ...] = ("--index_mapping_dir",)) -> None:
    """The tokenized data: --data_paths (`nargs` of them), --split, and the sample index's cache (NeMo's
    --index_mapping_dir; ModelOpt's distill.py names it --data_path_to_cache)."""
    p.add_argument("--data_paths", nargs=nargs, help="tokenized data prefixes, optionally with weights: 30 a 70 b")
    p.add_argument("--split", default="99,1,0", help=split_help)
    p.add_argument(*cache_flags, dest="index_mapping_dir", help="where Megatron caches its sample index")


def learning_rate_flags(p: argparse.ArgumentParser) -> None:
    """The cosine schedule's peak and final learning rates."""
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate of the cosine schedule")
    p.add_argument("--min_lr", type=float, default=1e-5, help="final learning rate")


def validation_flags(p: argparse.ArgumentParser, interval: str, batches: str) -> None:
    """How often training validates (and checkpoints) and logs, and how much it validates: `interval` and `batches`
    are NeMo's --val_check_interval and --limit_val_batches, or ModelOpt's --eval_interval and --eval_iters."""
    p.add_argument(interval, type=int, default=100, help="validate and checkpoint every N steps")
    p.add_argument(batches, type=int, default=32, help="batches per validation")
    p.add_argument("--log_interval", type=int, default=10, help="log every N steps")


def pretraining_data(args: argparse.Namespace, model_path: str, global_batch_size: int):
    """NeMo's PreTrainingDataModule of the data flags, tokenized by the model's own tokenizer (or --tokenizer's):
    NeMo's default would download GPT-2's vocabulary. The module's `tokenizer` is that tokenizer."""
    from helpers.run.stack import nemo_llm

    llm = nemo_llm()
    from nemo.collections.common.tokenizers.huggingface.auto_tokenizer import AutoTokenizer
    from nemo.lightning import io

    tokenizer = AutoTokenizer(args.tokenizer) if args.tokenizer else io.load_context(str(Path(model_path) / "context"), subpath="model.tokenizer")
    return llm.PreTrainingDataModule(
        paths=args.data_paths,
        seq_length=args.seq_length,
        micro_batch_size=args.mbs,
        global_batch_size=global_batch_size,
        split=args.split,
        index_mapping_dir=args.index_mapping_dir,
        tokenizer=tokenizer,
        num_workers=args.num_workers,
    )
