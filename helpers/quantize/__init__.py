"""FP8 post-training quantization of the series' Hugging Face checkpoints with ModelOpt, and a reload that keeps the
scales (`python -m helpers.quantize`)."""
