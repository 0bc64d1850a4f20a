"""A model's shape in our terms (Megatron-Core's): its sizes, their names in a Hugging Face config, its parameters
counted per component, and its weights' bytes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

COMPONENTS = ("embeddings", "attention", "mlp", "norms", "output layer")
QUANTIZED = ("attention", "mlp")  # the components whose linear layers notebook 04's FP8 recipe quantizes
# Each size's key in a Hugging Face config.json of a Llama-family model (Qwen3, SmolLM2), and its name in Megatron-Core's
# model config (a NeMo 2 checkpoint's context/model.yaml), by the field of `Architecture` it is.
HF_NAMES = {
    "num_layers": "num_hidden_layers",
    "hidden_size": "hidden_size",
    "ffn_hidden_size": "intermediate_size",
    "num_attention_heads": "num_attention_heads",
    "num_query_groups": "num_key_value_heads",
    "head_dim": "head_dim",
    "vocab_size": "vocab_size",
}
MEGATRON_NAMES = {field: field for field in HF_NAMES} | {"head_dim": "kv_channels"}


@dataclass(frozen=True)
class Architecture:
    """The sizes that pruning changes."""

    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_attention_heads: int
    num_query_groups: int
    head_dim: int
    vocab_size: int

    @classmethod
    def from_hf_config(cls, config: dict) -> Architecture:
        """The sizes a Hugging Face config declares (without a head_dim, the hidden size over the heads)."""
        sizes = {field: config[key] for field, key in HF_NAMES.items() if field != "head_dim"}
        return cls(**sizes, head_dim=config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])

    def hf_config(self) -> dict:
        """The sizes as a Hugging Face config's entries."""
        return {key: getattr(self, field) for field, key in HF_NAMES.items()}

    def megatron_config(self) -> dict:
        """The sizes as Megatron-Core's model config fields."""
        return {name: getattr(self, field) for field, name in MEGATRON_NAMES.items()}

    def as_dict(self) -> dict:
        return asdict(self)

    def parameter_counts(self, tied_embeddings: bool) -> dict[str, int]:
        """Parameters per component of a Qwen3 of these sizes (gated MLP, RMSNorms, q/k norms), as
        `checkpoints.parameter_counts` sums a checkpoint's (a Llama, without q/k norms, has 2 x head_dim x layers fewer)."""
        h, d, layers = self.hidden_size, self.head_dim, self.num_layers
        attention = h * (self.num_attention_heads + 2 * self.num_query_groups) * d + self.num_attention_heads * d * h
        return with_totals({
            "embeddings": self.vocab_size * h,
            "attention": layers * attention,
            "mlp": layers * 3 * h * self.ffn_hidden_size,
            "norms": layers * (2 * h + 2 * d) + h,
            "output layer": 0 if tied_embeddings else self.vocab_size * h,
        })  # fmt: skip


def with_totals(counts: dict[str, int]) -> dict[str, int]:
    """Parameters per component (COMPONENTS), plus their `total` and the `non-embedding` part of it."""
    total = sum(counts[c] for c in COMPONENTS)
    return counts | {"total": total, "non-embedding": total - counts["embeddings"] - counts["output layer"]}


def weight_bytes(counts: dict[str, int], fp8: bool, unquantized_bytes: int = 2) -> int:
    """Bytes of a checkpoint's weights from its parameter counts per component: `unquantized_bytes` per parameter
    (2 in bf16), and one per FP8 parameter (the linear layers of QUANTIZED; a scale or two per layer besides)."""
    quantized = sum(counts[component] for component in QUANTIZED) if fp8 else 0
    return unquantized_bytes * (counts["total"] - quantized) + quantized
