"""FP8 post-training quantization of the series' Hugging Face checkpoints with ModelOpt.

    python -m helpers.quantize ...   one checkpoint, with the flags of ModelOpt's examples/llm_ptq/hf_ptq.py (`cli`)
    recipe.py   hf_ptq.py's FP8 recipe for a dense transformer, and whether this machine's ModelOpt can run it
    ptq.py      calibrate, quantize, export a unified Hugging Face checkpoint, and check the export
    reload.py   load an FP8 export back into PyTorch with its scales
    steps.py    what the notebook runs: every model quantized, measured beside its source, benchmarked with vLLM

The notebook calls the functions below; they are imported when first used, so that the command line does not load
the notebook's measuring code.
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["benchmark", "findings", "measure", "overview", "quantize_all"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module(f"{__name__}.steps"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
