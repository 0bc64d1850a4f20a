"""Read a checkpoint without loading it: its config, its weights' shapes, its parameter count.

Both routes' checkpoints are read in Megatron-Core's terms. A NeMo 2 checkpoint is a folder with `context/`
(model.yaml, io.json, the tokenizer) and `weights/` (Megatron's torch_dist format: per-layer weights are stored
stacked along a first, layer axis). A Hugging Face checkpoint (the Megatron-Bridge route's) has config.json and
safetensors files; its weights are named and stacked here as Megatron-Core names and stacks them.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from helpers.errors import refuse
from helpers.models.architecture import COMPONENTS, Architecture, with_totals


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
    """The model config: context/model.yaml's (NeMo 2), or config.json's in Megatron-Core's names (Hugging Face)."""
    if is_hf_checkpoint(path):
        return Architecture.from_hf_config(json.loads((path / "config.json").read_text())).megatron_config()
    return yaml.safe_load((path / "context" / "model.yaml").read_text())["config"]


def config_file(path: Path) -> str:
    """Where `model_config` read the config from."""
    return "config.json" if is_hf_checkpoint(path) else "context/model.yaml"


def tokenizer_dir(path: Path) -> Path:
    """The Hugging Face tokenizer files: in the checkpoint's folder (Hugging Face), or its context (NeMo 2)."""
    return path if is_hf_checkpoint(path) else path / "context" / "nemo_tokenizer"


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shape of every model weight in the checkpoint (Megatron-Core's names, layers stacked on a first axis)."""
    if is_hf_checkpoint(path):
        return _hf_weight_shapes(path)
    from torch.distributed.checkpoint import FileSystemReader

    metadata = FileSystemReader(str(path / "weights")).read_metadata()
    return {
        key.removeprefix("module."): tuple(item.size)
        for key, item in metadata.state_dict_metadata.items()
        if key.startswith("module.") and hasattr(item, "size") and not key.endswith("_extra_state")
    }


# Hugging Face's weights of a Llama-family model (Qwen3, SmolLM2), by the Megatron-Core weight they make up: the
# query, key and value projections are one fused `linear_qkv`, the gate and up projections one `linear_fc1`.
_HF_WEIGHTS = {
    "model.embed_tokens.weight": "embedding.word_embeddings.weight",
    "model.norm.weight": "decoder.final_layernorm.weight",
    "lm_head.weight": "output_layer.weight",
    "input_layernorm.weight": "decoder.layers.self_attention.linear_qkv.layer_norm_weight",
    "self_attn.q_proj.weight": "decoder.layers.self_attention.linear_qkv.weight",
    "self_attn.k_proj.weight": "decoder.layers.self_attention.linear_qkv.weight",
    "self_attn.v_proj.weight": "decoder.layers.self_attention.linear_qkv.weight",
    "self_attn.q_norm.weight": "decoder.layers.self_attention.q_layernorm.weight",
    "self_attn.k_norm.weight": "decoder.layers.self_attention.k_layernorm.weight",
    "self_attn.o_proj.weight": "decoder.layers.self_attention.linear_proj.weight",
    "post_attention_layernorm.weight": "decoder.layers.mlp.linear_fc1.layer_norm_weight",
    "mlp.gate_proj.weight": "decoder.layers.mlp.linear_fc1.weight",
    "mlp.up_proj.weight": "decoder.layers.mlp.linear_fc1.weight",
    "mlp.down_proj.weight": "decoder.layers.mlp.linear_fc2.weight",
}


def _safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Every tensor's shape in the folder's safetensors files, read from their headers (no weights loaded)."""
    shapes = {}
    for file in sorted(path.glob("*.safetensors")):
        with file.open("rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        shapes |= {name: item["shape"] for name, item in header.items() if name != "__metadata__"}
    return shapes


def _hf_weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    layers: dict[str, dict[int, list[int]]] = {}
    shapes = {}
    for name, shape in _safetensors_shapes(path).items():
        if name.startswith("model.layers."):
            index, rest = name.removeprefix("model.layers.").split(".", 1)
            megatron = _HF_WEIGHTS[rest]
            fused = layers.setdefault(megatron, {})
            if int(index) in fused:  # a second part of a fused weight: rows add up
                fused[int(index)] = [fused[int(index)][0] + shape[0], *shape[1:]]
            else:
                fused[int(index)] = list(shape)
        else:
            shapes[_HF_WEIGHTS[name]] = tuple(shape)
    for megatron, per_layer in layers.items():
        first = per_layer[min(per_layer)]
        if any(shape != first for shape in per_layer.values()):
            raise ValueError(f"{path}: the layers' {megatron} differ in shape; a per-layer (heterogeneous) model is not supported")
        shapes[megatron] = (len(per_layer), *first)
    return shapes


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
    return with_totals(counts)
