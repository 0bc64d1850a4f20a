"""ModelOpt 0.35.1 (NeMo 2's stack) fake-quantizes FP8 only through its CUDA extension: without CUDA, FP8 is refused
with the reason before any model loads, and the series can skip it."""

import pytest
import torch

from helpers.quantize import cli
from helpers.quantize.recipe import constant_kv_amax_supported, default_kv_cache_qformat, fp8_supported


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_without_cuda_fp8_is_unsupported_and_says_why():
    import modelopt

    assert modelopt.__version__ == "0.35.1"
    reason = fp8_supported()
    assert reason == "ModelOpt 0.35.1 cannot fake-quantize FP8 on the cpu: Skipping extension modelopt_cuda_ext_fp8 because CUDA is not available."


def test_the_kv_cache_default_is_that_of_this_modelopts_hf_ptq():
    assert not constant_kv_amax_supported() and default_kv_cache_qformat() == "fp8"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_the_command_refuses_fp8_and_fp8_cast_naming_the_flags(tmp_path, capsys):
    flags = ["--pyt_ckpt_path", str(tmp_path), "--export_path", str(tmp_path / "fp8"), "--data_paths", str(tmp_path / "data")]
    assert cli.main([*flags, "--kv_cache_qformat", "fp8_cast"]) == 2
    error = capsys.readouterr().err
    assert "\n--qformat: ModelOpt 0.35.1 cannot fake-quantize FP8 on the cpu" in error
    assert "\n--kv_cache_qformat: fp8_cast needs ModelOpt's use_constant_amax" in error
