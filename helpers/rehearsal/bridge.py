"""Megatron-Bridge 0.3.1 without Transformer Engine or CUDA: importing it, building its models with Megatron's own
layers on the CPU, and running them forward (Megatron-Core 0.16.1 under it).

Every workaround here is keyed on its cause: Transformer Engine being absent (`have_transformer_engine`), or CUDA
(`cpu_initialization`, `forward_on_cpu`); in the NeMo 26.02 container on a GPU, none of them applies.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from functools import cache

# The Bridge modules that import Transformer Engine unconditionally, on the import path of `megatron.bridge` itself:
# megatron/bridge/peft/lora_layers.py:20 (`import transformer_engine.pytorch as te`; subclasses `te.Linear` at :81)
# and peft/lora.py:21, reached from megatron/bridge/__init__.py -> models/conversion/auto_bridge.py ->
# model_bridge.py -> peft_bridge.py -> peft/canonical_lora.py. Only LoRA fine-tuning would use what they define.
NEEDS_TE = ("megatron.bridge.peft.lora_layers", "megatron.bridge.peft.lora")
STAND_IN = ("transformer_engine", "transformer_engine.pytorch")


@cache
def have_transformer_engine() -> bool:
    """Whether Transformer Engine imports, decided as Megatron-Core decides its layer choice (a plain import)."""
    try:
        importlib.import_module("transformer_engine.pytorch")
    except ImportError:
        return False
    return True


class _Missing(type):
    """The type of the stand-in's classes: any attribute (`te.ops.Sequential` in an annotation) is another one."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing(name, (_Unavailable,), {})


class _Unavailable(metaclass=_Missing):
    """A Transformer Engine class on a machine without it: subclassing works, building one says why it cannot."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} needs Transformer Engine, which this machine does not have")


def _stand_in_modules() -> dict[str, types.ModuleType]:
    package, pytorch = types.ModuleType(STAND_IN[0]), types.ModuleType(STAND_IN[1])
    pytorch.__getattr__ = lambda name: _Missing(name, (_Unavailable,), {})  # every `te.X` is a class that refuses to build
    package.pytorch = pytorch
    package.__path__ = []
    return dict(zip(STAND_IN, (package, pytorch)))


def _imports_of(source: str, module: str) -> list[str]:
    """The modules `module`'s top level imports (absolute imports only, which is all NEEDS_TE uses)."""
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return [name for name in found if name.split(".")[0] != STAND_IN[0] and name not in NEEDS_TE and name != module]


class _ScopedLoader(importlib.abc.Loader):
    """Runs one module of NEEDS_TE with the stand-in in `sys.modules`, and no other module's import in between."""

    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        name = module.__spec__.name
        for dependency in _imports_of(self.inner.get_source(name), name):
            importlib.import_module(dependency)  # first, without the stand-in: they decide on TE for themselves
        before = set(sys.modules)
        sys.modules.update(_stand_in_modules())
        try:
            self.inner.exec_module(module)
        finally:
            for stand_in in STAND_IN:
                sys.modules.pop(stand_in, None)
        leaked = set(sys.modules) - before - set(NEEDS_TE) - set(STAND_IN)
        if leaked:
            raise RuntimeError(f"importing {name} with a Transformer Engine stand-in also imported {sorted(leaked)}")


class _ScopedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in NEEDS_TE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            spec.loader = _ScopedLoader(spec.loader)
        return spec


def import_without_transformer_engine() -> None:
    """Let `import megatron.bridge` succeed without TE, while Megatron-Core still sees no TE (and builds local layers).

    A stand-in `transformer_engine` is visible to the NEEDS_TE modules only, for the time their own code runs:
    their other imports are made first, without it, and any module imported while it is present is an error.
    A global stand-in would make megatron/core/extensions/transformer_engine.py and the layer specs believe TE is
    installed and build TE layers.
    """
    if have_transformer_engine() or any(isinstance(finder, _ScopedFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _ScopedFinder())


def without_transformer_engine(provider) -> None:
    """Build the provider's models with Megatron's local layers (plain torch modules) and no TE fusion.

    megatron/bridge/models/gpt_provider.py:116-121 (`default_layer_spec`) always returns a TE spec; Megatron-Core's
    TE layers need Transformer Engine. `local_layer_spec` (:79) is Bridge's own spec without it. And the Llama
    bridge turns TE's fused rotary embedding on (megatron/bridge/models/llama/llama_bridge.py:70), which
    Megatron-Core's TransformerConfig refuses without TE ("apply_rope_fusion is not available. Please install
    TE >= 1.4", megatron/core/transformer/transformer_config.py:1550), and its provider Apex's persistent layer norm
    (llama/llama_provider.py `persist_layer_norm = True`), which torch's norms refuse
    (megatron/core/transformer/torch_norm.py:30).
    """
    if have_transformer_engine():
        return
    from megatron.bridge.models.gpt_provider import local_layer_spec as spec

    provider.transformer_layer_spec = spec
    provider.apply_rope_fusion = provider.persist_layer_norm = False


def cpu_initialization() -> bool:
    """Whether `provide_distributed_model` must leave the model on the CPU: when CUDA is absent.

    megatron/bridge/models/model_provider.py:540 overrides the provider's `use_cpu_initialization` with this argument
    of `provide_distributed_model` (default False), and :583 then moves the model with
    `model_module.cuda(torch.cuda.current_device())`: "Torch not compiled with CUDA enabled".
    """
    import torch

    return not torch.cuda.is_available()


# Megatron-Core 0.16.1 modules (the version Megatron-Bridge 0.3.1 runs on) that call `torch.cuda.*` in a forward
# pass of a model Bridge built; inside each, `torch` acts on the CPU (lines: "Torch not compiled with CUDA enabled").
CUDA_CALL_SITES = {
    "megatron.core.models.common.embeddings.rotary_pos_embedding": "162 inv_freq.to(torch.cuda.current_device())",
    "megatron.core.utils": "631 current_device (GlobalMemoryBuffer: local attention's scores)",
}


def forward_on_cpu() -> None:
    """Without CUDA, let Megatron-Core 0.16.1 run a forward pass: `torch` of every module of CUDA_CALL_SITES acts on
    the CPU (`rehearsal.pytorch`), and the model-parallel RNG tracker, which local attention forks on every forward
    (transformer/dot_product_attention.py:217 -> tensor_parallel/random.py:248, CUDA generator states), keeps the
    CPU's generator (`rehearsal.megatron.rng_tracker_on_cpu`: its 0.14.0 lines moved, the code did not)."""
    import torch

    from helpers.rehearsal import megatron, pytorch

    if torch.cuda.is_available():
        return
    for module_name in CUDA_CALL_SITES:
        pytorch._redirect_torch(module_name)
    megatron.rng_tracker_on_cpu()


WORKAROUNDS = (import_without_transformer_engine, forward_on_cpu)
