"""Reading models: checkpoints on disk (NeMo 2, Hugging Face), their architecture and parameter counts.

    checkpoints.py  what a checkpoint is, its architecture in Megatron's terms, its parameters counted
    hf_model.py     loading a Hugging Face checkpoint for evaluation, and freeing it
"""
