"""Distill a teacher into a pruned student with NeMo's `llm.distill` (ModelOpt knowledge distillation).

    torchrun --nproc_per_node 8 -m helpers.distill --name Qwen3-8B-nemo-depth-pruned-distill \\
        --devices 8 --tp_size 8 --model_path Qwen3-8B-nemo-depth-pruned --teacher_path Qwen3-8B-nemo \\
        --log_dir distill --max_steps 40 --warmup_steps 4 --gbs 768 --mbs 8 --lr 1e-4 --min_lr 1e-5 \\
        --seq_length 4096 --log_interval 4 --val_check_interval 4 --limit_val_batches 1 \\
        --data_paths wikitext-data/wikitext-train_text_document

The flags are those of NeMo's scripts/llm/gpt_train.py in distillation mode, plus `--overwrite`.
By default the loss is the forward KL divergence between the teacher's and the student's output
distributions (temperature 1) and the language-model loss is skipped; `--kd_config` takes the YAML
that changes that (logit_layers, intermediate_layer_pairs, skip_lm_loss, kd_loss_scale).

Beyond gpt_train.py: every setting is checked before a model is loaded; the data uses the model's
own tokenizer; a rerun resumes an interrupted run and leaves a finished one alone (--overwrite
restarts it); a larger --max_steps continues a finished run at --min_lr (runs.RunState says why),
and any other changed setting is refused (runs.relaunch_problems); the validation loss before
training is logged at step 0; a NaN or infinite loss stops the run with a diagnosis; checkpoints
are saved right after each validation, so the best one is the one whose weights scored best; and
it is recorded in <log_dir>/<name>/best.json. On several nodes (one torchrun on each: `python -m
helpers.distill.nodes` prints the command and a Slurm script) every node also checks that torchrun
formed the nodes --num_nodes names and that it sees the --log_dir node 0 writes to;
--distributed_timeout_minutes bounds how long the others wait for a process that stops answering.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from helpers.distill import nodes, runs
from helpers.distill.checks import check_distill_args, gather
from helpers.errors import raise_if_any
from helpers.models.checkpoints import require_nemo_checkpoint
from helpers.run import entry_point
from helpers.run.launch import is_rank0, rank0_first, require_launched
from helpers.run.outputs import remove, require_not_running


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.distill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="run name: the run lives in <log_dir>/<name>")
    p.add_argument("--model_path", required=True, help="the student: a NeMo 2 checkpoint")
    p.add_argument("--teacher_path", required=True, help="the teacher: a NeMo 2 checkpoint")
    p.add_argument("--kd_config", help="distillation YAML (default: logits-only forward KL, LM loss skipped)")
    p.add_argument("--tp_size", type=int, default=1, help="tensor parallel size")
    p.add_argument("--cp_size", type=int, default=1, help="context parallel size")
    p.add_argument("--pp_size", type=int, default=1, help="pipeline parallel size")
    p.add_argument("--precision", default="bf16-mixed", help="bf16-mixed on GPUs; 32 on CPU")
    entry_point.launch_flags(p)
    p.add_argument("--log_dir", required=True, help="folder for runs: checkpoints and TensorBoard logs")
    p.add_argument("--max_steps", type=int, required=True, help="optimizer steps (global batches)")
    p.add_argument("--warmup_steps", type=int, default=50, help="linear warmup of the learning rate")
    p.add_argument("--gbs", type=int, required=True, help="global batch size (sequences per step)")
    p.add_argument("--mbs", type=int, required=True, help="micro batch size (sequences per forward pass)")
    entry_point.learning_rate_flags(p)
    p.add_argument("--seq_length", type=int, required=True, help="tokens per sequence")
    entry_point.data_flags(p, "+")
    p.add_argument("--tokenizer", help="local tokenizer folder (default: the student's own)")
    p.add_argument("--num_workers", type=int, default=8, help="data loader worker processes per rank")
    entry_point.validation_flags(p, "--val_check_interval", "--limit_val_batches")
    p.add_argument("--legacy_ckpt", action="store_true", help="load checkpoints saved with Transformer Engine < 1.14")
    p.add_argument("--distributed_timeout_minutes", type=float, help="fail a collective that waits this long for a process "
                   "(default: torch's 30 min for gloo, 10 for NCCL, Megatron's 30 for its groups)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="delete the run in <log_dir>/<name> and start again")
    return p


def settings(args: argparse.Namespace) -> dict:
    """The launch settings as recorded for the run (paths absolute, so a run is recognised from anywhere)."""
    values = vars(args).copy()
    for key in ("model_path", "teacher_path", "kd_config", "log_dir", "index_mapping_dir", "tokenizer"):
        if values[key]:
            values[key] = str(Path(values[key]).resolve())
    return values


def run_dir(args: argparse.Namespace) -> Path:
    return Path(args.log_dir) / args.name


def check(args: argparse.Namespace) -> runs.RunState:
    """Every check that needs no model (the notebook runs them before launching); returns the run's state."""
    require_nemo_checkpoint(Path(args.model_path), "--model_path")
    require_nemo_checkpoint(Path(args.teacher_path), "--teacher_path")
    check_distill_args(args, gather(args))
    if is_rank0():  # the writer; the other ranks would find its lock
        require_not_running(run_dir(args), "--name")
    if args.overwrite:
        return runs.RunState("new", 0, args.max_steps, args.max_steps)
    raise_if_any(runs.relaunch_problems(run_dir(args), settings(args)))
    return runs.state(run_dir(args), args.max_steps)


def prepare(args: argparse.Namespace) -> None:
    """Clear what must go (the whole run with --overwrite, checkpoints interrupted mid-save); record the settings of
    a launch that starts the run (no checkpoint yet) or of a run that has no record.

    Every rank runs NeMo's logger and AutoResume before a process group exists, and AutoResume scans
    the run's checkpoints (nemo/collections/llm/api.py:1255-1266 -> nemo/lightning/resume.py:201-230,
    which raises "Last checkpoint is unfinished"), so rank 0 does this while the others wait: none may
    look while the folder changes.
    """

    def clean() -> None:
        directory = run_dir(args)
        if args.overwrite:
            remove(directory)
        for checkpoint in runs.remove_unfinished(directory):
            print(f"Removed {checkpoint.name}: it was interrupted while being saved.")
        if runs.latest(directory) is None or runs.started_with(directory) is None:
            runs.save_settings(directory, settings(args))

    rank0_first(clean, key=f"prepare {args.name}")


def distill(args: argparse.Namespace) -> dict:
    """Train (or resume) the run, then record and return its best checkpoint."""
    import torch
    from lightning.pytorch.loggers import TensorBoardLogger
    from megatron.core.dist_checkpointing.validation import StrictHandling
    from megatron.core.distributed import DistributedDataParallelConfig
    from megatron.core.optimizer import OptimizerConfig

    from helpers import rehearsal
    from helpers.distill.callbacks import (
        AlignLoggingStepOnResume,
        LogValidationBeforeTraining,
        PrintValidationLoss,
        StopOnNonFiniteLoss,
    )
    from helpers.run.stack import nemo_llm

    llm = nemo_llm()
    from nemo import lightning as nl
    from nemo.lightning.pytorch.callbacks import ModelCheckpoint
    from nemo.lightning.pytorch.optim import CosineAnnealingScheduler
    from nemo.utils.exp_manager import TimingCallback

    directory = run_dir(args)
    prepare(args)

    strategy = nl.MegatronStrategy(
        tensor_model_parallel_size=args.tp_size,
        pipeline_model_parallel_size=args.pp_size,
        context_parallel_size=args.cp_size,
        sequence_parallel=args.tp_size > 1,
        ddp=DistributedDataParallelConfig(
            grad_reduce_in_fp32=True,
            overlap_grad_reduce=True,
            overlap_param_gather=True,
            check_for_nan_in_grad=True,
            average_in_collective=True,
        ),
        ckpt_load_strictness=StrictHandling.LOG_ALL if args.legacy_ckpt else None,
        ckpt_async_save=rehearsal.async_checkpoint_saves(),
    )
    trainer = nl.Trainer(
        devices=args.devices,
        num_nodes=args.num_nodes,
        max_steps=args.max_steps,
        log_every_n_steps=args.log_interval,
        val_check_interval=args.val_check_interval,
        limit_val_batches=args.limit_val_batches,
        num_sanity_val_steps=args.limit_val_batches,  # the batches every validation uses: logged as step 0
        strategy=strategy,
        accelerator=rehearsal.accelerator(),
        plugins=nl.MegatronMixedPrecision(
            precision=args.precision,
            params_dtype=torch.bfloat16 if "bf16" in args.precision else torch.float32,
            autocast_enabled=False,
            grad_reduce_in_fp32=True,
        ),
        callbacks=[TimingCallback(), StopOnNonFiniteLoss(), LogValidationBeforeTraining(), AlignLoggingStepOnResume(), PrintValidationLoss()],
    )
    data = entry_point.pretraining_data(args, args.model_path, global_batch_size=args.gbs)
    optim = nl.MegatronOptimizerModule(
        OptimizerConfig(optimizer="adam", lr=args.lr, bf16="bf16" in args.precision, use_distributed_optimizer=True),
        CosineAnnealingScheduler(max_steps=args.max_steps, warmup_steps=args.warmup_steps, constant_steps=0, min_lr=args.min_lr),
    )
    # Saved when each validation ends, named with that validation's loss. (gpt_train.py saves on
    # training steps instead, labelling each checkpoint with the *previous* validation's loss, so
    # its "best" checkpoint is the one saved an interval after the best validation.) The final step's
    # checkpoints keep the optimizer state too, or a larger --max_steps could not continue the run
    # (NeMo leaves it out by default: model_checkpoint.py:612-618; see runs.holds_optimizer_state).
    checkpoint = ModelCheckpoint(
        monitor="val_loss", save_top_k=1, filename=runs.checkpoint_filename(args.name), save_optim_on_train_end=True
    )
    logger = nl.NeMoLogger(
        name=args.name,
        log_dir=args.log_dir,
        ckpt=checkpoint,
        tensorboard=TensorBoardLogger(str(directory)),
        update_logger_directory=False,
    )
    # NeMo resumes only from a "*last" checkpoint (nemo/lightning/resume.py:209) unless given a path (:319-337):
    # when an interruption cut the "-last" save short, the newest complete checkpoint is a top-k one, so name it.
    # A resumed run's tokenizer NeMo restores from a "*last" checkpoint only, whatever the path (resume.py:139
    # -> :291-301), and fails without one; it is the student's own (llm/api.py:442), so it is not restored.
    latest = runs.latest(directory)
    resume = nl.AutoResume(
        resume_if_exists=True, resume_ignore_no_checkpoint=True, resume_from_path=str(latest.path) if latest else None,
        restore_config=nl.RestoreConfig(path=args.model_path, load_artifacts=latest is None),
    )  # fmt: skip
    if args.distributed_timeout_minutes:
        nodes.give_up_after(args.distributed_timeout_minutes)
    baseline = {"device": "cuda" if torch.cuda.is_available() else "cpu", "baseline_gb": round(peak_memory_gb(), 3)}
    llm.distill(
        student_model_path=args.model_path,
        teacher_model_path=args.teacher_path,
        distillation_config_path=args.kd_config,
        data=data,
        trainer=trainer,
        log=logger,
        resume=resume,
        optim=optim,
        tokenizer=data.tokenizer,
    )
    ranks = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(ranks, {**placement(), **baseline, "peak_gb": round(peak_memory_gb(), 3)})
    best = {}
    if torch.distributed.get_rank() == 0:
        runs.save_memory(directory, ranks)
        best = runs.record_best(directory)
    if best:
        print(f"Best checkpoint (lowest val_loss {best['val_loss']:.4f}, step {best['step']}): {best['checkpoint']}")
    return best


def placement() -> dict:
    """Where this process ran: its node (torchrun's GROUP_RANK) and host, and its data-parallel rank among how many."""
    import socket

    from megatron.core import parallel_state

    return {
        "node": int(os.environ.get("GROUP_RANK", "0")),
        "host": socket.gethostname(),
        "data_parallel_rank": parallel_state.get_data_parallel_rank(),
        "data_parallel_size": parallel_state.get_data_parallel_world_size(),
    }


def peak_memory_gb() -> float:
    """This process's peak memory so far: allocated on its GPU, or resident in RAM on the CPU."""
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports kB


def launched(args: argparse.Namespace) -> runs.RunState:
    """`check`, and that torchrun started the nodes and processes the flags name; on every node together."""

    def on_this_node() -> runs.RunState:
        run_state = check(args)
        nodes.require_nodes(args.devices, args.num_nodes)
        require_launched(args.devices, args.num_nodes)
        return run_state

    return nodes.start_together(on_this_node, Path(args.log_dir), "--log_dir")


def finished(directory: str | Path, run_state: runs.RunState, layout: runs.Layout = runs.NEMO) -> bool:
    """Whether the run is finished; rank 0 says the run's state and, if it is finished, its best checkpoint."""
    if is_rank0():
        print(f"Run {directory}: {run_state}.")
    if run_state.status == "finished" and is_rank0():
        record = runs.record_best(Path(directory), layout)
        print(f"Nothing to do (a larger --{layout.steps} continues it at --min_lr; --overwrite trains it again). Best checkpoint: {record['checkpoint']}")
    return run_state.status == "finished"


def run(args: argparse.Namespace, run_state: runs.RunState) -> int:
    """Train, unless the run is finished, rank 0 holding the run's lock."""
    if not finished(run_dir(args), run_state):
        with entry_point.writing(run_dir(args), "--name"):
            distill(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, launched, run)
