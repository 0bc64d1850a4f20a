"""Deployment throughput with vLLM, as the Nemotron-Nano document measures it: `vllm bench throughput` once per
checkpoint (bf16 and FP8) on one GPU, reading the model loading memory and the output tokens per second from its log.

vLLM reads the FP8 checkpoints as they are: it finds `quant_method: "modelopt"` in their config.json and runs FP8
kernels, with no flag. The document's command, adapted to Qwen3: `--trust-remote-code` and
`--mamba_ssm_cache_dtype float32` were for Nemotron-H's hybrid Mamba layers (Qwen3 and Llama are transformers' own
architectures, without Mamba); `--dataset-name random` and `--num-prompts` are said explicitly, with the profile's
workload (`QuantizeSettings`: the document's 32,768 input and 1,024 output tokens, vLLM's default 1,000 requests).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from helpers.errors import Problem
from helpers.profiles import QuantizeSettings
from helpers.run.launch import run

CONTAINER = "vllm/vllm-openai (vLLM's own image; `pip install vllm` in a fresh environment works too)"
_THROUGHPUT = re.compile(r"Throughput: ([\d.]+) requests/s, ([\d.]+) total tokens/s, ([\d.]+) output tokens/s")
_LOADING = re.compile(r"Model loading took ([\d.]+) GiB")


def command(model_dir: Path, settings: QuantizeSettings) -> list[str]:
    """`vllm bench throughput` for one checkpoint: random requests of the profile's lengths, the KV cache in FP8."""
    return [
        "vllm", "bench", "throughput", "--model", str(model_dir), "--dataset-name", "random",
        "--random-input-len", str(settings.bench_input_len), "--random-output-len", str(settings.bench_output_len),
        "--num-prompts", str(settings.bench_num_prompts), "--kv-cache-dtype", "fp8", "--load-format", "safetensors",
    ]  # fmt: skip


def problems(settings: QuantizeSettings, context_length: int) -> list[Problem]:
    """What would make the benchmark fail: requests longer than the model's context (`max_position_embeddings`: vLLM
    refuses a prompt and its output beyond it), or an empty workload."""
    found = []
    if settings.bench_input_len + settings.bench_output_len > context_length:
        found.append(Problem("quantize.bench_input_len", f"{settings.bench_input_len:,} input + {settings.bench_output_len:,} output tokens exceed the model's context of {context_length:,}",
                             f"lower bench_input_len to at most {context_length - settings.bench_output_len:,} in the profile"))  # fmt: skip
    found += [Problem(f"quantize.{name}", f"is {getattr(settings, name)}", "give at least 1") for name in ("bench_input_len", "bench_output_len", "bench_num_prompts") if getattr(settings, name) < 1]
    return found


def unavailable_reason() -> str | None:
    """Why vLLM cannot benchmark here, or None if it can."""
    import torch

    if not torch.cuda.is_available():
        return "there is no GPU: vLLM's throughput is a GPU measurement (its FP8 kernels need Hopper or newer)"
    if importlib.util.find_spec("vllm") is None:
        return f"vLLM is not installed in this environment; run the commands in {CONTAINER}"
    return None


def parse(log: str) -> dict[str, float]:
    """The figures of one benchmark's log: output (and total) tokens per second, requests per second, and the GiB
    the weights took when vLLM loaded them. Raises if the log has no throughput line (the run did not finish)."""
    found = _THROUGHPUT.search(log)
    if not found:
        raise ValueError("the log has no 'Throughput: ... output tokens/s' line: the benchmark did not finish")
    requests, total, output = map(float, found.groups())
    figures = {"output tokens/s": output, "total tokens/s": total, "requests/s": requests}
    if loading := _LOADING.findall(log):
        figures["model loading GiB"] = float(loading[-1])
    return figures


def benchmark(models: dict[str, Path], settings: QuantizeSettings, logs: Path) -> dict[str, dict[str, float]]:
    """Run the benchmark for each model in turn (streamed, raising if one fails) and return each one's figures."""
    figures = {}
    for label, path in models.items():
        log = logs / f"04-vllm-{label}.log"
        run(command(path, settings), log)
        figures[label] = parse(log.read_text())
    return figures


def speedups(figures: dict[str, dict[str, float]], reference: str = "teacher") -> dict[str, float]:
    """Output tokens per second relative to the `reference` checkpoint's, as the document's table reports them."""
    base = figures[reference]["output tokens/s"]
    return {label: round(values["output tokens/s"] / base, 3) for label, values in figures.items()}
