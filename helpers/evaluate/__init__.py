"""Measuring Hugging Face checkpoints on the same tokens: next-token losses as a command (`losses`), perplexity, KL
divergence from the teacher and generation (`perplexity`), speed in interleaved rounds (`speed`), MMLU (`mmlu`), vLLM
throughput (`throughput`), and the comparison of every model of the series (`comparison`)."""
