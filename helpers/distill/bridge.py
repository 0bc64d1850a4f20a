"""Distill a teacher into a pruned student with Megatron-Bridge (`megatron.bridge.training.distill`, ModelOpt's KD).

    torchrun --nproc_per_node 8 -m helpers.distill.bridge --devices 8 --tp_size 8 \\
        --student_hf_path models/Qwen3-8B-depth-pruned --teacher_hf_path models/Qwen3-8B \\
        --output_dir distill/Qwen3-8B-depth-pruned-distill --train_iters 40 --lr_warmup_iters 4 --gbs 768 --mbs 8 \\
        --lr 1e-4 --min_lr 1e-5 --seq_length 4096 --eval_interval 4 --eval_iters 1 --log_interval 4 \\
        --data_paths wikitext-data/wikitext-train_text_document

The flags are those of ModelOpt's examples/megatron_bridge/distill.py (0.43.0, 0.44.0), set up as it does: teacher
and student built from their Hugging Face folders by AutoBridge, the logits-only KD loss (forward KL at temperature
1, the language-model loss skipped unless --no_skip_lm_loss), distributed Adam with cosine decay to --min_lr after a
linear warmup, validation and a `torch_dist` checkpoint every --eval_interval steps, TensorBoard events in
<output_dir>/tb_logs and checkpoints in <output_dir>/checkpoints. The validation loss is the student's language-model
loss on the validation split, as on the NeMo 2 route.

Beyond distill.py, as `python -m helpers.distill` does: --devices, --precision, --num_workers, --overwrite and
--index_mapping_dir (distill.py's --data_path_to_cache); every setting is checked before a model is built (the NeMo
route's rules, `checks.check_distill_args`); the student's validation loss before training is logged at step 0;
checkpoints are kept (distill.py keeps the 5 newest), so the best one is still there after training and is recorded
in <output_dir>/best.json; a rerun resumes an interrupted run and leaves a finished one alone (--overwrite restarts
it); a larger --train_iters continues a finished run at --min_lr, and any other changed setting is refused
(`runs.relaunch_problems`). On the CPU: gloo, fp32 (--precision 32) and `rehearsal.megatron_bridge_training`.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from helpers.distill import runs
from helpers.distill.checks import DistillFacts, check_distill_args, gather
from helpers.distill.cli import finished
from helpers.errors import Problem, SettingError, flag, raise_if_any
from helpers.models.checkpoints import is_hf_checkpoint
from helpers.run import entry_point
from helpers.run.launch import is_rank0, rank0_first, require_launched
from helpers.run.outputs import remove, require_not_running

SEED = 1234  # distill.py's
# The settings that define a run: a relaunch must repeat them (`runs.relaunch_problems`).
IDENTITY = ("student_hf_path", "teacher_hf_path", "kd_config", "data_paths", "split", "seq_length", "gbs", "lr", "min_lr",
            "no_skip_lm_loss", "kd_loss_scale")  # fmt: skip
# Bridge's TensorBoard tags (megatron/bridge/training/utils/train_utils.py:554, :680; eval.py:352) under the names
# the NeMo 2 route's curves use: the training loss is the KD loss, the validation loss the student's own LM loss.
TAGS = {"total loss": "reduced_train_loss", "lm loss validation": "val_loss", "iteration-time": "train_step_timing in s"}
# The NeMo route's rules name gpt_train.py's flags; these are the same settings here.
NEMO_FLAGS = {"student_hf_path": "model_path", "teacher_hf_path": "teacher_path", "train_iters": "max_steps",
              "lr_warmup_iters": "warmup_steps", "eval_interval": "val_check_interval", "eval_iters": "limit_val_batches"}  # fmt: skip
MIXED_PRECISION = {"bf16-mixed": "bf16_mixed", "16-mixed": "fp16_mixed", "32": None}  # ours -> Bridge's recipes
TRACKERS = ("latest_train_state.pt", "latest_checkpointed_iteration.txt")  # Bridge's, and Megatron-LM's


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.distill.bridge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student_hf_path", required=True, help="the student: a Hugging Face checkpoint folder")
    p.add_argument("--teacher_hf_path", required=True, help="the teacher: a Hugging Face checkpoint folder")
    p.add_argument("--tp_size", type=int, default=1, help="tensor parallel size")
    p.add_argument("--pp_size", type=int, default=1, help="pipeline parallel size")
    p.add_argument("--cp_size", type=int, default=1, help="context parallel size")
    p.add_argument("--devices", type=int, default=1, help="processes (GPUs) torchrun starts")
    entry_point.data_flags(p, "+", cache_flags=("--data_path_to_cache", "--index_mapping_dir"))
    p.add_argument("--output_dir", required=True, help="the run's folder: checkpoints, TensorBoard events, settings")
    p.add_argument("--seq_length", type=int, default=4096, help="tokens per sequence")
    p.add_argument("--mbs", type=int, default=1, help="micro batch size (sequences per forward pass)")
    p.add_argument("--gbs", type=int, default=768, help="global batch size (sequences per step)")
    p.add_argument("--train_iters", type=int, required=True, help="optimizer steps")
    p.add_argument("--kd_config", help="distillation YAML, as helpers.distill's (default: logits-only forward KL, LM loss skipped)")
    p.add_argument("--no_skip_lm_loss", action="store_true", help="add the student's LM loss to the KD loss")
    p.add_argument("--kd_loss_scale", type=float, default=1.0, help="KD loss weight")
    entry_point.learning_rate_flags(p)
    p.add_argument("--lr_warmup_iters", type=int, default=50, help="linear warmup of the learning rate")
    entry_point.validation_flags(p, "--eval_interval", "--eval_iters")
    p.add_argument("--precision", default="bf16-mixed", choices=list(MIXED_PRECISION), help="bf16-mixed on GPUs; 32 on CPU")
    p.add_argument("--num_workers", type=int, default=8, help="data loader worker processes per rank")
    p.add_argument("--overwrite", action="store_true", help="delete the run in --output_dir and start again")
    return p


def settings(args: argparse.Namespace) -> dict:
    """The launch settings as recorded for the run (paths absolute, so a run is recognised from anywhere)."""
    values = vars(args).copy()
    for key in ("student_hf_path", "teacher_hf_path", "output_dir", "index_mapping_dir", "kd_config"):
        if values[key]:
            values[key] = str(Path(values[key]).resolve())
    return values


# A run on disk: Bridge's checkpoints, read in `runs`' terms.


def checkpoints(run_dir: Path) -> list[runs.Checkpoint]:
    """Complete checkpoints, oldest first, each with the validation loss of its weights (NaN: not validated).

    Bridge saves right after validating (train.py:501-531, then :575) and names a checkpoint by the steps done.
    A checkpoint is complete once its run_config.yaml is written: the last file loading needs, written after the
    trackers that name it (checkpointing.py:759-767).
    """
    validated = scalars(run_dir).query("tag == 'val_loss'").set_index("step")["value"]
    return [
        runs.Checkpoint(path, float(validated.get(step, math.nan)), step, False)
        for step, path in _saved(run_dir) if (path / "run_config.yaml").is_file()
    ]  # fmt: skip


def _saved(run_dir: Path) -> list[tuple[int, Path]]:
    return sorted((int(path.name.removeprefix("iter_")), path) for path in (run_dir / "checkpoints").glob("iter_*"))


def remove_unfinished(run_dir: Path) -> list[Path]:
    """Delete checkpoints an interruption left half-written, and point Bridge's trackers at the newest complete one.

    Bridge resumes from the checkpoint its trackers name (checkpointing.py:1570-1579), which they name before it is
    complete: a run stopped in between would fail to resume ("Legacy checkpoint missing 'args' field").
    """
    folder, complete = run_dir / "checkpoints", checkpoints(run_dir)
    unfinished = [path for _, path in _saved(run_dir) if path not in {c.path for c in complete}]
    for path in unfinished:
        remove(path)
    if unfinished:
        for tracker in TRACKERS:
            remove(folder / tracker)
        if complete:
            shutil.copy(complete[-1].path / "train_state.pt", folder / TRACKERS[0])
            (folder / TRACKERS[1]).write_text(str(complete[-1].step))
    return unfinished


def holds_optimizer_state(checkpoint: Path) -> bool:
    """Whether training can continue from `checkpoint`: Bridge saves the optimizer with every checkpoint
    (`CheckpointConfig.save_optim`, config.py:774), under keys "optimizer.*" of the distributed checkpoint."""
    from torch.distributed.checkpoint import FileSystemReader

    return any(key.startswith("optimizer.") for key in FileSystemReader(str(checkpoint)).read_metadata().state_dict_metadata)


LAYOUT = runs.Layout(IDENTITY, "train_iters", "lr_warmup_iters", "--output_dir", checkpoints, holds_optimizer_state)


def scalars(run_dir: Path):
    """Every scalar of the run by steps completed (`events.scalars`), Bridge's tags named as in TAGS."""
    from helpers.distill import events

    table = events.scalars(run_dir)  # counts NeMo's 0-based step indices up by one; Bridge logs steps done
    return table.assign(step=table["step"] - 1, tag=table["tag"].replace(TAGS))


# Checks, before any model is built.


def check(args: argparse.Namespace) -> runs.RunState:
    """Every check that needs no model (the notebook runs them before launching); returns the run's state."""
    for name in ("student_hf_path", "teacher_hf_path"):
        if not is_hf_checkpoint(Path(getattr(args, name))):
            raise SettingError(Problem(flag(name), f"{getattr(args, name)} is not a Hugging Face checkpoint folder", "give a folder with config.json and safetensors weights"))
    check_args(args, gather(nemo_view(args)))
    directory = Path(args.output_dir)
    if is_rank0():  # the writer; the other ranks would find its lock
        require_not_running(directory, "--output_dir")
    if args.overwrite:
        return runs.RunState("new", 0, args.train_iters, args.train_iters)
    raise_if_any(runs.relaunch_problems(directory, settings(args), LAYOUT))
    return runs.state(directory, args.train_iters, LAYOUT)


def check_args(args: argparse.Namespace, facts: DistillFacts) -> None:
    """The NeMo 2 route's rules and Bridge's own, judged on `facts` (read from disk by `check`, or planned by the
    dry run), each problem named by this entry point's flag: raises SettingError."""
    try:
        check_distill_args(nemo_view(args), facts)
    except SettingError as error:
        raise SettingError(*map(in_our_flags, error.problems)) from None
    raise_if_any(bridge_problems(args))


def nemo_view(args: argparse.Namespace) -> argparse.Namespace:
    """The flags under the names of `python -m helpers.distill`, whose rules (`checks`) apply here unchanged."""
    values = {NEMO_FLAGS.get(key, key): value for key, value in vars(args).items()}
    return argparse.Namespace(**values, num_nodes=1, distributed_timeout_minutes=None)


def in_our_flags(problem: Problem) -> Problem:
    ours = {nemo: bridge for bridge, nemo in NEMO_FLAGS.items()}
    rename = lambda text: re.sub(r"--(\w+)", lambda m: f"--{ours.get(m[1], m[1])}", text)  # noqa: E731
    return Problem(*map(rename, problem))


def bridge_problems(args: argparse.Namespace) -> list[Problem]:
    """What Bridge refuses beyond the NeMo route's rules."""
    if args.lr_warmup_iters >= args.train_iters:  # megatron/core/optimizer_param_scheduler.py:157, via config.py:1670
        return [Problem("--lr_warmup_iters", f"{args.lr_warmup_iters} is not below --train_iters {args.train_iters}", "warm up for a fraction of the run")]
    return []


# The run.


def prepare(args: argparse.Namespace) -> None:
    """On rank 0 while the others wait: clear what must go (the whole run with --overwrite, checkpoints interrupted
    mid-save), and record the settings of a launch that starts the run (no checkpoint yet)."""

    def clean() -> None:
        directory = Path(args.output_dir)
        if args.overwrite:
            remove(directory)
        for checkpoint in remove_unfinished(directory):
            print(f"Removed {checkpoint.name}: it was interrupted while being saved.")
        if not checkpoints(directory) or runs.started_with(directory) is None:
            runs.save_settings(directory, settings(args))

    rank0_first(clean, key=f"prepare {args.output_dir}")


def provider(args: argparse.Namespace, hf_path: str):
    """A model provider of the Hugging Face checkpoint, with the weights, parallelism and precision of the run."""
    import torch
    from megatron.bridge import AutoBridge

    from helpers.rehearsal import bridge

    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16, "32": torch.float32}[args.precision]
    model = AutoBridge.from_hf_pretrained(hf_path).to_megatron_provider(load_weights=True)
    bridge.without_transformer_engine(model)
    model.tensor_model_parallel_size = args.tp_size
    model.sequence_parallel = args.tp_size > 1
    model.pipeline_model_parallel_size = args.pp_size
    model.pipeline_dtype = dtype
    model.context_parallel_size = args.cp_size
    model.seq_length = args.seq_length
    model.params_dtype, model.bf16, model.fp16 = dtype, dtype == torch.bfloat16, dtype == torch.float16
    return model


def config(args: argparse.Namespace, lr_decay_iters: int):
    """distill.py's ConfigContainer for these flags; the learning rate decays to --min_lr over `lr_decay_iters`."""
    import torch
    from megatron.bridge.models.distillation_provider import convert_to_distillation_provider
    from megatron.bridge.recipes.utils.optimizer_utils import distributed_fused_adam_with_cosine_annealing
    from megatron.bridge.training.config import (
        CheckpointConfig,
        ConfigContainer,
        DistributedInitConfig,
        GPTDatasetConfig,
        LoggerConfig,
        RNGConfig,
        TokenizerConfig,
        TrainingConfig,
    )  # fmt: skip
    from megatron.bridge.training.post_training.distillation import ModelOptDistillConfig
    from megatron.core.datasets.utils import get_blend_from_list
    from megatron.core.distributed import DistributedDataParallelConfig

    from helpers import rehearsal

    if args.kd_config:  # the same YAML as the NeMo 2 route's: ModelOpt's DistillationConfig, which Bridge's subclasses
        kd_config = ModelOptDistillConfig(**yaml.safe_load(Path(args.kd_config).read_text()))
    else:
        kd_config = ModelOptDistillConfig(skip_lm_loss=not args.no_skip_lm_loss, kd_loss_scale=args.kd_loss_scale)
    model = convert_to_distillation_provider(provider(args, args.student_hf_path), provider(args, args.teacher_hf_path), kd_config)
    optimizer, scheduler = distributed_fused_adam_with_cosine_annealing(
        lr_warmup_iters=args.lr_warmup_iters, lr_decay_iters=lr_decay_iters, max_lr=args.lr, min_lr=args.min_lr, adam_beta2=0.95
    )
    optimizer.bf16, optimizer.fp16 = model.bf16, model.fp16
    directory = Path(args.output_dir)
    return ConfigContainer(
        model=model,
        train=TrainingConfig(
            train_iters=args.train_iters, eval_interval=args.eval_interval, eval_iters=args.eval_iters,
            global_batch_size=args.gbs, micro_batch_size=args.mbs, manual_gc=True, manual_gc_interval=100,
        ),  # fmt: skip
        optimizer=optimizer,
        scheduler=scheduler,
        ddp=DistributedDataParallelConfig(
            check_for_nan_in_grad=True, grad_reduce_in_fp32=True, overlap_grad_reduce=True, overlap_param_gather=True,
            average_in_collective=True, use_distributed_optimizer=True,
        ),  # fmt: skip
        dataset=GPTDatasetConfig(
            blend=get_blend_from_list(args.data_paths), split=args.split, seq_length=args.seq_length,
            path_to_cache=args.index_mapping_dir, random_seed=SEED, reset_attention_mask=False, reset_position_ids=False,
            eod_mask_loss=False, num_dataset_builder_threads=1, data_sharding=True, dataloader_type="single",
            skip_getting_attention_mask_from_dataset=True, num_workers=args.num_workers,
        ),  # fmt: skip
        logger=LoggerConfig(log_interval=args.log_interval, tensorboard_dir=str(directory / "tb_logs"), log_timers_to_tensorboard=True),
        tokenizer=TokenizerConfig(tokenizer_type="NullTokenizer", vocab_size=model.vocab_size),
        checkpoint=CheckpointConfig(
            save_interval=args.eval_interval, save=str(directory / "checkpoints"), load=str(directory / "checkpoints"),
            most_recent_k=-1, ckpt_format="torch_dist", async_save=rehearsal.async_checkpoint_saves(), fully_parallel_save=True,
        ),  # fmt: skip
        rng=RNGConfig(seed=SEED),
        mixed_precision=MIXED_PRECISION[args.precision],
        dist=DistributedInitConfig(distributed_backend="nccl" if torch.cuda.is_available() else "gloo"),
    )


@contextmanager
def validation_before_training():
    """Validate the student before its first step, logged at step 0 like the NeMo route's "before KD" value.

    Bridge validates every --eval_interval steps (train.py:501-504) and after training (pretrain.py:172), never
    before: its training loop (`train`, called at pretrain.py:142) is given a validation first when it starts at 0.
    """
    from megatron.bridge.training import pretrain
    from megatron.bridge.training.eval import evaluate_and_print_results

    train = pretrain.train

    def train_after_validating(forward_step, model, optimizer, scheduler, train_data, valid_data, state, *args, **kwargs):
        if state.train_state.step == 0 and state.train_state.do_valid:
            evaluate_and_print_results(state, "iteration 0 (before training)", forward_step, valid_data, model, state.cfg.model, write_to_tensorboard=True)
        return train(forward_step, model, optimizer, scheduler, train_data, valid_data, state, *args, **kwargs)

    pretrain.train = train_after_validating
    try:
        yield
    finally:
        pretrain.train = train


def distill(args: argparse.Namespace) -> dict:
    """Train (or resume) the run, then record and return its best checkpoint."""
    from helpers import rehearsal

    rehearsal.enable_bridge()
    from megatron.bridge.training.distill import distill as bridge_distill

    directory = Path(args.output_dir)
    prepare(args)
    # A larger --train_iters continues the run at --min_lr: the decay keeps the length the run started with
    # (`runs.RunState`). distill.py's scheduler recipe overrides a checkpoint's schedule with the launch's
    # (`override_opt_param_scheduler=True`, recipes/utils/optimizer_utils.py:147), so it is given that length.
    started = runs.started_with(directory) or settings(args)
    with validation_before_training():
        bridge_distill(config(args, lr_decay_iters=started["train_iters"]))
    best = runs.record_best(directory, LAYOUT) if is_rank0() else {}
    if best:
        print(f"Best checkpoint (lowest val_loss {best['val_loss']:.4f}, step {best['step']}): {best['checkpoint']}")
    return best


def launched(args: argparse.Namespace) -> runs.RunState:
    """`check`, and that torchrun started the processes --devices names."""
    run_state = check(args)
    require_launched(args.devices, 1)
    return run_state


def run(args: argparse.Namespace, run_state: runs.RunState) -> int:
    """Train, unless the run is finished, rank 0 holding the lock of --output_dir (SIGTERM stops it outright)."""
    if not finished(args.output_dir, run_state, LAYOUT):
        with entry_point.writing(Path(args.output_dir), "--output_dir", sigterm=False):
            distill(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, launched, run)


if __name__ == "__main__":  # an asynchronous checkpoint save starts a process that imports this module again
    sys.exit(main())
