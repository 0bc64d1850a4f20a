"""Prune a Hugging Face checkpoint with ModelOpt's Minitron method on Megatron-Bridge (the `bridge` route).

    torchrun --nproc_per_node 2 -m helpers.prune.bridge --pp_size 2 \\
        --hf_model_name_or_path Qwen3-8B --output_hf_path Qwen3-8B-depth-pruned \\
        --prune_export_config '{"num_layers": 24}' --calib_num_samples 1024 --calib_mbs 4 --seq_length 4096 \\
        --data_paths wikitext-data/wikitext-train_text_document --index_mapping_dir index-cache

    torchrun --nproc_per_node 2 -m helpers.prune.bridge --pp_size 2 ... --prune_target_params 6e9 \
        --prune_score_func mmlu_5pct --max_width_pruning 0.4 --max_depth_pruning 0.2 --top_k 10

The flags are those of ModelOpt's examples/megatron_bridge/prune_minitron.py (0.44) for a target given as an
export config or as a parameter budget (the architecture search, `helpers.prune.search`) and a Hugging Face output,
plus ours: calibration on our tokenized data (`--data_paths`,
`--index_mapping_dir`, `--split`) instead of a Hugging Face dataset, `--drop_layers` (named layers, no calibration),
`--overwrite`, and a second score function for the search, `val_loss` (`helpers.prune.scores`, with
`--score_data_path`, `--score_num_samples`). As there, AutoBridge builds the model from the checkpoint, `mtp.prune` prunes it in place, and the
pruned model is saved as a Hugging Face checkpoint (the teacher's config with the pruned sizes, the weights, the
tokenizer). The differences: every setting is checked before the model is loaded; Minitron's importance scores are
saved beside the weights as `importance.json` (`helpers.prune.importance`), and a search's candidates and scores
as `search.json`; the exported checkpoint must give the
pruned Megatron model's logits on the sample text (`logits.judge`) or the command fails; and the checkpoint appears
at --output_hf_path only once it is complete and checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import torch

from helpers import rehearsal
from helpers.conversion import bridge as conversion
from helpers.conversion.jobs import inspect_hf_checkpoint
from helpers.conversion.logits import sample_token_ids
from helpers.errors import Problem, raise_if_any
from helpers.models.architecture import HF_NAMES, MEGATRON_NAMES
from helpers.models.checkpoints import architecture
from helpers.prune import importance, search
from helpers.prune.checks import PruneFacts, check_prune_args, gather
from helpers.prune.scores import require_score_data, score_function
from helpers.run import entry_point
from helpers.run.launch import is_rank0
from helpers.run.outputs import partial_path, remove, require_not_running

# ModelOpt's export-config names, by the NeMo-named attribute the shared rules (`checks`) judge.
EXPORT_CONFIG = {
    "target_num_layers": "num_layers",
    "target_hidden_size": "hidden_size",
    "target_ffn_hidden_size": "ffn_hidden_size",
    "target_num_attention_heads": "num_attention_heads",
    "target_num_query_groups": "num_query_groups",
}
# The flag a user wrote, for each attribute the shared rules name.
FLAG_NAMES = {
    **{attribute: f"--prune_export_config {name}" for attribute, name in EXPORT_CONFIG.items()},
    "restore_path": "--hf_model_name_or_path",
    "save_path": "--output_hf_path",
    "num_train_samples": "--calib_num_samples",
    "mbs": "--calib_mbs",
    "devices": "--pp_size",
}
# The search's flags, by the names `search.problems` gives its settings.
SEARCH_FLAGS = {
    "params": "--prune_target_params",
    "score_func": "--prune_score_func",
    "max_width_pruning": "--max_width_pruning",
    "max_depth_pruning": "--max_depth_pruning",
    "hparams_to_skip": "--hparams_to_skip",
    "top_k": "--top_k",
    "channel_divisor": "--ss_channel_divisor",
}
# The granularity of the width targets: the divisors prune_minitron.py gives `get_mcore_minitron_config` for an
# export config (64, as `checks.WIDTH_DIVISORS` has them), and 1 for layers.
EXPORT_DIVISORS = {"hidden_size": 64, "ffn_hidden_size": 64, "num_layers": 1}
LOGITS_FILENAME = "logits.json"  # in the student's folder: its export's logits check (`conversion.write_report`)
SEED = 1234  # of the calibration samples' order: NeMo's PreTrainingDataModule's default


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.prune.bridge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hf_model_name_or_path", required=True, help="Hugging Face checkpoint folder to prune")
    p.add_argument("--output_hf_path", required=True, help="where to write the pruned Hugging Face checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint already at --output_hf_path")
    p.add_argument("--pp_size", type=int, default=1, help="pipeline parallel size (= processes: pruning has no other parallelism)")
    entry_point.pipeline_stage_flags(p)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--prune_export_config", type=json.loads, help='pruned sizes as JSON, e.g. \'{"hidden_size": 512, "ffn_hidden_size": 2048}\'')
    target.add_argument("--prune_target_params", type=float, help="a parameter budget: search for the architecture under it that scores best")
    target.add_argument("--drop_layers", type=int, nargs="+", help="drop these layers (1-indexed) instead of ranking them")
    nas = p.add_argument_group("architecture search (with --prune_target_params)")
    nas.add_argument("--prune_score_func", default="mmlu_10pct", help="what the search maximizes: mmlu_<N>pct (MMLU on N%% of each subject) or val_loss")
    nas.add_argument("--max_width_pruning", type=float, default=0.4, help="the largest share of a width the search may cut")
    nas.add_argument("--max_depth_pruning", type=float, default=0.2, help="the largest share of the layers the search may cut")
    nas.add_argument("--hparams_to_skip", nargs="*", default=[], help=f"sizes the search leaves alone, of {', '.join(search.SEARCHABLE)}")
    nas.add_argument("--top_k", type=int, default=10, help="candidates scored: the largest under the budget")
    nas.add_argument("--ss_channel_divisor", type=int, help="search hidden and MLP sizes in steps of this (default: 256 and 512)")
    nas.add_argument("--score_data_path", help="val_loss: the held-out data's prefix (.bin/.idx)")
    nas.add_argument("--score_num_samples", type=int, default=16, help="val_loss: windows of --seq_length scored")
    p.add_argument("--calib_num_samples", type=int, default=1024, help="calibration samples, divisible by --calib_mbs")
    p.add_argument("--calib_mbs", type=int, default=1, help="calibration micro batch size")
    p.add_argument("--seq_length", type=int, default=4096, help="calibration sequence length")
    entry_point.data_flags(p, "*", split_help=f"{entry_point.SPLIT_HELP} (calibration reads train)")
    return p


def shared_rules_view(args: argparse.Namespace) -> SimpleNamespace:
    """`args` under the names of NeMo's gpt_prune.py flags, which `checks.check_prune_args` judges."""
    config = args.prune_export_config or {}
    return SimpleNamespace(
        **{attribute: config.get(name) for attribute, name in EXPORT_CONFIG.items()},
        restore_path=args.hf_model_name_or_path, save_path=args.output_hf_path, overwrite=args.overwrite,
        devices=args.pp_size, num_nodes=1, tp_size=1, pp_size=args.pp_size,
        num_layers_in_first_pipeline_stage=args.num_layers_in_first_pipeline_stage,
        num_layers_in_last_pipeline_stage=args.num_layers_in_last_pipeline_stage,
        seq_length=args.seq_length, num_train_samples=args.calib_num_samples, mbs=args.calib_mbs,
        data_paths=args.data_paths, tokenizer=None, drop_layers=args.drop_layers, target_params=args.prune_target_params,
    )  # fmt: skip


def _export_config_problems(args: argparse.Namespace, query_groups: int) -> list[Problem]:
    """What ModelOpt 0.43 refuses in an export config once the model is loaded (modelopt/torch/prune/plugins/
    mcore_minitron.py:236-246: query groups other than the model's, unknown sizes), and what is not a config."""
    config = args.prune_export_config
    if config is None:
        return []
    if not isinstance(config, dict) or not all(isinstance(v, int) for v in config.values()):
        return [Problem("--prune_export_config", f"{config!r} is not a JSON object of sizes", 'give e.g. \'{"num_layers": 24}\'')]
    problems = []
    unknown = sorted(set(config) - set(EXPORT_CONFIG.values()))
    if unknown:
        problems.append(Problem("--prune_export_config", f"{unknown}: not sizes this series prunes", f"use {', '.join(EXPORT_CONFIG.values())}"))
    if config.get("num_query_groups", query_groups) != query_groups:
        problems.append(Problem("--prune_export_config num_query_groups", "ModelOpt prunes query groups no longer (since 0.41)", f"leave it out, or give the model's {query_groups}"))
    return problems


def _search_problems(args: argparse.Namespace, facts: PruneFacts) -> list[Problem]:
    if args.prune_target_params is None:
        return []
    found = search.problems(
        facts.source, facts.tied_embeddings, args.prune_target_params, channel_divisor=args.ss_channel_divisor,
        max_width_pruning=args.max_width_pruning, max_depth_pruning=args.max_depth_pruning,
        hparams_to_skip=args.hparams_to_skip, top_k=args.top_k, score_func=args.prune_score_func, names=SEARCH_FLAGS,
    )  # fmt: skip
    if args.prune_score_func == search.VAL_LOSS and (not args.score_data_path or args.score_num_samples < 1):
        found.append(Problem("--score_data_path", "val_loss scores held-out windows: none given", "give the validation split's prefix and --score_num_samples"))
    return found


def targets_of(args: argparse.Namespace) -> dict:
    """What the student was pruned to, as `importance.json` records it."""
    return args.prune_export_config or ({"params": args.prune_target_params} if args.prune_target_params is not None else {})


def check_args(args: argparse.Namespace, facts: PruneFacts) -> None:
    """The rules, judged on `facts` (read from disk by `check`, or planned by the dry run): raises SettingError."""
    view = shared_rules_view(args)
    raise_if_any(_export_config_problems(args, facts.source.num_query_groups) + _search_problems(args, facts))
    if view.target_num_attention_heads is not None and view.target_num_query_groups is None:
        view.target_num_query_groups = facts.source.num_query_groups  # heads are pruned within the model's groups
    check_prune_args(view, facts, FLAG_NAMES)


def check(args: argparse.Namespace) -> None:
    """Every check that needs no model (the notebook runs them before launching): raises SettingError."""
    teacher = inspect_hf_checkpoint(Path(args.hf_model_name_or_path), "--hf_model_name_or_path")
    facts = gather(shared_rules_view(args))
    check_args(args, replace(facts, tied_embeddings=bool(teacher.config.get("tie_word_embeddings"))))
    if args.prune_target_params is not None and args.prune_score_func == search.VAL_LOSS:
        require_score_data(args.score_data_path)
    if is_rank0():  # the writer; the other ranks would find its lock
        require_not_running(Path(args.output_hf_path), "--output_hf_path")


def calibration_loop(args: argparse.Namespace, loaded: conversion.Loaded):
    """ModelOpt's `forward_loop`: --calib_num_samples samples of --seq_length tokens from the train split of
    --data_paths, as NeMo's PreTrainingDataModule draws them, through every pipeline stage, --calib_mbs at a time."""
    from megatron.bridge.training.tokenizers.config import TokenizerConfig
    from megatron.bridge.training.tokenizers.tokenizer import build_tokenizer
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
    from megatron.core.datasets.utils import get_blend_from_list

    # The fast tokenizer, as notebook 01 tokenized the data with: Megatron's default is the slow one (a Llama's needs
    # SentencePiece and a tokenizer.model that a checkpoint with only tokenizer.json lacks).
    hf = TokenizerConfig(tokenizer_type="HuggingFaceTokenizer", tokenizer_model=args.hf_model_name_or_path, hf_tokenizer_kwargs={"use_fast": True})
    tokenizer = build_tokenizer(hf)
    config = GPTDatasetConfig(
        random_seed=SEED, sequence_length=args.seq_length, blend=get_blend_from_list(args.data_paths), split=args.split,
        path_to_cache=args.index_mapping_dir, tokenizer=tokenizer, reset_position_ids=False, reset_attention_mask=False,
        eod_mask_loss=False, create_attention_mask=False,
    )  # fmt: skip
    train, _, _ = BlendedMegatronDatasetBuilder(GPTDataset, [args.calib_num_samples, 0, 0], lambda: True, config).build()

    def forward_loop(_model) -> None:
        for start in range(0, args.calib_num_samples, args.calib_mbs):
            tokens = torch.stack([train[i]["tokens"] for i in range(start, start + args.calib_mbs)])
            conversion.run_stages(loaded, tokens)
            if is_rank0():
                print(f"calibration: {start + args.calib_mbs}/{args.calib_num_samples} samples", flush=True)

    return forward_loop


def search_config(args: argparse.Namespace, loaded: conversion.Loaded) -> tuple[dict, dict]:
    """ModelOpt's `constraints` and `config` for the flags: an export config, or a budget with its search settings."""
    config = {"forward_loop": calibration_loop(args, loaded)}
    if args.prune_target_params is None:
        return {"export_config": dict(args.prune_export_config)}, config  # a copy: ModelOpt pops from it
    score = score_function(args.prune_score_func, loaded, hf_dir=Path(args.hf_model_name_or_path), data_path=args.score_data_path, num_samples=args.score_num_samples, seq_length=args.seq_length, mbs=args.calib_mbs)
    limits = {name: getattr(args, name) for name in ("max_width_pruning", "max_depth_pruning", "hparams_to_skip", "top_k")}
    return {"params": args.prune_target_params}, config | limits | {"score_func": score}


def search_record(args: argparse.Namespace, state: dict, dropped_layers: list[int]) -> dict:
    """What the search did, for `search.json`: its settings, its space, each scored candidate, and the choice."""
    arch = architecture(Path(args.hf_model_name_or_path))
    space = search.search_space(arch, args.ss_channel_divisor, args.max_width_pruning, args.max_depth_pruning, args.hparams_to_skip)
    scored = [{"config": c.ss_config, "params": int(c.params), "score": c.score} for c in state["top_k_candidates_per_constraint"][args.prune_target_params]]
    return {
        "budget": args.prune_target_params, "score_func": args.prune_score_func,
        "limits": {"max_width_pruning": args.max_width_pruning, "max_depth_pruning": args.max_depth_pruning, "hparams_to_skip": args.hparams_to_skip, "top_k": args.top_k},
        "divisors": search.divisors(args.ss_channel_divisor), "search_space": space,
        "combinations": search.combinations(space),
        "scored": scored, "chosen": max(scored, key=lambda c: c["score"])["config"], "dropped_layers": dropped_layers,
    }  # fmt: skip


def prune_in_place(args: argparse.Namespace, loaded: conversion.Loaded) -> dict:
    """Prune `loaded.module` as the flags say; return Minitron's scores in `importance`'s format (and, after a
    search, its record under "search")."""
    import modelopt.torch.opt as mto
    import modelopt.torch.prune as mtp
    from modelopt.torch.prune.plugins.mcore_minitron import drop_mcore_language_model_layers

    if args.drop_layers:
        drop_mcore_language_model_layers(loaded.module, layers_to_drop=args.drop_layers)
        return {"dropped_layers": sorted(args.drop_layers)}
    scores: dict = {}
    divisors = {f"{name}_divisor": step for name, step in (search.divisors(args.ss_channel_divisor) if args.prune_target_params is not None else EXPORT_DIVISORS).items()}
    constraints, config = search_config(args, loaded)
    with importance.recorded(scores):
        _, state = mtp.prune(
            loaded.module,
            mode=[("mcore_minitron", mtp.mcore_minitron.get_mcore_minitron_config(**divisors))],
            constraints=constraints,
            dummy_input=None,
            config=config,
        )
    if mto.ModeloptStateManager.has_state_for_mode_type("prune", model=loaded.module):
        mto.ModeloptStateManager.remove_state(loaded.module)  # the pruned model is an ordinary one (as prune_minitron.py)
    kept = loaded.module.config.num_layers
    dropped = sorted(state["sorted_layers"][kept:]) if state.get("sorted_layers") else []
    if args.prune_target_params is not None:
        scores["search"] = search_record(args, state, dropped)
    return {**scores, "dropped_layers": dropped}


def save_hf(loaded: conversion.Loaded, output: Path, dropped_layers: list[int]) -> None:
    """The pruned model as a Hugging Face checkpoint, as prune_minitron.py writes it: the teacher's config and
    tokenizer with the pruned sizes, then the weights exported by a bridge made for that config. Collective."""
    from megatron.bridge import AutoBridge
    from transformers import AutoConfig, AutoModelForCausalLM

    if is_rank0():
        loaded.bridge.hf_pretrained.save_artifacts(output)
        hf, pruned = AutoConfig.from_pretrained(output), loaded.module.config
        for field, key in HF_NAMES.items():
            if field != "vocab_size":  # pruning keeps the vocabulary
                setattr(hf, key, getattr(pruned, MEGATRON_NAMES[field]))
        if getattr(hf, "layer_types", None):  # one attention type per layer: the kept layers'
            hf.layer_types = [kind for number, kind in enumerate(hf.layer_types, 1) if number not in dropped_layers]
        # A placeholder of the pruned shapes: the bridge below learns the weights' names and files from it.
        AutoModelForCausalLM.from_config(hf, dtype=hf.dtype).save_pretrained(output)
    torch.distributed.barrier()
    AutoBridge.from_hf_pretrained(str(output)).save_hf_weights(loaded.model, output, show_progress=False)


def prune(args: argparse.Namespace) -> Path:
    """Load, prune, export to a temporary folder, check the export's logits, then move it into place."""
    teacher, output = Path(args.hf_model_name_or_path).resolve(), Path(args.output_hf_path).resolve()
    work = partial_path(output)
    if is_rank0():
        remove(work)
    # The provider's own layer spec: for a dense model, Transformer Engine's, which ModelOpt 0.44's
    # `load_mbridge_model_from_hf` sets (modelopt/torch/utils/plugins/mbridge.py:98-106); without TE, Megatron's local one.
    loaded = conversion.load(teacher, args.pp_size, first_stage_layers=args.num_layers_in_first_pipeline_stage, last_stage_layers=args.num_layers_in_last_pipeline_stage)
    try:
        scores = prune_in_place(args, loaded)
        save_hf(loaded, work, scores["dropped_layers"])
        check = conversion.share(conversion.compare(loaded, work, sample_token_ids(work)))
        if not check.passed:  # on every rank: none waits for the others below
            raise RuntimeError(f"the exported student's logits differ from the pruned Megatron-Core model's: {check}")
        if is_rank0():
            print(f"Logits check, pruned Megatron-Core model vs its Hugging Face export: {check}", flush=True)
            record = scores.pop("search", None)
            if record:
                search.save(work, record)
            importance.save(scores, work, source=str(teacher), targets=targets_of(args))
            conversion.write_report(work / LOGITS_FILENAME, check, source=teacher)
            remove(output)
            work.rename(output)
            print(f"Pruned checkpoint: {output}")
        torch.distributed.barrier()
    finally:
        if is_rank0():
            remove(work)
    return output


def launched(args: argparse.Namespace) -> None:
    """`check`, and that torchrun started one process per pipeline stage."""
    check(args)
    conversion.require_launched(args.pp_size)


def run(args: argparse.Namespace, _: None) -> int:
    """Prune, rank 0 holding the lock of --output_hf_path; then leave the process group."""
    rehearsal.enable_bridge()
    with entry_point.writing(Path(args.output_hf_path), "--output_hf_path"):
        prune(args)
    conversion.stop_distributed()
    return 0


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, launched, run)


if __name__ == "__main__":
    sys.exit(main())
