"""The Megatron-Bridge route's CPU rehearsal changes nothing in the container, refuses a GPU without Transformer
Engine before changing anything, and patches what Bridge and Megatron-Core call on a CPU."""

import pytest
from interpreters import printed_json, run_together

# In a fresh interpreter: import Bridge's training, export and pruning stack (through the scoped TE stand-in, as
# every Bridge process does), then for each machine in turn snapshot every attribute of every Megatron, Bridge and
# ModelOpt module (globals and class attributes) and of torch.Tensor, call enable_bridge() and report what changed.
PROBE = r"""
import importlib, inspect, json, sys
import torch
from helpers import rehearsal
from helpers.rehearsal import bridge

bridge.import_without_transformer_engine()
import megatron.bridge.training.distill, megatron.bridge.training.initialize, megatron.bridge.models.model_provider
import modelopt.torch.prune, modelopt.torch.nas.plugins.megatron
from modelopt.torch.nas.registry import DMRegistry

def snapshot():
    seen = {f"torch.Tensor.{k}": id(v) for k, v in vars(torch.Tensor).items()}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("megatron.", "modelopt.torch.prune", "modelopt.torch.nas")):
            continue
        for key, value in list(vars(module).items()):
            seen[f"{name}.{key}"] = id(value)
            if inspect.isclass(value) and value.__module__ == name:
                seen.update({f"{name}.{key}.{k}": id(v) for k, v in vars(value).items()})
    seen["DMRegistry has RMSNorm"] = torch.nn.RMSNorm in DMRegistry
    return seen

found = torch.cuda.is_available, bridge.have_transformer_engine
reports = {}
for machine in sys.argv[1:]:
    before = snapshot()
    if machine.startswith("cuda"):
        torch.cuda.is_available = lambda: True
    bridge.have_transformer_engine = lambda: machine == "cuda+te"
    rehearsal._applied_bridge = False
    try:
        active = rehearsal.enable_bridge()
    except ValueError as refused:
        active = str(refused)
    after = snapshot()
    torch.cuda.is_available, bridge.have_transformer_engine = found
    reports[machine] = {"active": active, "changed": sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))}
print(json.dumps(reports))
"""
MACHINES = ("cuda+te", "cuda", "cpu")  # the container first: whatever it changed would show again in the next


@pytest.fixture(scope="module")
def probes() -> dict[str, dict]:
    return printed_json(run_together({"probe": ("-c", PROBE, *MACHINES)})["probe"])


def test_the_bridge_rehearsal_is_inert_in_the_container(probes):
    assert probes["cuda+te"] == {"active": False, "changed": []}


def test_a_gpu_without_transformer_engine_is_refused_before_anything_is_patched(probes):
    assert "has CUDA but not Transformer Engine" in probes["cuda"]["active"] and probes["cuda"]["changed"] == []


def test_on_a_cpu_the_bridge_rehearsal_patches_what_bridge_and_megatron_call(probes):
    report = probes["cpu"]
    changed = set(report["changed"])
    assert report["active"] is True
    assert {"torch.Tensor.cuda", "megatron.core.models.common.embeddings.rotary_pos_embedding.torch",
            "megatron.bridge.training.initialize.torch", "megatron.core.tensor_parallel.random._get_cuda_rng_state"} <= changed, sorted(changed)
