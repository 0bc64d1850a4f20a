"""Hugging Face <-> NeMo 2 conversion, each followed by the logits check (notebooks 01, 02 and 04).

    python -m helpers.conversion import|export ...   the entry point (`cli`)
    steps.py     inspecting a Hugging Face checkpoint, `llm.import_ckpt` / `llm.export_ckpt`, the commands
    logits.py    the check: both copies of a model must give the same next-token logits
"""

from helpers.conversion.logits import LogitsCheck, compare_logits, judge
from helpers.conversion.steps import Job, command, convert, export, export_job, import_to_nemo, inspect_hf_checkpoint

__all__ = ["Job", "LogitsCheck", "command", "compare_logits", "convert", "export", "export_job", "import_to_nemo", "inspect_hf_checkpoint", "judge"]
