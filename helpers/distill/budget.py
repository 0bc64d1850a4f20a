"""The distillation budget: tokens -> steps as the reference tutorial derives them, and what a run costs.

Reference (Qwen3-8B): 125M tokens of sequence 4096 at global batch 768 is ceil(125e6 / (4096 x 768))
= 40 steps; warmup, logging, validation and checkpoint intervals are min(100, ceil(40 / 10)) = 4.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers.models.checkpoints import architecture, parameter_counts
from helpers.profiles import H100, DistillSettings

BYTES = {"bf16-mixed": 2, "16-mixed": 2, "32": 4}


@dataclass(frozen=True)
class KDPlan:
    num_tokens: int
    seq_length: int
    gbs: int
    max_steps: int
    interval: int  # warmup steps = log interval = validation (and checkpoint) interval
    limit_val_batches: int

    @property
    def tokens(self) -> int:
        """Tokens the run actually sees (max_steps rounds the budget up to whole steps)."""
        return self.max_steps * self.gbs * self.seq_length


def plan(settings: DistillSettings, seq_length: int) -> KDPlan:
    max_steps = math.ceil(settings.num_tokens / (seq_length * settings.gbs))
    return KDPlan(
        num_tokens=settings.num_tokens,
        seq_length=seq_length,
        gbs=settings.gbs,
        max_steps=max_steps,
        interval=settings.interval or min(100, math.ceil(max_steps / 10)),
        limit_val_batches=settings.limit_val_batches,
    )


@dataclass(frozen=True)
class ModelShape:
    """What the estimates need to know about a model (from its checkpoint)."""

    parameters: int
    num_layers: int
    hidden_size: int
    vocab_size: int


def model_shape(checkpoint: Path) -> ModelShape:
    arch = architecture(checkpoint)
    return ModelShape(parameter_counts(checkpoint)["total"], arch.num_layers, arch.hidden_size, arch.vocab_size)


def kd_logits_bytes(precision: str, tp_size: int) -> int:
    """Bytes the logits KD loss holds at its peak per token and per vocabulary entry of one TP rank.

    NeMo's `LogitsKLLoss` (nemo/collections/llm/modelopt/distill/loss.py:153-237) upcasts both logits
    to fp32 and, with TP > 1, keeps the shifted teacher and student logits, exp(student) for backward,
    both log-probabilities, and kl_div's exp(target), difference and product: 8 full-vocabulary fp32
    tensors (7 with TP = 1, where log_softmax/softmax replace the manual reduction), on top of the
    student's and the teacher's logits in the training dtype.
    """
    return 2 * BYTES[precision] + 4 * (8 if tp_size > 1 else 7)


def model_parallel_size(settings: DistillSettings) -> int:
    """Processes that hold one model replica between them: its tensor, pipeline and context splits.

    `settings`: a profile's DistillSettings, or the entry points' flags (argparse's namespace), which share its names.
    """
    return settings.tp_size * settings.pp_size * settings.cp_size


def data_parallel_size(settings: DistillSettings) -> int:
    """Model replicas over all nodes: every device of every node, divided by `model_parallel_size`."""
    return settings.devices * settings.num_nodes // model_parallel_size(settings)


def memory_per_device(student: ModelShape, teacher: ModelShape, settings: DistillSettings, seq_length: int) -> pd.DataFrame:
    """Estimated memory per device in GB, by item, with the assumption behind each line.

    Megatron mixed precision with the distributed optimizer: weights in the training dtype,
    fp32 gradients, fp32 master weights (bf16 only) and two fp32 Adam moments sharded over the
    data-parallel ranks; no activation recomputation; flash attention (no sequence^2 term);
    sequence parallelism with TP > 1 (activations split over TP); the teacher runs without gradients.
    """
    width = BYTES[settings.precision]
    model_shards = settings.tp_size * settings.pp_size
    data_parallel = data_parallel_size(settings)
    optimizer_bytes = (4 if width == 2 else 0) + 8
    tokens = seq_length * settings.mbs / settings.cp_size
    logits = kd_logits_bytes(settings.precision, settings.tp_size)
    rows = [
        ("student weights", student.parameters * width / model_shards, f"{width} B per parameter, split over TP x PP"),
        ("student gradients", student.parameters * 4 / model_shards, "fp32 gradients"),
        ("optimizer state", student.parameters * optimizer_bytes / (model_shards * data_parallel), f"{optimizer_bytes} B per parameter, also split over {data_parallel} data-parallel rank(s)"),
        ("teacher weights", teacher.parameters * width / model_shards, "frozen, no gradients or optimizer state"),
        ("layer activations", student.num_layers * tokens * student.hidden_size * 17 * width / settings.tp_size, "~34 bytes per token per hidden unit per layer in 16-bit (Korthikanti et al.); with PP the first stage holds PP micro-batches of its layers, as much"),
        ("logits for the KD loss", tokens * student.vocab_size / settings.tp_size * logits, f"{logits} B per token per vocabulary entry of a TP rank: the logits and the loss's fp32 intermediates"),
    ]
    table = pd.DataFrame(rows, columns=["item", "GB", "assumption"]).set_index("item")
    table["GB"] = (table["GB"] / 1e9).round(2)
    table.loc["total"] = [table["GB"].sum().round(2), f"per device, {settings.devices * settings.num_nodes} device(s)"]
    return table


CHECKPOINT_BYTES = 14  # per parameter of a distillation checkpoint: weights (2, bf16), fp32 main copy (4), two Adam moments (8)


def checkpoint_copies(async_saves: bool) -> int:
    """The most copies of one run's checkpoint on disk at once: each validation saves a new best (top-1) and a
    new `-last` copy (`save_last=True`: a full copy, not a link) while the previous ones still exist.

    Synchronous saves (the CPU rehearsal) delete each superseded copy as soon as its successor is written
    (Lightning's `_save_topk_checkpoint`, then `_save_last_checkpoint`): at most 3 at a time. Asynchronous
    saves (NeMo's default on GPUs) defer every deletion until the new save is finalized
    (nemo/lightning/pytorch/callbacks/model_checkpoint.py:690-703, `deferred_ckpts_to_remove`): the old best,
    the old last, the new best and the new last, 4 copies.
    """
    return 4 if async_saves else 3


def disk_estimate(teacher: int, students: dict[str, int], data_gb: float, async_saves: bool = True, kept: int | None = None) -> pd.DataFrame:
    """Disk a full run writes, in GB, from parameter counts: what stays, and the peak while the last distillation saves.

    The runs go one after the other (notebook 03), so the peak is everything before the last run, plus that run's
    checkpoints in flight (`checkpoint_copies`) around one of its validations. `kept`: the checkpoints a run keeps
    on the Megatron-Bridge route (every validation's: Bridge has no "keep the best"), where the teacher and the
    pruned students are Hugging Face checkpoints only; None: the NeMo 2 route's, which keeps the best and the last.
    """
    copies = checkpoint_copies(async_saves)
    bridge = kept is not None
    kept = kept or 2
    run = {kind: kept * n * CHECKPOINT_BYTES for kind, n in students.items()}
    rows = [
        ("teacher, Hugging Face (bf16)", teacher * 2),
        *([] if bridge else [("teacher, NeMo 2 (bf16)", teacher * 2)]),
        *((f"{kind}-pruned student, {'Hugging Face' if bridge else 'NeMo 2'}", n * 2) for kind, n in students.items()),
        *([] if bridge else [(f"{kind}-pruned student, exported to Hugging Face", n * 2) for kind, n in students.items()]),
        *((f"{kind} distillation: {kept} checkpoints with optimizer state ({CHECKPOINT_BYTES} B per parameter)", run[kind]) for kind in students),
        *((f"{kind}-distilled student, exported to Hugging Face", n * 2) for kind, n in students.items()),
    ]
    table = pd.DataFrame(rows, columns=["item", "GB"]).set_index("item") / 1e9
    table.loc["tokenized data"] = data_gb
    table.loc["total, when the series is done"] = table["GB"].sum()
    last, last_size = list(students)[-1], list(students.values())[-1]
    exports = sum(table.loc[f"{kind}-distilled student, exported to Hugging Face", "GB"] for kind in students)
    before_last = table.loc["total, when the series is done", "GB"] - exports - run[last] / 1e9
    in_flight = copies * last_size * CHECKPOINT_BYTES / 1e9
    peak = f"peak: while the {last} distillation saves ({copies} copies of its checkpoint at once{', async saves' if async_saves else ''})"
    table.loc[peak] = max(before_last + in_flight, table.loc["total, when the series is done", "GB"])
    return table.round(1)


def measured_tflops(seconds: float = 1.0) -> float:
    """Dense fp32 matmul throughput of this machine's CPU in TFLOP/s, measured for about a second."""
    import torch

    size = 1024
    a, b = torch.randn(size, size), torch.randn(size, size)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e12


# The fraction of the devices' peak throughput a whole run reaches, validations and checkpoint saves included.
# GPUs: calibrated on the reference, whose 40 steps on 8 x H100 took ~48 min (depth) and ~55 min (width) end to end:
# `time_estimate`'s FLOPs at 989 TFLOP/s per GPU make 20.5 and 20.8 s per step at full peak, against 72 and 82.5 s
# measured, so 28.5% and 25.2%; their mean puts both estimates within 7% (50.7 and 51.3 min).
# CPUs: a guess from the tiny runs (checked in notebook 03 against the measured step time).
GPU_EFFICIENCY = 0.27
CPU_EFFICIENCY = 0.15


def flops_per_token(student_parameters: float, teacher_parameters: float) -> float:
    """6 per student parameter (forward and backward) and 2 per teacher parameter (forward only)."""
    return 6 * student_parameters + 2 * teacher_parameters


@dataclass(frozen=True)
class MeasuredRun:
    """A distillation whose GPU-hours per 1,000 steps were published: what the cost across nodes is scaled from."""

    source: str
    nodes: int
    gpus_per_node: int
    gpu_hours_per_1000_steps: float
    gbs: int
    seq_length: int
    student_parameters: float
    teacher_parameters: float

    def fraction_of_peak(self, tflops_per_gpu: float) -> float:
        """The share of the GPUs' peak its steps reached, its FLOPs counted as the estimates count them."""
        flops = 1000 * self.gbs * self.seq_length * flops_per_token(self.student_parameters, self.teacher_parameters)
        return flops / (self.gpu_hours_per_1000_steps * 3600 * tflops_per_gpu * 1e12)


# Nemotron-Nano-9B-v2 pruned to 7B and distilled on 96 nodes x 8 H100 (NVIDIA Model Optimizer's example "Nemotron-
# Nano-9B-v2: Prune + Distill + Quantize + vLLM Deployment"): "~600 H100 GPU-hours per 1k steps" of 768 x 8,192 tokens.
# By `time_estimate`'s count that is 17.7% of the H100's bf16 peak, 0.65 of the 27% one node of 8 H100 reached on the
# reference: each node of that run delivered about two thirds of a lone node's tokens per second. So a run over
# several nodes is planned at the 96-node run's measured rate whatever the count: one measured point, which
# overstates the time of a few nodes (they lose less to the network). Its model is a hybrid Mamba-Transformer trained
# through Megatron-Bridge, not a Qwen3 through NeMo 2, and its figures are rounded (the same page's "45 min per 1k
# steps" on 768 GPUs makes 576 GPU-hours). The 27% includes a validation and a checkpoint every 4 steps, the 17.7%
# a validation every 400.
NEMOTRON_NANO_96_NODES = MeasuredRun(
    source="Nemotron-Nano-9B-v2 -> 7B distilled on 96 x 8 H100, ~600 GPU-hours per 1,000 steps of 768 x 8,192 tokens",
    nodes=96,
    gpus_per_node=8,
    gpu_hours_per_1000_steps=600,
    gbs=768,
    seq_length=8192,
    student_parameters=7e9,
    teacher_parameters=9e9,
)
MULTI_NODE_EFFICIENCY = NEMOTRON_NANO_96_NODES.fraction_of_peak(H100.bf16_tflops) / GPU_EFFICIENCY


@dataclass(frozen=True)
class Throughput:
    tflops_per_device: float
    efficiency: float
    source: str
    across_nodes: float = 1.0  # the share of a lone node's throughput each node keeps in a run over several


def throughput(gpu) -> Throughput:
    """What a run's time is estimated from: the planned GPU's bf16 peak (from the profile: the notebook's kernel
    never touches a GPU, so it holds no CUDA context on the devices the run needs), or this CPU, measured (its
    "nodes", in the rehearsal, share this machine: nothing is lost between them)."""
    if gpu is not None:
        source = f"{gpu.name} bf16 peak, efficiency calibrated on the reference's 8 x H100 runs"
        return Throughput(gpu.bf16_tflops, GPU_EFFICIENCY, source, MULTI_NODE_EFFICIENCY)
    return Throughput(measured_tflops(), CPU_EFFICIENCY, "this CPU's fp32 matmul, measured for a second")


def efficiency(settings: DistillSettings, rate: Throughput) -> float:
    """The share of the devices' peak a run reaches: `rate`'s, and on more than one node `rate.across_nodes` of it."""
    return rate.efficiency * (rate.across_nodes if settings.num_nodes > 1 else 1.0)


def step_flops(student: ModelShape, teacher: ModelShape, kd: KDPlan) -> float:
    return kd.gbs * kd.seq_length * flops_per_token(student.parameters, teacher.parameters)


def seconds_per_step(student: ModelShape, teacher: ModelShape, kd: KDPlan, settings: DistillSettings, rate: Throughput) -> float:
    """Seconds per step: the step's FLOPs at `efficiency` of every device's peak."""
    return step_flops(student, teacher, kd) / (settings.devices * settings.num_nodes * rate.tflops_per_device * 1e12 * efficiency(settings, rate))


def time_estimate(student: ModelShape, teacher: ModelShape, kd: KDPlan, settings: DistillSettings, rate: Throughput) -> dict:
    """`seconds_per_step`, the tokens per second of a node, and the whole run's time, with the throughput assumed."""
    per_step = seconds_per_step(student, teacher, kd, settings, rate)
    nodes, devices = settings.num_nodes, settings.devices * settings.num_nodes
    share = efficiency(settings, rate)
    across = "" if share == rate.efficiency else f", {rate.across_nodes:.2f} of it on each of {nodes} nodes ({NEMOTRON_NANO_96_NODES.source})"
    return {
        "FLOPs per step": f"{step_flops(student, teacher, kd):.3g}",
        "assumed throughput": f"{rate.tflops_per_device:.3g} TFLOP/s per device x {share:.1%} x {devices} device(s) ({rate.source}{across})",
        "seconds per step": round(per_step, 2),
        "tokens per second per node": round(kd.gbs * kd.seq_length / per_step / nodes),
        "run time (validations and checkpoints included)": f"{per_step * kd.max_steps / 60:.1f} min",
    }
