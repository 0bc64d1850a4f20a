"""The tiny teacher trains in a dtype this CPU runs fast, on the exact full-vocabulary loss."""

from pathlib import Path

import pytest
import torch

from helpers.data import cpu_dtype
from helpers.data.cpu_dtype import CpuReport, choose
from helpers.data.tiny_teacher import _FullVocabularyLoss
from helpers.errors import SettingError


@pytest.mark.parametrize(
    "report, chosen",
    [
        (CpuReport("AVX2", native_bf16=False), torch.float32),  # emulated bf16: ~24x slower, never timed
        (CpuReport("AVX512", native_bf16=False), torch.float32),  # AVX-512 without its BF16 extension
        (CpuReport("AVX512", native_bf16=True, fp32_ms=228.0, bf16_ms=60.0), torch.bfloat16),  # native and faster
        (CpuReport("AVX512", native_bf16=True, fp32_ms=228.0, bf16_ms=200.0), torch.float32),  # native, not faster enough
    ],
    ids=["AVX2", "AVX512 without BF16", "AVX512-BF16, measured faster", "AVX512-BF16, measured no faster"],
)
def test_bf16_only_where_native_and_measured_faster(report, chosen):
    assert choose(report) == chosen


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    def cpuinfo(flags: str) -> Path:
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        return path

    assert not cpu_dtype.native_bf16(cpuinfo("fpu sse avx avx2 fma"))
    assert cpu_dtype.native_bf16(cpuinfo("fpu avx2 avx512f avx512_bf16"))
    assert cpu_dtype.native_bf16(cpuinfo("fpu avx2 avx512f amx_bf16 amx_tile"))
    assert not cpu_dtype.native_bf16(tmp_path / "absent")


@pytest.mark.parametrize("value, dtype", [("fp32", torch.float32), ("BF16", torch.bfloat16), (" auto ", None)])
def test_the_dtype_can_be_forced(monkeypatch, value, dtype):
    monkeypatch.setenv(cpu_dtype.OVERRIDE, value)
    assert cpu_dtype.forced() == dtype
    assert cpu_dtype.training_dtype() == (dtype or choose(cpu_dtype.report()))


def test_a_misspelt_dtype_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv(cpu_dtype.OVERRIDE, "float16")
    with pytest.raises(SettingError, match=r"(?s)TUTORIAL_CPU_DTYPE: 'float16' is not .*fix: set it to one of fp32, bf16 or auto"):
        cpu_dtype.training_dtype()


def test_this_machine_gets_fp32_unless_its_bf16_is_native():
    report = cpu_dtype.report()
    assert report.capability == torch.backends.cpu.get_cpu_capability()
    if not report.native_bf16:
        assert choose(report) == torch.float32


class _Logits(torch.nn.Module):
    """A 'model' whose logits for token t are the learnable row t."""

    def __init__(self, vocab: int):
        super().__init__()
        self.rows = torch.nn.Parameter(torch.randn(vocab, vocab) * 3)

    def forward(self, input_ids):
        return type("Output", (), {"logits": self.rows[input_ids]})


def test_compact_loss_equals_cross_entropy_over_the_full_vocabulary():
    compact, unused = 50, 1000
    model, windows = _Logits(compact + 1), torch.randint(0, compact, (4, 17))  # the last output: the unused ids' row
    loss = _FullVocabularyLoss(unused)(model, windows)
    logits = model.rows[windows[:, :-1]]
    full_logits = torch.cat([logits[..., :-1], logits[..., -1:].expand(4, 16, unused)], -1)  # every unused id shares it
    expected = torch.nn.functional.cross_entropy(full_logits.flatten(0, 1), windows[:, 1:].flatten())
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert model.rows.grad[:, -1].abs().sum() > 0  # the shared row is trained: its logits pushed down
