"""Architectures of the profiles' teachers, as their Hugging Face configs give them."""

from helpers.models.architecture import Architecture

TEACHERS = {
    "tiny": Architecture(num_layers=6, hidden_size=256, ffn_hidden_size=768, num_attention_heads=4, num_query_groups=2, head_dim=128, vocab_size=151936),
    "smollm2-135m": Architecture(num_layers=30, hidden_size=576, ffn_hidden_size=1536, num_attention_heads=9, num_query_groups=3, head_dim=64, vocab_size=49152),
    "qwen3-1.7b": Architecture(num_layers=28, hidden_size=2048, ffn_hidden_size=6144, num_attention_heads=16, num_query_groups=8, head_dim=128, vocab_size=151936),
    "qwen3-8b": Architecture(num_layers=36, hidden_size=4096, ffn_hidden_size=12288, num_attention_heads=32, num_query_groups=8, head_dim=128, vocab_size=151936),
}
