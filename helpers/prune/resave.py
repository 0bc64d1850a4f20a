"""Re-save a pruned checkpoint so that it loads like any other: `python -m helpers.prune.resave SOURCE OUTPUT`.

`llm.prune` builds the model with ModelOpt's layer spec (nemo/collections/llm/modelopt/model_utils.py:73,
:180), whose `Norm` drops `_extra_state` from the state dict (megatron/core/post_training/modelopt/
layers.py:79-90), and saves it without modelopt_state (modelopt/prune/pruner.py:138-145). Every later
load rebuilds the model from the saved context with the default spec (Transformer Engine's, whose
RMSNorm has `_extra_state` from TE 1.13), and NeMo loads strictly by default (megatron_strategy.py:
1120-1122, io/pl.py:286-294): "Missing key in checkpoint state_dict: ...q_layernorm._extra_state".
The reference passes --legacy_ckpt to every later command; `llm.export_ckpt` and in-process loads
(connector.py:254-257) have no such switch. Loading the checkpoint once with the default spec,
tolerating the missing keys (StrictHandling.LOG_ALL, what --legacy_ckpt selects), and saving it
whole gives a checkpoint every later step loads normally.

Without Transformer Engine (the CPU rehearsal) the spec cannot be built (layers.py:51-55 raises
ImportError), pruning uses Megatron's local spec and nothing is missing: the re-save then copies
the checkpoint through the same code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from helpers.launch import child_env, python_module

GO = "go"


def lenient_trainer():
    """A one-device CPU trainer as NeMo's `nemo_load` builds it, loading with --legacy_ckpt's strictness."""
    from megatron.core.dist_checkpointing.validation import StrictHandling
    from nemo import lightning as nl

    strategy = nl.MegatronStrategy(ddp="pytorch", setup_optimizers=False, ckpt_load_strictness=StrictHandling.LOG_ALL)
    return nl.Trainer(devices=1, accelerator="cpu", strategy=strategy)


def resave(source: Path, output: Path) -> None:
    """Load `source` with the model's default layer spec, tolerating keys it lacks, and save it whole to `output`."""
    from helpers.stack import nemo_llm

    nemo_llm()
    from megatron.core import dist_checkpointing
    from nemo.lightning import io
    from nemo.lightning.ckpt_utils import ckpt_to_context_subdir
    from nemo.lightning.io.pl import TrainerContext, ckpt_to_weights_subdir

    connector = io.load_context(str(source), subpath="model").exporter("hf", str(source))
    _model, trainer = connector.nemo_load(source, trainer=lenient_trainer())
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
        from helpers.stack import nemo_llm

        nemo_llm()
        if sys.stdin.readline().strip() != GO:
            print("helpers.prune.resave: no go on stdin; nothing written", file=sys.stderr)
            return 1
    resave(args.source, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
