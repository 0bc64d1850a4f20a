"""A killed distillation run resumes from its last complete checkpoint.

Real `torchrun -m helpers.distill` runs of two small Qwen3s imported into NeMo: what is checked is the
resumption, not the learning, so this needs nothing from the notebooks and runs beside them.
"""

import subprocess
import time

import numpy as np
import psutil
import pytest

from helpers import distill, events
from helpers.distill import runs
from helpers.launch import child_env, python_module, run, torchrun
from helpers.profiles import get_profile
from helpers.workspace import Workspace

VOCABULARY = 512


def word_tokenizer(path):
    """A Hugging Face tokenizer of VOCABULARY words ("w0" ... ), the first one marking the end of a text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = models.WordLevel({f"w{i}": i for i in range(VOCABULARY)}, unk_token="w1")
    tokenizer = Tokenizer(words)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="w0", unk_token="w1").save_pretrained(path)
    return path


def small_qwen3(path, tokenizer, layers: int):
    """A small Qwen3 (head_dim 128, as NeMo's importer expects) with random weights, and its tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(layers)
    config = Qwen3Config(vocab_size=VOCABULARY, hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=2,
                         num_key_value_heads=1, head_dim=128, tie_word_embeddings=False)  # fmt: skip
    Qwen3ForCausalLM(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(tokenizer).save_pretrained(path)
    return path


def random_documents(prefix, documents: int = 200, length: int = 100):
    """A tokenized dataset (.bin/.idx) of random word ids: enough documents for a 1% validation split."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix.parent.mkdir(parents=True, exist_ok=True)
    builder = IndexedDatasetBuilder(str(prefix.with_suffix(".bin")), dtype=np.int32)
    for document in np.random.default_rng(0).integers(1, VOCABULARY, size=(documents, length)):
        builder.add_document(document.tolist(), [length])
    builder.finalize(str(prefix.with_suffix(".idx")))


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    """A work directory holding a 2-layer teacher and a 1-layer 'depth-pruned' student in NeMo, and data."""
    root = tmp_path_factory.mktemp("resume")
    ws = Workspace(root=root, model_name="Qwen3-small")
    tokenizer = word_tokenizer(root / "tokenizer")
    imports = []
    for layers, output in ((2, ws.teacher), (1, ws.pruned("depth"))):
        source = small_qwen3(root / "hf" / output.name, tokenizer, layers)
        imports += ["--source", source, "--output", output, "--report", root / "reports" / f"{output.name}.json"]
    run(python_module("helpers.conversion", "import", *imports), root / "import.log")
    random_documents(ws.data_prefix("train"))
    return ws


def first_step(event_file) -> int:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(event_file))
    accumulator.Reload()
    return min(e.step + 1 for e in accumulator.Scalars("reduced_train_loss"))


def test_a_killed_run_resumes_from_its_last_checkpoint(ws, tmp_path):
    profile = get_profile("tiny")
    settings = {"--log_dir": str(tmp_path / "runs"), "--max_steps": "4", "--val_check_interval": "2", "--warmup_steps": "2", "--log_interval": "1",
                "--gbs": "48", "--mbs": "1", "--limit_val_batches": "1"}  # fmt: skip  (24 micro-batches: a step lasts seconds)
    flags = distill.flags(profile, ws, "depth")
    for flag, value in settings.items():
        flags[flags.index(flag) + 1] = value
    command = torchrun(profile.distill.devices, "helpers.distill", *flags)
    run_dir = tmp_path / "runs" / distill.run_name(ws, "depth")

    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True)
        deadline = time.monotonic() + 600
        while not any(c.step >= 2 and not c.last for c in runs.checkpoints(run_dir)):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.2)
        launcher = psutil.Process(first.pid)
        for process in [launcher, *launcher.children(recursive=True)]:
            process.kill()  # torchrun and its workers, as a lost machine: no clean-up at all
        first.wait()
    for checkpoint in runs.checkpoints(run_dir):
        if checkpoint.last:  # as if the kill had cut its save short (NeMo's marker stays): the harder resumption
            checkpoint.path.with_name(checkpoint.path.name + "-unfinished").touch()
    assert not any(c.last for c in runs.checkpoints(run_dir))  # NeMo's own resumption has nothing to find
    interrupted = runs.state(run_dir, 4)
    assert interrupted.status == "partial" and 2 <= interrupted.step < 4

    run(command, tmp_path / "second.log")
    assert f"interrupted at step {interrupted.step} of 4" in (tmp_path / "second.log").read_text()
    assert runs.state(run_dir, 4).status == "finished" and runs.best(run_dir)["step"] in (2, 4)
    launches = events.event_files(run_dir)
    assert len(launches) == 2 and first_step(launches[-1]) == interrupted.step + 1  # continued, not restarted
    train = events.series(run_dir, "reduced_train_loss")
    assert list(train.index) == [1, 2, 3, 4]  # each step once
    assert list(events.series(run_dir, "val_loss").index) == [0, 2, 4]
