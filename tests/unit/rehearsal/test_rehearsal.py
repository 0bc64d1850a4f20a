"""The CPU rehearsal changes nothing where CUDA is present, and is what makes the CPU path run."""

import pytest
from interpreters import printed_json, run_together

from helpers.rehearsal.pytorch import CUDA_CALL_SITES

# Runs in a fresh interpreter: import every module the rehearsal may patch, then, for each machine in turn,
# snapshot its attributes (module globals and class attributes), call enable() and report which ones changed.
# The machines where nothing may change come first: whatever they changed would show again in the next one.
PROBE = r"""
import importlib, inspect, json, resource, sys
import torch
from helpers import rehearsal
from modelopt.torch.nas.registry import DMRegistry

modules = [*rehearsal.pytorch.CUDA_CALL_SITES, "nemo.lightning.io.pl", "nemo.lightning.io.state", "nemo.lightning.io",
           "nemo.collections.llm.modelopt.model_utils"]

def snapshot():
    seen = {f"torch.Tensor.{k}": id(v) for k, v in vars(torch.Tensor).items()}
    for name in modules:
        module = importlib.import_module(name)
        for key, value in list(vars(module).items()):
            seen[f"{name}.{key}"] = id(value)
            if inspect.isclass(value) and value.__module__ == name:
                seen.update({f"{name}.{key}.{k}": id(v) for k, v in vars(value).items()})
    seen["DMRegistry has RMSNorm"] = torch.nn.RMSNorm in DMRegistry
    seen["freed memory is faulted in again"] = min(refaults() for _ in range(4)) > 8192  # reuse may take a few rounds
    return seen

def refaults():  # minor page faults of allocating and filling 64 MiB (16,384 pages) right after freeing as much
    torch.ones(2**24)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(2**24)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

machine_as_found = torch.cuda.is_available, rehearsal.have_transformer_engine
reports = {}
for machine in sys.argv[1:]:
    before = snapshot()  # the first one imports the modules: some query the device when CUDA is reported
    if machine.startswith("cuda"):
        torch.cuda.is_available = lambda: True
        rehearsal.have_transformer_engine = lambda: machine == "cuda+te"
    try:
        active = rehearsal.enable()
    except ValueError as refused:
        active = str(refused)
    after = snapshot()
    torch.cuda.is_available, rehearsal.have_transformer_engine = machine_as_found
    reports[machine] = {"active": active, "changed": sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))}
print(json.dumps(reports))
"""


MACHINES = ("cuda+te", "cuda", "cpu")


@pytest.fixture(scope="module")
def probes() -> dict[str, dict]:
    """The probe's report on each machine, from one interpreter (importing NeMo once)."""
    done = run_together({"probe": ("-c", PROBE, *MACHINES)}, timeout=600)
    return printed_json(done["probe"])


@pytest.mark.parametrize("cuda", MACHINES)
def test_rehearsal_is_inert_in_the_container_refuses_cuda_without_te_and_is_active_on_cpu(probes, cuda):
    report = probes[cuda]
    if cuda == "cuda+te":  # the NeMo container: nothing is touched
        assert report == {"active": False, "changed": []}
    elif cuda == "cuda":  # a GPU without Transformer Engine: refused before anything is patched
        assert report["changed"] == [] and report["active"].startswith("environment: this machine has CUDA but not Transformer Engine")
        assert "fix: use the NeMo container" in report["active"]
    else:  # the same probe sees the patches when CUDA is absent, so the check above can fail
        changed = set(report["changed"])
        assert report["active"] is True
        assert {"torch.Tensor.cuda", "megatron.core.timers.torch", "nemo.lightning.io.pl._fix_tensors_device",
                "DMRegistry has RMSNorm", "freed memory is faulted in again"} <= changed  # fmt: skip
        assert {f"{module}.torch" for module in CUDA_CALL_SITES} <= changed


def test_a_transformer_engine_that_fails_to_import_counts_as_absent(tmp_path, monkeypatch):
    """NeMo decides by importing TE (gpt/model/base.py:40): a package that is found but broken leaves it on the local spec."""
    import importlib
    import importlib.util

    from helpers import rehearsal

    package = tmp_path / "transformer_engine"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('libcudart.so.13: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert importlib.util.find_spec("transformer_engine") is not None  # what a look at the path would conclude
    assert not rehearsal.have_transformer_engine()
