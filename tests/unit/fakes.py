"""Small stand-ins for the artifacts the notebooks make, for tests that must not wait for them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import yaml
from archs import TEACHERS

from helpers.models.architecture import Architecture

TINY = dataclasses.replace(TEACHERS["tiny"], vocab_size=1024)  # the tiny Qwen3's shapes, a small vocabulary


def nemo_checkpoint(path: Path, arch: Architecture, tokenizer_text: str = "qwen3") -> Path:
    """A NeMo 2 checkpoint folder with zero weights of `arch`'s shapes (torch_dist format, as NeMo writes)."""
    import torch.distributed.checkpoint as dcp

    h, ffn, layers, d = arch.hidden_size, arch.ffn_hidden_size, arch.num_layers, arch.head_dim
    qkv_rows = (arch.num_attention_heads + 2 * arch.num_query_groups) * d
    shapes = {
        "embedding.word_embeddings.weight": (arch.vocab_size, h),
        "decoder.layers.self_attention.linear_qkv.weight": (layers, qkv_rows, h),
        "decoder.layers.self_attention.linear_proj.weight": (layers, h, arch.num_attention_heads * d),
        "decoder.layers.input_layernorm.weight": (layers, h),
        "decoder.layers.mlp.linear_fc1.weight": (layers, 2 * ffn, h),
        "decoder.layers.mlp.linear_fc2.weight": (layers, h, ffn),
        "decoder.layers.pre_mlp_layernorm.weight": (layers, h),
        "decoder.final_layernorm.weight": (h,),
        "output_layer.weight": (arch.vocab_size, h),
    }
    dcp.save({f"module.{k}": torch.zeros(shape) for k, shape in shapes.items()}, checkpoint_id=str(path / "weights"), no_dist=True)
    (path / "weights" / "metadata.json").write_text('{"sharded_backend": "torch_dist"}')
    context = path / "context"
    (context / "nemo_tokenizer").mkdir(parents=True)
    (context / "nemo_tokenizer" / "tokenizer.json").write_text(tokenizer_text)
    config = {"num_layers": layers, "hidden_size": h, "ffn_hidden_size": ffn, "num_attention_heads": arch.num_attention_heads,
              "num_query_groups": arch.num_query_groups, "kv_channels": d, "vocab_size": arch.vocab_size}  # fmt: skip
    (context / "model.yaml").write_text(yaml.safe_dump({"config": config}))
    return path


def megatron_data(prefix: Path) -> Path:
    """A tokenized dataset prefix (.bin/.idx) of a few short documents."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix.parent.mkdir(parents=True, exist_ok=True)
    builder = IndexedDatasetBuilder(str(prefix.with_suffix(".bin")), dtype=np.int32)
    for start in range(0, 400, 40):
        builder.add_document(list(range(start, start + 40)), [40])
    builder.finalize(str(prefix.with_suffix(".idx")))
    return prefix


def command_line(flags: dict[str, str | None]) -> list[str]:
    """`{"--flag": "a b", "--switch": "", "--gone": None}` as argv: values split on spaces, None left out."""
    argv = []
    for flag, value in flags.items():
        if value is not None:
            argv += [flag, *value.split()]
    return argv
