"""Notebook 01's sources and data: the teacher (Hub, GGUF package, or the tiny Qwen3 built offline), the corpus,
and its tokenization into Megatron's indexed .bin/.idx format (`indexed`)."""
