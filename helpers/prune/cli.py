"""Prune a NeMo 2 GPT checkpoint with ModelOpt's Minitron method through `llm.prune`.

    torchrun --nproc_per_node 2 -m helpers.prune --devices 2 --pp_size 2 \\
        --restore_path Qwen3-8B-nemo --save_path Qwen3-8B-nemo-depth-pruned \\
        --seq_length 4096 --num_train_samples 1024 --mbs 4 \\
        --data_paths wikitext-data/wikitext-train_text_document --target_num_layers 24

The flags are those of NeMo's scripts/llm/gpt_prune.py, plus `--overwrite`. The differences:
every setting is checked before the model is loaded; calibration always uses the model's own
tokenizer (never a download); the pruned model is re-saved whole (helpers/prune/resave.py), so later
steps load it without --legacy_ckpt; Minitron's importance scores are saved in the checkpoint as
`importance.json`; and the checkpoint appears at --save_path only once it is complete.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.models.checkpoints import architecture, require_nemo_checkpoint
from helpers.prune import importance, resave
from helpers.prune.checks import check_prune_args, gather
from helpers.run import entry_point
from helpers.run.launch import is_rank0, require_launched
from helpers.run.outputs import partial_path, remove, require_not_running


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.prune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    entry_point.launch_flags(p)
    p.add_argument("--tp_size", type=int, default=1, help="tensor parallel size: 1 unless dropping layers")
    p.add_argument("--pp_size", type=int, default=1, help="pipeline parallel size")
    entry_point.pipeline_stage_flags(p)
    p.add_argument("--restore_path", required=True, help="NeMo 2 checkpoint to prune")
    p.add_argument("--save_path", required=True, help="where to write the pruned checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint already at --save_path")
    p.add_argument("--legacy_ckpt", action="store_true", help="load checkpoints saved with Transformer Engine < 1.14")
    p.add_argument("--tokenizer", help="local tokenizer folder for the data (default: the model's own)")
    p.add_argument("--seq_length", type=int, help="calibration sequence length (not needed with --drop_layers)")
    p.add_argument("--num_train_samples", type=int, default=1024, help="calibration samples, divisible by --mbs")
    p.add_argument("--mbs", type=int, default=1, help="calibration micro batch size")
    entry_point.data_flags(p, "*")
    p.add_argument("--num_workers", type=int, default=8, help="data loader worker processes per rank")
    p.add_argument("--target_ffn_hidden_size", type=int, help="prune the MLP hidden size to this")
    p.add_argument("--target_hidden_size", type=int, help="prune the embedding (hidden) size to this")
    p.add_argument("--target_num_attention_heads", type=int, help="prune attention heads to this (with --target_num_query_groups)")
    p.add_argument("--target_num_query_groups", type=int, help="prune query groups to this (with --target_num_attention_heads)")
    p.add_argument("--target_num_layers", type=int, help="keep this many layers, ranked by block importance")
    p.add_argument("--drop_layers", type=int, nargs="*", help="drop these layers (1-indexed) instead of ranking them")
    return p


def check(args: argparse.Namespace) -> None:
    """Every check that needs no model (the notebook runs them before launching): raises SettingError."""
    require_nemo_checkpoint(Path(args.restore_path), "--restore_path")
    check_prune_args(args, gather(args))
    if is_rank0():  # the writer; the other ranks would find its lock
        require_not_running(Path(args.save_path), "--save_path")


def prune(args: argparse.Namespace) -> Path:
    """Run `llm.prune` into a temporary folder, save the scores, then move the checkpoint into place."""
    import torch

    from helpers.run.stack import nemo_llm

    llm = nemo_llm()
    from nemo.collections.llm.modelopt.prune import PruningConfig

    restore, save = Path(args.restore_path), Path(args.save_path)
    work = partial_path(save)
    complete = work.with_name(work.name + ".resaved")
    rank0 = is_rank0()
    if rank0:
        remove(work)
        remove(complete)
    data = None
    if args.drop_layers is None:  # no backward pass: one micro batch per step
        data = entry_point.pretraining_data(args, args.restore_path, global_batch_size=args.mbs)
    config = PruningConfig(
        target_ffn_hidden_size=args.target_ffn_hidden_size,
        target_hidden_size=args.target_hidden_size,
        target_num_attention_heads=args.target_num_attention_heads,
        target_num_query_groups=args.target_num_query_groups,
        target_num_layers=args.target_num_layers,
        drop_layers=args.drop_layers,
    )
    scores: dict = {}
    standby = resave.Standby(work, complete) if rank0 else None  # its start-up overlaps the pruning
    try:
        with importance.recorded(scores):
            llm.prune(
                nemo_checkpoint=str(restore),
                save_path=str(work),
                pruning_config=config,
                devices=args.devices,
                num_nodes=args.num_nodes,
                tp_size=args.tp_size,
                pp_size=args.pp_size,
                num_layers_in_first_pipeline_stage=args.num_layers_in_first_pipeline_stage,
                num_layers_in_last_pipeline_stage=args.num_layers_in_last_pipeline_stage,
                num_train_samples=args.num_train_samples,
                data=data,
                legacy_ckpt=args.legacy_ckpt,
            )
        torch.distributed.barrier()
        if rank0:  # the other ranks are done; re-saving loads the whole model in one process
            standby.run()
            remove(work)
            complete.rename(work)
            kept = architecture(work).num_layers
            importance.save(
                scores,
                work,
                source=str(restore),
                targets={k: v for k, v in vars(config).items() if v is not None},
                dropped_layers=args.drop_layers or _dropped(scores.get("layers", {}), kept),
            )
            remove(save)
            work.rename(save)
            print(f"Pruned checkpoint: {save}")
    finally:
        if rank0:
            standby.cancel()
            remove(work)
            remove(complete)
    return save


def _dropped(layer_scores: dict[int, float], kept: int) -> list[int]:
    """The layers depth pruning removed: all but the `kept` highest scores (as ModelOpt ranks them)."""
    ranked = sorted(layer_scores, key=layer_scores.get, reverse=True)
    return sorted(ranked[kept:])


def launched(args: argparse.Namespace) -> None:
    """`check`, and that torchrun started the processes the flags name."""
    check(args)
    require_launched(args.devices, args.num_nodes)


def run(args: argparse.Namespace, _: None) -> int:
    """Prune, rank 0 holding the lock of --save_path."""
    with entry_point.writing(Path(args.save_path), "--save_path"):
        prune(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, launched, run)
