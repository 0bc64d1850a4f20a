"""Hugging Face <-> Megatron-Core, each followed by the logits check (notebooks 01, 02 and 04).

    python -m helpers.conversion import|export ...   NeMo 2's route (`cli`): `llm.import_ckpt` / `llm.export_ckpt`
    python -m helpers.conversion.bridge ...          Megatron-Bridge's route: the model AutoBridge builds, checked
    steps.py     inspecting a Hugging Face checkpoint, NeMo 2's conversions, the commands, `import_teacher` (both routes)
    bridge.py    loading a Hugging Face checkpoint into Megatron-Core with AutoBridge, and its check
    logits.py    the check: both copies of a model must give the same next-token logits
"""

from helpers.conversion.logits import LogitsCheck, compare_logits, judge
from helpers.conversion.steps import Job, command, convert, export, export_job, import_teacher, import_to_nemo, inspect_hf_checkpoint

__all__ = [
    "Job", "LogitsCheck", "command", "compare_logits", "convert", "export", "export_job", "import_teacher", "import_to_nemo",
    "inspect_hf_checkpoint", "judge",
]  # fmt: skip
