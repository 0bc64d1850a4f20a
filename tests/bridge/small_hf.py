"""A small random Qwen3 as a Hugging Face checkpoint, with a word tokenizer and tokenized data, for the Megatron-Bridge
route's tests: wide enough (hidden 128, MLP 256) to prune on ModelOpt's grid of 64."""

from pathlib import Path

from tests.unit.small_qwen3 import VOCABULARY, random_documents, word_tokenizer


def small_hf_qwen3(root: Path, layers: int = 4) -> Path:
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(layers)
    config = Qwen3Config(vocab_size=VOCABULARY, hidden_size=128, intermediate_size=256, num_hidden_layers=layers, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=128, tie_word_embeddings=False)  # fmt: skip
    path = root / f"qwen3-{layers}-layers"
    model = Qwen3ForCausalLM(config)
    with torch.no_grad():  # norms other than 1.0, as a trained model's: an import that drops them shows
        for name, weight in model.named_parameters():
            if "norm" in name:
                weight.uniform_(0.5, 1.5)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(word_tokenizer(root / "tokenizer")).save_pretrained(path)
    return path


def data_prefix(root: Path) -> Path:
    prefix = root / "data" / "train_text_document"
    random_documents(prefix)
    return prefix


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return {name: tensor for file in sorted(path.glob("*.safetensors")) for name, tensor in load_file(file).items()}
