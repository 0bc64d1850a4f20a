"""The tiny profile's teacher: a small Qwen3 trained on the offline corpus at build time.

Pruning ranks what a model has learned and distillation transfers it, so the teacher must have
learned something: a short CPU run brings its held-out loss well below the uniform ln(vocab).

The run trains on the corpus vocabulary only (the ~29k of Qwen3's 151,936 ids the corpus uses),
which makes it five times cheaper, yet it optimises the exact full-vocabulary loss. The other ids
never occur, so full-vocabulary training treats them all alike: started from one output row, they
keep one row, which every step pushes down through the softmax normaliser. The compact model
trains that shared row as one extra output, counted once per unused id in the normaliser, and the
full model gives it to every unused id. (Held at zero instead, the ~122k unused ids keep a third
of the probability mass until the other logits grow past them: after 100 steps the teacher was
still worse than a unigram model, 8.48 against 7.66 nats on held-out text, and removing two of its
layers lowered its loss.) The trained weights are then written into a standard full-vocabulary
`Qwen3ForCausalLM` (in fp32).
Matrix products run in bf16 only where the CPU computes it natively and measurably faster
(`cpu_dtype`), else in fp32. The learning rate warms up, stays, then decays linearly over the last
30% of the steps: in a short CPU run this schedule teaches the layers beyond the first one the most
(dropping two of them costs ~0.15 nats instead of ~0.04).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from helpers.data import cpu_dtype
from helpers.data.build_cache import file_sha256
from helpers.models.architecture import Architecture
from helpers.profiles import TinyQwen3
from helpers.workspace import SPLITS

QWEN3_VOCAB_SIZE = 151936  # Qwen3's embedding rows: the tokenizer's 151,669 ids, padded
EVAL_WINDOWS = 16


def _qwen3_config(spec: TinyQwen3, vocab_size: int):
    """A Qwen3 of the spec's sizes (its fields named as `Architecture`'s) with `vocab_size` embedding rows."""
    from transformers import Qwen3Config

    sizes = {field.name: getattr(spec, field.name) for field in fields(Architecture) if field.name != "vocab_size"}
    return Qwen3Config(
        **Architecture(**sizes, vocab_size=vocab_size).hf_config(),
        max_position_embeddings=40960,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151645,
        torch_dtype="float32",
    )


def _token_ids(tokenizer, text_file: Path) -> np.ndarray:
    lines = text_file.read_text(encoding="utf-8").splitlines(keepends=True)
    return np.concatenate([np.asarray(ids, dtype=np.int64) for ids in tokenizer(lines)["input_ids"] if ids])


def _windows(ids: np.ndarray, starts, length: int):
    import torch

    return torch.stack([torch.from_numpy(ids[s : s + length + 1]) for s in starts])


class _FullVocabularyLoss:
    """Cross-entropy over Qwen3's whole vocabulary for a model that scores the corpus vocabulary plus one last output,
    the logit every `unused` id shares: the full normaliser is logaddexp(lse of the corpus ids, shared + log(unused))."""

    def __init__(self, unused_ids: int):
        self.log_unused = math.log(unused_ids)

    def __call__(self, model, windows):
        import torch

        logits = model(input_ids=windows[:, :-1]).logits.float()
        targets = windows[:, 1:].unsqueeze(-1)
        normaliser = torch.logaddexp(torch.logsumexp(logits[..., :-1], -1), logits[..., -1] + self.log_unused)
        return (normaliser - logits.gather(-1, targets).squeeze(-1)).mean()


def recipe(spec: TinyQwen3, tokenizer_dir: Path, corpus_dir: Path) -> dict:
    """Everything the trained teacher depends on: the build cache (`build_cache`) names its entry by this."""
    import torch
    import transformers

    return {
        "spec": asdict(spec),
        "corpus": {split: file_sha256(corpus_dir / f"{split}.txt") for split in SPLITS},
        "tokenizer": {path.name: file_sha256(path) for path in sorted(tokenizer_dir.iterdir()) if path.is_file()},
        "code": file_sha256(Path(__file__)),
        "libraries": {"torch": torch.__version__, "transformers": transformers.__version__},
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "dtype": str(cpu_dtype.training_dtype()),
    }


def build_tiny_teacher(spec: TinyQwen3, tokenizer_dir: Path, corpus_dir: Path, out_dir: Path) -> dict:
    """Train the tiny Qwen3 on `corpus_dir` and save it, with its tokenizer, as a Hugging Face checkpoint."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, GenerationConfig, Qwen3ForCausalLM

    torch.manual_seed(spec.seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    corpus = {split: _token_ids(tokenizer, corpus_dir / f"{split}.txt") for split in SPLITS}
    used = np.unique(np.concatenate(list(corpus.values())))
    compact_id = np.zeros(QWEN3_VOCAB_SIZE, dtype=np.int64)
    compact_id[used] = np.arange(len(used))
    train, held_out = compact_id[corpus["train"]], compact_id[corpus["validation"]]

    model = Qwen3ForCausalLM(_qwen3_config(spec, vocab_size=len(used) + 1))  # the last output: the unused ids' shared row
    loss_fn = _FullVocabularyLoss(QWEN3_VOCAB_SIZE - len(used))
    length = spec.train_seq_length
    eval_batch = _windows(held_out, range(0, EVAL_WINDOWS * length, length), length)

    def held_out_loss() -> float:
        model.eval()
        with torch.no_grad():
            loss = loss_fn(model, eval_batch).item()
        model.train()
        return loss

    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.train_lr, betas=(0.9, 0.95), weight_decay=0.0, fused=True)
    warmup, decay = max(1, spec.train_steps // 12), 0.3 * spec.train_steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup, (spec.train_steps - s) / decay)
    )
    generator = torch.Generator().manual_seed(spec.seed)
    dtype = cpu_dtype.training_dtype()
    initial, started = held_out_loss(), time.time()
    progress = tqdm(range(spec.train_steps), desc="training the tiny teacher", unit="step")
    for _ in progress:
        starts = torch.randint(0, len(train) - length - 1, (spec.train_batch_size,), generator=generator)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            loss = loss_fn(model, _windows(train, starts.tolist(), length))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        progress.set_postfix(loss=f"{loss.item():.3f}")
    final = held_out_loss()

    full = _full_vocabulary_model(model, used, spec)
    check = _check_expansion(full, held_out=corpus["validation"], length=length, expected=final)
    full.save_pretrained(out_dir, safe_serialization=True)
    GenerationConfig(bos_token_id=151643, eos_token_id=151645, do_sample=False).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    report = {
        "steps": spec.train_steps,
        "tokens_seen": spec.train_steps * spec.train_batch_size * length,
        "seconds": round(time.time() - started, 1),
        "dtype": str(dtype).removeprefix("torch."),
        "cpu": str(cpu_dtype.report()),
        "corpus_vocabulary": int(len(used)),
        "uniform_loss": math.log(QWEN3_VOCAB_SIZE),
        "held_out_loss_before": initial,
        "held_out_loss_after": final,
        "held_out_loss_full_model": check,
    }
    (out_dir / "tiny_training.json").write_text(json.dumps(report, indent=2))
    return report


def _full_vocabulary_model(compact, used: np.ndarray, spec: TinyQwen3):
    """The compact model's weights in a Qwen3ForCausalLM with Qwen3's full vocabulary: every unused id gets the shared
    output row (and keeps its random input embedding: it never occurs)."""
    import torch
    from transformers import Qwen3ForCausalLM

    full = Qwen3ForCausalLM(_qwen3_config(spec, vocab_size=QWEN3_VOCAB_SIZE))
    state = full.state_dict()
    rows = torch.from_numpy(used)
    for name, tensor in compact.state_dict().items():
        if name == "model.embed_tokens.weight":
            state[name][rows] = tensor[:-1]  # the shared row's input embedding is never read
        elif name == "lm_head.weight":
            state[name][:] = tensor[-1]
            state[name][rows] = tensor[:-1]
        else:
            state[name] = tensor
    full.load_state_dict(state)
    return full


def _check_expansion(full, held_out: np.ndarray, length: int, expected: float) -> float:
    """The full model must score the held-out windows exactly as the compact model did."""
    import torch

    windows = _windows(held_out, range(0, EVAL_WINDOWS * length, length), length)
    full.eval()
    with torch.no_grad():
        logits = full(input_ids=windows[:, :-1]).logits.float()
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten()).item()
    if abs(loss - expected) > 1e-3:
        raise AssertionError(f"expanded teacher scores {loss:.5f}, the trained one {expected:.5f}")
    return loss
