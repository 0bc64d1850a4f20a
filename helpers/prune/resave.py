"""Re-save a pruned checkpoint so that it loads like any other: `python -m helpers.prune.resave SOURCE OUTPUT`.

`llm.prune` builds the model with ModelOpt's layer spec (nemo/collections/llm/modelopt/model_utils.py:73,
:180), whose `Norm` drops `_extra_state` from the state dict (megatron/core/post_training/modelopt/
layers.py:79-90), and saves it without modelopt_state (modelopt/prune/pruner.py:138-145). Every later
load rebuilds the model from the saved context with the default spec (Transformer Engine's, whose
RMSNorm has `_extra_state` from TE 1.13), and NeMo loads strictly by default (megatron_strategy.py:
1120-1122, io/pl.py:286-294): "Missing key in checkpoint state_dict: ...q_layernorm._extra_state".
The reference passes --legacy_ckpt to every later command; `llm.export_ckpt` and in-process loads
(connector.py:254-257) have no such switch. Loading the checkpoint once with the default spec and saving
it whole gives a checkpoint every later step loads normally.

That load tolerates keys the checkpoint lacks, as --legacy_ckpt does, but only `_extra_state` entries:
they hold no weights (Megatron's linears save None, tensor_parallel/layers.py:1055-1057; TE modules
their FP8 scaling metadata), and the ones ModelOpt's spec drops are its norms' (q_layernorm,
k_layernorm, final_layernorm: model_specs.py:114, :140). A lacking weight would keep whatever the model
was built with (`nemo_load` skips initialisation, connector.py:244-245), be saved as if complete,
and pass every later strict load and logits check, since both copies of a model would carry it: the
re-save refuses it by name. Megatron computes the lacking keys while loading ("unexpected keys",
dist_checkpointing/validation.py:314, left out of the load at :187) and returns them under
StrictHandling.RETURN_ALL (serialization.py:167-168); NeMo's checkpoint IO and strategy pass the
result through unchanged (io/pl.py:297-303, megatron_strategy.py:1135-1149) and `nemo_load` drops
it (connector.py:292), so the trainer's strategy keeps it.

Without Transformer Engine (the CPU rehearsal) the spec cannot be built (layers.py:51-55 raises
ImportError), pruning uses Megatron's local spec and nothing is missing: the re-save then copies
the checkpoint through the same code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from helpers.errors import SettingError, refuse
from helpers.run.launch import child_env, python_module

GO = "go"
WITHOUT_WEIGHTS = "._extra_state"  # the only entries a checkpoint may lack


def lenient_trainer():
    """A one-device CPU trainer as NeMo's `nemo_load` builds it, whose strategy loads whatever keys a checkpoint has
    and keeps those that did not match: `strategy.lacking` (the model's, not in the checkpoint) and `strategy.ignored`
    (in the checkpoint, not the model's)."""
    from megatron.core.dist_checkpointing.validation import StrictHandling
    from nemo import lightning as nl

    # The saved context records the constructor's arguments: LOG_ALL, what --legacy_ckpt selects. RETURN_ALL loads
    # as leniently and returns the mismatched keys. A subclass would be recorded in the context by name (IOMixin
    # registers every subclass, nemo/lightning/io/mixin.py:190-191), and every later load of it would need this
    # module: the instance is changed instead.
    strategy = nl.MegatronStrategy(ddp="pytorch", setup_optimizers=False, ckpt_load_strictness=StrictHandling.LOG_ALL)
    strategy.ckpt_load_strictness = StrictHandling.RETURN_ALL
    load = strategy.load_checkpoint

    def load_keeping_mismatches(checkpoint_path, *args, **kwargs):
        checkpoint, strategy.ignored, strategy.lacking = load(checkpoint_path, *args, **kwargs)
        return checkpoint

    strategy.load_checkpoint = load_keeping_mismatches
    return nl.Trainer(devices=1, accelerator="cpu", strategy=strategy)


def require_weights(source: Path, lacking: set[str]) -> None:
    """Refuse a checkpoint that lacks any weight of its model (anything but an `_extra_state`), naming them."""
    weights = sorted(key for key in lacking if not key.endswith(WITHOUT_WEIGHTS))
    if weights:
        raise refuse(
            "source",
            f"{source} lacks {len(weights)} weight(s) of its model: {', '.join(weights)}. Re-saved, they would keep "
            "arbitrary values and the checkpoint would pass for complete",
            "prune again into a new folder; a checkpoint may lack only `_extra_state` entries (no weights)",
        )


def resave(source: Path, output: Path) -> None:
    """Load `source` with the model's default layer spec, tolerating `_extra_state` entries it lacks, and save it
    whole to `output`; raise SettingError, writing nothing, if it lacks a weight."""
    from helpers.run.stack import nemo_llm

    nemo_llm()
    from megatron.core import dist_checkpointing
    from nemo.lightning import io
    from nemo.lightning.ckpt_utils import ckpt_to_context_subdir
    from nemo.lightning.io.pl import TrainerContext, ckpt_to_weights_subdir

    connector = io.load_context(str(source), subpath="model").exporter("hf", str(source))
    _model, trainer = connector.nemo_load(source, trainer=lenient_trainer())
    require_weights(source, trainer.strategy.lacking)
    if trainer.strategy.ignored:
        print(f"helpers.prune.resave: not in the model, left out: {', '.join(sorted(trainer.strategy.ignored))}")
    weights = ckpt_to_weights_subdir(output, is_saving=True)
    weights.mkdir(parents=True, exist_ok=True)
    dist_checkpointing.save(trainer.strategy.megatron_parallel.sharded_state_dict(), weights, content_metadata=trainer.strategy.sharded_state_dict_metadata)
    TrainerContext.from_trainer(trainer).io_dump(ckpt_to_context_subdir(output), yaml_attrs=["model"])


class Standby:
    """A re-save process started while the ranks prune: its NeMo start-up (~20 s on a CPU core, a minute on
    a busy node) overlaps the calibration instead of following it. `run` re-saves once the source is
    complete; `cancel` stops a re-save that is no longer wanted (it has written nothing until `run`).
    """

    def __init__(self, source: Path, output: Path):
        command = python_module("helpers.prune.resave", source, output, "--standby")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, text=True, env=child_env())

    def run(self) -> None:
        """Re-save now (the source is complete) and wait; raise if it failed."""
        self.process.communicate(f"{GO}\n")
        if self.process.returncode:
            raise subprocess.CalledProcessError(self.process.returncode, self.process.args)

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.prune.resave", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="the checkpoint llm.prune wrote")
    p.add_argument("output", type=Path, help="where to write the complete checkpoint (a new folder)")
    p.add_argument("--standby", action="store_true", help=f"import NeMo, then wait for a line '{GO}' on stdin before re-saving")
    args = p.parse_args(argv)
    if args.standby:
        from helpers.run.stack import nemo_llm

        nemo_llm()
        if sys.stdin.readline().strip() != GO:
            print("helpers.prune.resave: no go on stdin; nothing written", file=sys.stderr)
            return 1
    try:
        resave(args.source, args.output)
    except SettingError as error:
        print(f"helpers.prune.resave refused:\n{error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
