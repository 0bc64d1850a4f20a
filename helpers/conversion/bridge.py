"""Hugging Face -> Megatron-Core with Megatron-Bridge's AutoBridge (the `bridge` route), and the logits check of it.

    python -m helpers.conversion.bridge --source HF_DIR --report check.json [--source ... --report ...]
    torchrun --nproc_per_node 2 -m helpers.conversion.bridge --pp_size 2 --source HF_DIR --report check.json

On this route nothing is converted on disk: every step builds its Megatron model from the Hugging Face checkpoint
(`load`). The command checks that this import is exact: the Megatron model's next-token logits on the sample
text must equal transformers' (the criteria of `logits.judge`, as on the NeMo 2 route); it exits 1 if one does not.
Notebooks launch it through `convert` (never in their kernel) and read the JSON reports it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from helpers.conversion.jobs import Job, inspect_hf_checkpoint
from helpers.conversion.logits import LogitsCheck, judge, sample_token_ids
from helpers.errors import refuse
from helpers.run import entry_point
from helpers.run.launch import is_rank0, python_module, run
from helpers.run.outputs import atomic_output


@dataclass
class Loaded:
    """A Hugging Face checkpoint built as a Megatron-Core model: this process's pipeline stage of it."""

    bridge: object  # megatron.bridge.AutoBridge
    provider: object  # its GPTModelProvider
    model: list  # what `provide_distributed_model` returns (one module: no virtual pipeline)
    module: torch.nn.Module  # the GPTModel inside it (ModelOpt prunes this one)


def start_distributed(pp_size: int = 1) -> None:
    """The process group (torchrun's, or a one-process group of our own) and Megatron's pipeline split."""
    from megatron.core import parallel_state

    if not torch.distributed.is_initialized():
        if "RANK" not in os.environ:  # not under torchrun: a group of one on a free local port
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(s.getsockname()[1]))
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(tensor_model_parallel_size=1, pipeline_model_parallel_size=pp_size)


def require_launched(pp_size: int) -> None:
    """Refuse to start unless torchrun launched one process per pipeline stage (or none launched one, for one)."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != pp_size:
        raise refuse("--pp_size", f"{pp_size} pipeline stage(s), {launched} process(es) launched", f"launch with torchrun --nproc_per_node {pp_size}")


def stop_distributed() -> None:
    """Undo `start_distributed` (a later one starts afresh)."""
    from megatron.core import parallel_state

    parallel_state.destroy_model_parallel()
    torch.distributed.destroy_process_group()


def load(hf_dir: Path, pp_size: int = 1, *, first_stage_layers: int | None = None, last_stage_layers: int | None = None) -> Loaded:
    """Build the Hugging Face checkpoint at `hf_dir` as a Megatron-Core GPT model in its own dtype, split into
    `pp_size` pipeline stages (this process holds one), with the weights loaded, in eval mode: Transformer Engine's
    layers (the provider's default), or without TE Megatron's local ones (`rehearsal.bridge.without_transformer_engine`)."""
    from helpers import rehearsal

    rehearsal.enable_bridge()
    from megatron.bridge import AutoBridge
    from megatron.core.utils import unwrap_model

    start_distributed(pp_size)
    bridge = AutoBridge.from_hf_pretrained(str(hf_dir))
    provider = bridge.to_megatron_provider(load_weights=True)
    provider.tensor_model_parallel_size = 1
    provider.pipeline_model_parallel_size = pp_size
    provider.num_layers_in_first_pipeline_stage = first_stage_layers
    provider.num_layers_in_last_pipeline_stage = last_stage_layers
    if pp_size > 1:
        provider.pipeline_dtype = provider.params_dtype
    rehearsal.bridge.without_transformer_engine(provider)
    provider.finalize()
    model = provider.provide_distributed_model(wrap_with_ddp=False, use_cpu_initialization=rehearsal.bridge.cpu_initialization())
    for module in model:
        module.eval()
    return Loaded(bridge, provider, model, unwrap_model(model[0]))


def run_stages(loaded: Loaded, token_ids: torch.Tensor) -> torch.Tensor | None:
    """The model's output (logits [batch, sequence, vocabulary]) for `token_ids` [batch, sequence], passed through
    every pipeline stage; on the last stage (None on the others). Collective: every rank calls it.

    Stages hand their hidden states [sequence, batch, hidden] to the next with point-to-point sends: for inference
    without micro-batches that is all Megatron's pipeline schedule does.
    """
    from megatron.core import parallel_state

    module = loaded.module
    device = next(module.parameters()).device
    token_ids = token_ids.to(device)
    batch, length = token_ids.shape
    positions = torch.arange(length, device=device).expand_as(token_ids)
    causal = torch.ones(length, length, dtype=torch.bool, device=device).triu(1)[None, None]  # True: masked out
    group, stage = parallel_state.get_pipeline_model_parallel_group(), parallel_state.get_pipeline_model_parallel_rank()
    with torch.no_grad():
        if not parallel_state.is_pipeline_first_stage():
            hidden = torch.empty(length, batch, module.config.hidden_size, dtype=module.config.params_dtype, device=device)
            torch.distributed.recv(hidden, group=group, group_src=stage - 1)
            module.set_input_tensor(hidden)
        output = loaded.model[0](token_ids, positions, attention_mask=causal)
        if not parallel_state.is_pipeline_last_stage():
            torch.distributed.send(output.contiguous(), group=group, group_dst=stage + 1)
            return None
    return output


def forward(loaded: Loaded, token_ids: torch.Tensor) -> torch.Tensor | None:
    """Next-token logits of `token_ids` as float32 on the CPU, on the last pipeline stage (`run_stages`)."""
    output = run_stages(loaded, token_ids)
    return None if output is None else output.float().cpu()


def hf_logits(hf_dir: Path, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.dtype]:
    """transformers' next-token logits of `token_ids` (float32, on the CPU), and the dtype the model ran in."""
    from helpers.models import hf_model

    with hf_model.loaded(hf_dir) as model, torch.no_grad():
        return model(token_ids.to(model.device)).logits.float().cpu(), model.dtype


def compare(loaded: Loaded, hf_dir: Path, token_ids: torch.Tensor) -> LogitsCheck | None:
    """The Megatron model's logits against the Hugging Face checkpoint's on `token_ids`; None except on the last
    pipeline stage. Collective."""
    candidate = forward(loaded, token_ids)
    if candidate is None:
        return None
    reference, dtype = hf_logits(hf_dir, token_ids)
    return judge(candidate[..., : reference.shape[-1]], reference, dtype)


def share(check: LogitsCheck | None) -> LogitsCheck:
    """The last pipeline stage's check, on every rank (so that every rank exits alike)."""
    checks = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(checks, check)
    return next(c for c in checks if c is not None)


def write_report(report: Path, check: LogitsCheck, **fields) -> None:
    """The check as JSON (`{"logits": {...}}` and `fields`), written whole by rank 0."""
    if is_rank0():
        with atomic_output(report) as partial:
            partial.write_text(json.dumps({**{k: str(v) for k, v in fields.items()}, "logits": asdict(check)}, indent=2))


def check_import(source: Path, report: Path, pp_size: int = 1) -> LogitsCheck:
    """Build `source` with AutoBridge, compare its logits with transformers' and write the report. Collective."""
    loaded = load(source, pp_size)
    check = share(compare(loaded, source, sample_token_ids(source)))
    if is_rank0():
        print(f"Logits check, Hugging Face vs Megatron-Core via AutoBridge ({source.name}): {check}", flush=True)
    write_report(report, check, source=source)
    return check


def read_report(job: Job) -> LogitsCheck | None:
    """The check a report holds, if it is a passed check of `job.source` (else None: check again)."""
    try:
        record = json.loads(job.report.read_text())
        check = LogitsCheck(**record["logits"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return check if check.passed and record.get("source") == str(job.source) else None


def command(*todo: Job) -> list[str]:
    """`python -m helpers.conversion.bridge ...`: the check of every job's import, in one process."""
    return python_module("helpers.conversion.bridge", *[flag for job in todo for flag in ("--source", job.source, "--report", job.report)])


def convert(direction: str, todo: dict[str, Job], log: Path, overwrite: bool = False) -> dict[str, LogitsCheck]:
    """The `steps.convert` of this route: check each labelled Hugging Face checkpoint's import (`direction`
    "import"; `Job.output` is not written, the route has no converted copy), reusing a passed report unless
    `overwrite`; launched as a command, raising if a check fails. Returns the checks."""
    if direction != "import":
        raise refuse("direction", f"{direction!r}: the Megatron-Bridge route converts nothing but its imports here", "use 'import'; distillation's export checks its own logits")
    checks = {label: None if overwrite else read_report(job) for label, job in todo.items()}
    stale = {label: job for label, job in todo.items() if checks[label] is None}
    for label, job in todo.items():
        if label not in stale:
            print(f"Reusing the logits check of {job.source} in {job.report} (set OVERWRITE = True to check again): {checks[label]}")
    if stale:
        for job in stale.values():
            job.report.unlink(missing_ok=True)
        run(command(*stale.values()), log)
        checks |= {label: LogitsCheck(**json.loads(job.report.read_text())["logits"]) for label, job in stale.items()}
    return checks


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.conversion.bridge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, type=Path, action="append", help="Hugging Face checkpoint (repeat, with --report, for several)")
    p.add_argument("--report", required=True, type=Path, action="append", help="write the logits check here as JSON")
    p.add_argument("--pp_size", type=int, default=1, help="pipeline stages (processes launched by torchrun)")
    return p


def launched(args: argparse.Namespace) -> None:
    """One --report a --source, one process a pipeline stage, and every source checked before the first model is built."""
    if len(args.source) != len(args.report):
        raise refuse("--source/--report", f"{len(args.source)} source(s) and {len(args.report)} report(s)", "give one --report after each --source")
    require_launched(args.pp_size)
    for source in args.source:
        inspect_hf_checkpoint(source, "--source")


def check_imports(args: argparse.Namespace, _: None) -> int:
    """Check every import; exit status 1 if one changes the logits."""
    checks = [check_import(source, report, args.pp_size) for source, report in zip(args.source, args.report)]
    failed = [str(source) for source, check in zip(args.source, checks) if not check.passed]
    if failed:
        print(f"helpers.conversion.bridge: the import of {', '.join(failed)} changes the model's logits (see above)", file=sys.stderr)
    stop_distributed()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    return entry_point.main(parser(), argv, launched, check_imports)


if __name__ == "__main__":
    sys.exit(main())
