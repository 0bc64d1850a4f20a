"""Read a NeMo 2 checkpoint without loading it: its config, its weights' shapes, its parameter count.

A NeMo 2 checkpoint is a folder with `context/` (model.yaml, io.json, the tokenizer) and `weights/`
(Megatron's torch_dist format: per-layer weights are stored stacked along a first, layer axis).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from helpers.errors import refuse

COMPONENTS = ("embeddings", "attention", "mlp", "norms", "output layer")


def is_hf_checkpoint(path: Path) -> bool:
    """A Hugging Face model folder: config, weights and tokenizer."""
    weights = list(path.glob("*.safetensors")) or list(path.glob("pytorch_model*.bin"))
    return (path / "config.json").is_file() and bool(weights) and (path / "tokenizer_config.json").is_file()


def is_nemo_checkpoint(path: Path) -> bool:
    return (path / "context" / "model.yaml").is_file() and (path / "weights" / "metadata.json").is_file()


def require_nemo_checkpoint(path: Path, setting: str) -> Path:
    """`path` if it is a NeMo 2 checkpoint, else a SettingError naming `setting`."""
    if not path.exists():
        raise refuse(setting, f"{path} does not exist", "give the folder of a NeMo 2 checkpoint (it holds context/ and weights/)")
    if not is_nemo_checkpoint(path):
        raise refuse(
            setting,
            f"{path} is not a NeMo 2 checkpoint (context/model.yaml or weights/metadata.json is missing)",
            "give the folder that llm.import_ckpt, helpers.prune or helpers.distill wrote",
        )
    return path


def model_config(path: Path) -> dict:
    """The model config saved in the checkpoint's context/model.yaml."""
    return yaml.safe_load((path / "context" / "model.yaml").read_text())["config"]


def tokenizer_dir(path: Path) -> Path:
    """The Hugging Face tokenizer files every NeMo checkpoint made from a Hugging Face model carries."""
    return path / "context" / "nemo_tokenizer"


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shape of every model weight in the checkpoint, read from the torch_dist metadata."""
    from torch.distributed.checkpoint import FileSystemReader

    metadata = FileSystemReader(str(path / "weights")).read_metadata()
    return {
        key.removeprefix("module."): tuple(item.size)
        for key, item in metadata.state_dict_metadata.items()
        if key.startswith("module.") and hasattr(item, "size") and not key.endswith("_extra_state")
    }


@dataclass(frozen=True)
class Architecture:
    """The sizes that pruning changes, as the weights (not the config) have them."""

    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_attention_heads: int
    num_query_groups: int
    head_dim: int
    vocab_size: int

    def as_dict(self) -> dict:
        return asdict(self)


def architecture(path: Path) -> Architecture:
    """Layers, widths and heads measured on the stored weights."""
    shapes = weight_shapes(path)
    head_dim = model_config(path)["kv_channels"]
    vocab_size, hidden = shapes["embedding.word_embeddings.weight"]
    num_layers, _, ffn = shapes["decoder.layers.mlp.linear_fc2.weight"]
    _, _, attention_width = shapes["decoder.layers.self_attention.linear_proj.weight"]
    _, qkv_rows, _ = shapes["decoder.layers.self_attention.linear_qkv.weight"]
    heads = attention_width // head_dim
    return Architecture(
        num_layers=num_layers,
        hidden_size=hidden,
        ffn_hidden_size=ffn,
        num_attention_heads=heads,
        num_query_groups=(qkv_rows - attention_width) // (2 * head_dim),
        head_dim=head_dim,
        vocab_size=vocab_size,
    )


def component(weight_name: str) -> str:
    """Which part of the model a weight belongs to (works for the local and the TE layer specs)."""
    if "layernorm" in weight_name or "layer_norm" in weight_name:
        return "norms"
    if weight_name.startswith("embedding."):
        return "embeddings"
    if weight_name.startswith("output_layer."):
        return "output layer"
    if ".self_attention." in weight_name:
        return "attention"
    if ".mlp." in weight_name:
        return "mlp"
    raise ValueError(f"unknown weight {weight_name}")


def parameter_counts(path: Path) -> dict[str, int]:
    """Parameters per component, summed over the stored weights, plus `total` and `non-embedding`."""
    counts = dict.fromkeys(COMPONENTS, 0)
    for name, shape in weight_shapes(path).items():
        numel = 1
        for size in shape:
            numel *= size
        counts[component(name)] += numel
    counts["total"] = sum(counts[c] for c in COMPONENTS)
    counts["non-embedding"] = counts["total"] - counts["embeddings"] - counts["output layer"]
    return counts
