"""The default job's riskiest path on every change: the real model from its GGUF file into NeMo, faithfully.

`make run` compresses SmolLM2-135M (a Llama) on CPU; the tiny series under nbval exercises Qwen3. This
checks what differs: the GGUF source, the Llama importer with the CPU rehearsal's Llama workarounds,
and that NeMo scores real text as Hugging Face does.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import conversion
from helpers.data import sources
from helpers.evaluate import perplexity
from helpers.models import hf_model
from helpers.profiles import PROFILES
from helpers.workspace import Workspace, workspace_root

PROFILE = PROFILES["smollm2-135m"]
WINDOWS, LENGTH = 4, 256

# The NeMo checkpoint's next-token loss on the windows, in a process of its own (NeMo initialises distributed state).
NEMO_LOSS = r"""
import sys, numpy as np, torch
from helpers.conversion import nemo_model
windows = torch.from_numpy(np.load(sys.argv[2]))
with nemo_model.loaded(sys.argv[1]) as module:
    print(sum(nemo_model.next_token_loss(nemo_model.logits(module, w[None]), w[None]) for w in windows) / len(windows))
"""


@pytest.fixture(scope="module")
def ws():
    return Workspace(workspace_root(os.environ["TUTORIAL_WORKDIR"], PROFILE.name, "nemo2"), PROFILE.model.name)


@pytest.fixture(scope="module")
def teacher(ws):
    """SmolLM2-135M as a Hugging Face checkpoint, then imported into NeMo 2 with the logits check."""
    hf = sources.prepare_teacher(PROFILE, ws)
    check = conversion.convert("import", {"teacher": conversion.Job(hf, ws.teacher, ws.results / "import-logits.json")}, log=ws.logs / "import.log")["teacher"]
    return hf, check


def test_the_teacher_is_the_real_llama_from_the_package(teacher):
    hf, _ = teacher
    config = json.loads((hf / "config.json").read_text())
    assert (config["model_type"], config["num_hidden_layers"], config["hidden_size"], config["tie_word_embeddings"]) == ("llama", 30, 576, True)


def test_import_gives_the_hugging_face_logits(teacher):
    _, check = teacher
    assert check.passed and check.dtype == "float32" and check.max_abs_diff < 1e-3 and check.top1_agreement == 1.0, check


def test_nemo_and_hugging_face_give_a_real_models_perplexity(teacher, ws, tmp_path):
    from transformers import AutoTokenizer

    hf, _ = teacher
    text = (sources.corpus_dir(ws) / "test.txt").read_text(encoding="utf-8")
    ids = AutoTokenizer.from_pretrained(hf)(text, add_special_tokens=False)["input_ids"]
    windows = np.asarray(ids[: WINDOWS * LENGTH], dtype=np.int64).reshape(WINDOWS, LENGTH)
    np.save(tmp_path / "windows.npy", windows)
    nemo = subprocess.Popen([sys.executable, "-c", NEMO_LOSS, str(ws.teacher), str(tmp_path / "windows.npy")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with hf_model.loaded(hf) as model:  # while NeMo starts up in its process
        hf_ppl = math.exp(perplexity.test_loss(model, windows, batch_size=2))
    stdout, stderr = nemo.communicate(timeout=900)
    assert nemo.returncode == 0, stderr[-3000:]
    nemo_ppl = math.exp(float(stdout.strip().splitlines()[-1]))
    assert 10 < hf_ppl < 60, hf_ppl  # a trained model on Wikipedia prose (uniform guessing: 49,152)
    assert abs(nemo_ppl - hf_ppl) / hf_ppl < 0.01, (hf_ppl, nemo_ppl)
