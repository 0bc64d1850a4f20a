"""Notebook 04's measurements: perplexity and generation, speed in interleaved rounds, MMLU, and the comparison table."""
