"""Reading models: checkpoints on disk (NeMo 2, Hugging Face), their architecture and parameter counts.

    architecture.py a model's sizes in Megatron's terms and in a Hugging Face config's, its parameters and bytes
    checkpoints.py  what a checkpoint is, its architecture and parameters measured on its weights
    hf_model.py     loading a Hugging Face checkpoint for evaluation, and freeing it
"""
