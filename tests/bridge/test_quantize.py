"""FP8 post-training quantization on the Megatron-Bridge route's stack (ModelOpt 0.43 fake-quantizes FP8 on CPU): the
unified Hugging Face export holds FP8 weights and its quantization config, reloads with its scales to the
fake-quantized model's logits, is wrong when loaded plainly, and every bad setting is refused before a model loads."""

import json
import subprocess
import sys

import pytest
import torch
from small_hf import data_prefix, small_hf_qwen3, tensors

from helpers.conversion.logits import judge
from helpers.data.indexed import token_windows
from helpers.quantize import cli, ptq
from helpers.quantize.recipe import FP8_MAX, default_kv_cache_qformat, quant_config
from helpers.quantize.reload import load_fp8, load_ignoring_scales
from helpers.run.outputs import partial_path

CALIBRATION = {"--calib_size": 16, "--calib_seq": 64, "--batch_size": 4}
QUANTIZED = {"self_attn": ("q_proj", "k_proj", "v_proj", "o_proj"), "mlp": ("gate_proj", "up_proj", "down_proj")}
LINEAR = tuple(f"{block}.{name}.weight" for block, names in QUANTIZED.items() for name in names)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("bridge-quantize")
    return {"model": small_hf_qwen3(root, layers=4), "data": data_prefix(root), "root": root}


def flags(source, export, **changes):
    settings = {"--pyt_ckpt_path": source["model"], "--export_path": export, "--data_paths": source["data"], **CALIBRATION, **changes}
    return [str(item) for pair in settings.items() for item in pair]


@pytest.fixture(scope="module")
def export(source):
    """`python -m helpers.quantize` on the small Qwen3."""
    path = source["root"] / "fp8"
    done = subprocess.run([sys.executable, "-m", "helpers.quantize", *flags(source, path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return path, done.stdout


@pytest.fixture(scope="module")
def fake_quantized(source):
    """The small Qwen3 fake-quantized here with the recipe and the windows the command calibrates on, its weights
    and ranges matched to the export's (`ptq.match_export`), and its logits on the check's tokens."""
    import modelopt.torch.quantization as mtq
    from transformers import AutoModelForCausalLM

    windows = token_windows(source["data"], CALIBRATION["--calib_seq"], CALIBRATION["--calib_size"])
    model = AutoModelForCausalLM.from_pretrained(source["model"]).eval()
    mtq.quantize(model, quant_config(default_kv_cache_qformat()), forward_loop=ptq.calibration_loop(windows, CALIBRATION["--batch_size"]))
    ptq.match_export(model)
    ids = ptq.check_ids(windows)
    return {"ids": ids, "logits": ptq.logits(model, ids), "model": model}


def test_the_command_calibrates_with_progress_and_reports_its_checks(export):
    path, log = export
    assert "calibrating: 16/16 windows" in log
    assert "The reload gives the fake-quantized model's logits; a plain load does not." in log
    report = ptq.report(path)
    assert report["qformat"] == "fp8" and report["kv_cache_qformat"] == "fp8_cast" and "mtq.FP8_DEFAULT_CFG" in report["recipe"]
    assert report["calibration"] == {"windows": 16, "length": 64, "batch_size": 4, "algorithm": "max"}
    assert report["logits"]["reload vs FP8"]["passed"] and not report["logits"]["plain load vs FP8"]["passed"]
    assert report["rounding"]["FP8 weights"] == 4 * (2 * 256 * 128 + 2 * 128 * 128 + 3 * 128 * 256)  # q, o; k, v; MLP


def test_the_reload_gives_the_fake_quantized_models_logits(export, fake_quantized):
    check = judge(ptq.logits(load_fp8(export[0]), fake_quantized["ids"]), fake_quantized["logits"], torch.float32)
    assert check.passed and check.decisive_positions > 0, check  # float32: every logit within 1e-3


def test_the_matched_fake_quantized_model_is_the_reloaded_export_bit_for_bit(export, fake_quantized):
    """Its weights are the stored FP8 values times their scales, its ranges the stored scales times 448: the export
    of the matched model is the export of the unmatched one."""
    reloaded = load_fp8(export[0])
    assert all(torch.equal(p, q) for p, q in zip(reloaded.parameters(), fake_quantized["model"].parameters(), strict=True))
    for name, amax in ((name, q.amax) for name, q in fake_quantized["model"].named_modules() if name.endswith("_quantizer") and q.amax is not None):
        assert torch.equal(reloaded.get_submodule(name).amax, amax), name


def test_the_reload_is_the_stored_checkpoint_exactly(export):
    stored, model = tensors(export[0]), load_fp8(export[0])
    modules = dict(model.named_modules())
    for layer in range(4):
        for prefix in (f"model.layers.{layer}.{linear.removesuffix('.weight')}" for linear in LINEAR):
            module = modules[prefix]
            assert torch.equal(module.weight, stored[f"{prefix}.weight"].float() * stored[f"{prefix}.weight_scale"]), prefix
            assert module.input_quantizer.amax == stored[f"{prefix}.input_scale"] * FP8_MAX, prefix
        attention = modules[f"model.layers.{layer}.self_attn"]
        assert attention.k_bmm_quantizer.amax == attention.v_bmm_quantizer.amax == FP8_MAX  # fp8_cast: scale 1.0
    assert not modules["lm_head"].weight_quantizer.is_enabled


def test_matching_leaves_the_export_as_it_is(source, export, tmp_path):
    """An export of the fake-quantized model as calibrated, not matched, stores the same bytes."""
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import export_hf_checkpoint
    from transformers import AutoModelForCausalLM

    windows = token_windows(source["data"], CALIBRATION["--calib_seq"], CALIBRATION["--calib_size"])
    model = AutoModelForCausalLM.from_pretrained(source["model"]).eval()
    mtq.quantize(model, quant_config(default_kv_cache_qformat()), forward_loop=ptq.calibration_loop(windows, CALIBRATION["--batch_size"]))
    export_hf_checkpoint(model, export_dir=tmp_path)
    unmatched, matched = tensors(tmp_path), tensors(export[0])
    assert unmatched.keys() == matched.keys()
    assert all(torch.equal(unmatched[name].float(), matched[name].float()) for name in matched)  # FP8 -> float32 is exact


def test_a_plain_load_is_wrong(export, fake_quantized):
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(export[0], dtype="auto")
    with pytest.raises(RuntimeError, match="same dtype"):  # transformers 4.57 keeps the FP8 weights, unscaled
        plain(fake_quantized["ids"])
    ignored = judge(ptq.logits(load_ignoring_scales(export[0]), fake_quantized["ids"]), fake_quantized["logits"], torch.float32)
    assert not ignored.passed and ignored.decisive_flips > ignored.decisive_positions / 2, ignored


@pytest.mark.parametrize("kv_cache_qformat", ["fp8", "none"])
def test_a_calibrated_kv_cache_and_none_reload_too(source, kv_cache_qformat):
    """hf_ptq.py's other KV cache formats: calibrated scales stored as k_proj.k_scale and v_proj.v_scale, or no KV cache
    quantization and no kv_cache_scheme in the config."""
    path = source["root"] / f"kv-{kv_cache_qformat}"
    windows = token_windows(source["data"], CALIBRATION["--calib_seq"], CALIBRATION["--calib_size"])
    report = ptq.quantize(source["model"], path, windows, CALIBRATION["--batch_size"], kv_cache_qformat=kv_cache_qformat)
    assert report["kv_cache_qformat"] == kv_cache_qformat and report["logits"]["reload vs FP8"]["passed"]
    kv_scales = {name for name in tensors(path) if name.endswith(("k_scale", "v_scale"))}
    attention = load_fp8(path).get_submodule("model.layers.0.self_attn")
    if kv_cache_qformat == "fp8":
        assert len(kv_scales) == 2 * 4 and attention.k_bmm_quantizer.amax != FP8_MAX
    else:
        assert not kv_scales and "kv_cache_scheme" not in json.loads((path / "config.json").read_text())["quantization_config"]
        assert not attention.k_bmm_quantizer.is_enabled


def test_the_config_carries_the_quantization_config(export):
    config = json.loads((export[0] / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "modelopt" and config["quant_algo"] == "FP8"
    assert config["ignore"] == ["lm_head"] and config["kv_cache_scheme"] == {"dynamic": False, "num_bits": 8, "type": "float"}
    assert json.loads((export[0] / "hf_quant_config.json").read_text())["quantization"]["kv_cache_quant_algo"] == "FP8"
    assert (export[0] / "tokenizer_config.json").is_file()


def test_linear_weights_are_stored_in_fp8_and_the_rest_as_the_source(source, export):
    original, stored = tensors(source["model"]), tensors(export[0])
    for name, weight in stored.items():
        if name.endswith("_scale"):
            assert weight.dtype == torch.float32 and weight.ndim == 0, name
        elif name.endswith(LINEAR):
            assert weight.dtype == torch.float8_e4m3fn, name
        else:  # embeddings, norms, lm_head
            assert weight.dtype == original[name].dtype and torch.equal(weight, original[name]), name
    assert set(original) == {name for name in stored if not name.endswith("_scale")}


def test_the_export_is_smaller_by_the_bytes_fp8_saves(source, export):
    original = tensors(source["model"])
    linear = sum(w.numel() for name, w in original.items() if name.endswith(LINEAR))
    saved = linear * (original["model.embed_tokens.weight"].element_size() - 1)  # fp32 -> 1 byte per weight
    source_bytes, export_bytes = ptq.weights_bytes(source["model"]), ptq.weights_bytes(export[0])
    assert export_bytes < source_bytes - 0.99 * saved
    assert ptq.report(export[0])["bytes"] == {"source": source_bytes, "export": export_bytes, "ratio": round(export_bytes / source_bytes, 4)}


def test_a_rerun_reuses_the_export(source, export, capsys):
    path = export[0]
    before = {f.name: f.stat().st_mtime_ns for f in path.iterdir()}
    assert cli.main(flags(source, path)) == 0
    out = capsys.readouterr().out
    assert "Reusing the FP8 checkpoint" in out and "Calibrating" not in out
    assert {f.name: f.stat().st_mtime_ns for f in path.iterdir()} == before


def test_an_export_whose_reload_differs_is_refused_and_leaves_nothing(source, monkeypatch, capsys):
    """A loader that drops the scales stands for a broken export or reload: the check refuses it, and neither the
    export nor its temporary folder stays."""
    monkeypatch.setattr(ptq, "load_fp8", load_ignoring_scales)
    path = source["root"] / "refused"
    with pytest.raises(RuntimeError, match="does not give the fake-quantized model's logits"):
        cli.main(flags(source, path))
    assert not path.exists() and not partial_path(path).exists()


@pytest.mark.parametrize(
    ("change", "flag"),
    [
        ({"--qformat": "int4_awq"}, "--qformat"),
        ({"--pyt_ckpt_path": "/nonexistent"}, "--pyt_ckpt_path"),
        ({"--data_paths": "/nonexistent/train_text_document"}, "--data_paths"),
        ({"--calib_size": 0}, "--calib_size"),
        ({"--calib_seq": 1}, "--calib_seq"),
        ({"--batch_size": 0}, "--batch_size"),
    ],
)
def test_bad_settings_are_refused_naming_the_flag_before_a_model_loads(source, capsys, change, flag):
    path = source["root"] / "never"
    assert cli.main(flags(source, path, **change)) == 2
    error = capsys.readouterr().err
    assert error.startswith("helpers.quantize refused to start:") and f"\n{flag}: " in error
    assert not path.exists()


def test_an_already_quantized_checkpoint_and_a_stack_without_fp8_are_refused(source, export, monkeypatch, capsys):
    assert cli.main(flags(source, source["root"] / "twice", **{"--pyt_ckpt_path": export[0]})) == 2
    assert "--pyt_ckpt_path: " in capsys.readouterr().err
    monkeypatch.setattr(cli, "fp8_supported", lambda: "ModelOpt 0.35.1 cannot fake-quantize FP8 on the cpu: ...")
    assert cli.main(flags(source, source["root"] / "never")) == 2
    assert "--qformat: ModelOpt 0.35.1 cannot fake-quantize FP8" in capsys.readouterr().err
