"""vLLM's throughput benchmark as notebook 04 and the dry run build it: the Nemotron-Nano document's command adapted to
Qwen3, its figures read from vLLM's log, and workloads refused before a GPU is spent on them."""

import dataclasses
import json

import pytest

from helpers.evaluate import throughput
from helpers.profiles import PROFILES, QuantizeSettings
from helpers.series.dry_run import HUB_CONFIGS

# The two lines vLLM writes that the benchmark reads (vllm/v1/worker/gpu_model_runner.py's load_model and
# vllm/benchmarks/throughput.py's summary), amid the rest of a run's output.
LOG = """INFO 12-07 10:02:11 [gpu_model_runner.py:2340] Model loading took 9.4312 GiB and 6.512300 seconds
INFO 12-07 10:02:40 [kv_cache_utils.py:1087] GPU KV cache size: 421,648 tokens
Processed prompts: 100%|██████████| 1000/1000 [21:03<00:00,  1.26s/it]
Throughput: 0.79 requests/s, 26760.42 total tokens/s, 810.37 output tokens/s
Total num prompt tokens:  32768000
Total num output tokens:  1024000
"""


def test_the_command_is_the_documents_with_the_profiles_workload(tmp_path):
    command = throughput.command(tmp_path / "fp8" / "teacher", PROFILES["qwen3-8b"].quantize)
    assert command[:3] == ["vllm", "bench", "throughput"]
    flags = dict(zip(command[3::2], command[4::2]))
    assert flags == {
        "--model": str(tmp_path / "fp8" / "teacher"), "--dataset-name": "random", "--random-input-len": "32768",
        "--random-output-len": "1024", "--num-prompts": "1000", "--kv-cache-dtype": "fp8", "--load-format": "safetensors",
    }  # fmt: skip


def test_the_figures_come_from_the_log():
    figures = throughput.parse(LOG)
    assert figures == {"output tokens/s": 810.37, "total tokens/s": 26760.42, "requests/s": 0.79, "model loading GiB": 9.4312}
    with pytest.raises(ValueError, match="did not finish"):
        throughput.parse(LOG.replace("Throughput:", "Throughput?"))


def test_speedups_are_relative_to_the_bf16_teacher():
    figures = {"teacher": {"output tokens/s": 794.0}, "teacher-fp8": {"output tokens/s": 1012.0}, "depth-distilled-fp8": {"output tokens/s": 1147.0}}
    assert throughput.speedups(figures) == {"teacher": 1.0, "teacher-fp8": 1.275, "depth-distilled-fp8": 1.445}


@pytest.mark.parametrize("name", ["qwen3-8b", "qwen3-1.7b"])
def test_every_full_profiles_requests_fit_its_teachers_context(name):
    profile = PROFILES[name]
    context = json.loads((HUB_CONFIGS / f"{profile.model.hf_id.replace('/', '--')}.json").read_text())["max_position_embeddings"]
    assert context == 40960 and not throughput.problems(profile.quantize, context)


def test_requests_longer_than_the_context_are_refused_with_the_setting_and_the_fix():
    too_long = dataclasses.replace(QuantizeSettings(), bench_input_len=40000)
    (problem,) = throughput.problems(too_long, 40960)
    assert problem.setting == "quantize.bench_input_len" and "40,000 input + 1,024 output tokens exceed the model's context of 40,960" in problem.problem
    assert "at most 39,936" in problem.fix
    settings = [p.setting for p in throughput.problems(dataclasses.replace(QuantizeSettings(), bench_num_prompts=0), 40960)]
    assert settings == ["quantize.bench_num_prompts"]


def test_without_a_gpu_the_benchmark_says_why():
    import torch

    if torch.cuda.is_available():
        pytest.skip("the reason is for machines without a GPU")
    assert throughput.unavailable_reason().startswith("there is no GPU")
