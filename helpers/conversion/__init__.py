"""Hugging Face <-> Megatron-Core, each followed by the logits check (notebooks 01, 02 and 04).

    python -m helpers.conversion import|export ...   NeMo 2's route (`cli`): `llm.import_ckpt` / `llm.export_ckpt`
    python -m helpers.conversion.bridge ...          Megatron-Bridge's route: the model AutoBridge builds, checked
    jobs.py      what both routes start from: a Hugging Face checkpoint, checked; a job and its reports
    steps.py     NeMo 2's conversions (`llm.import_ckpt`, `llm.export_ckpt`) and the command that runs them
    bridge.py    loading a Hugging Face checkpoint into Megatron-Core with AutoBridge, and its check
    nemo_model.py  loading a NeMo 2 checkpoint to run it forward, for the check
    logits.py    the check: both copies of a model must give the same next-token logits
"""

from importlib import import_module

from helpers.conversion.jobs import Job, export_job, inspect_hf_checkpoint
from helpers.conversion.logits import LogitsCheck, compare_logits, judge
from helpers.conversion.steps import command, convert, export, import_to_nemo

_ROUTE_STEPS = {"nemo2": "steps", "bridge": "bridge"}


def import_teacher(ws, overwrite: bool = False) -> LogitsCheck:
    """Bring the teacher into Megatron-Core and prove it faithful by logits, on the workspace's route.

    NeMo 2 imports it into a NeMo 2 checkpoint (`llm.import_ckpt`) and compares that with Hugging Face's. The
    Megatron-Bridge route converts nothing to disk: every step builds the model from the Hugging Face checkpoint
    with AutoBridge, and the check runs on what AutoBridge builds (`helpers.conversion.bridge`).
    """
    job = Job(source=ws.hf_teacher, output=ws.teacher, report=ws.results / "import-logits.json")
    route_steps = import_module(f"{__name__}.{_ROUTE_STEPS[ws.route]}")
    return route_steps.convert("import", {"teacher": job}, log=ws.logs / "01-import.log", overwrite=overwrite)["teacher"]


__all__ = [
    "Job", "LogitsCheck", "command", "compare_logits", "convert", "export", "export_job", "import_teacher", "import_to_nemo",
    "inspect_hf_checkpoint", "judge",
]  # fmt: skip
