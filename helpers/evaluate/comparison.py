"""The teacher and every student, pruned and distilled, measured side by side as Hugging Face checkpoints: perplexity,
KL divergence from the teacher, generation and speed on the same test tokens, saved in `results/comparison.json` with
the later steps' columns (FP8, MMLU, vLLM), and what the numbers show."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from helpers import distill
from helpers.data.indexed import token_windows
from helpers.evaluate import mmlu, perplexity, speed
from helpers.evaluate.perplexity import NOISE
from helpers.models import hf_model
from helpers.models.architecture import HF_NAMES
from helpers.profiles import Profile
from helpers.routes import get_route, installed_versions
from helpers.workspace import Workspace

RESULTS = "comparison"


def models(ws: Workspace) -> tuple[str, ...]:
    """The compared models: the teacher, and each student of the route pruned, then distilled."""
    return ("teacher", *(f"{kind}-{stage}" for kind in ws.students for stage in ("pruned", "distilled")))


def hf_checkpoints(ws: Workspace) -> dict[str, Path]:
    """The Hugging Face checkpoint of each compared model."""
    return {label: ws.hf_model(label) for label in models(ws)}


def configs(paths: dict[str, Path]) -> pd.DataFrame:
    """What each Hugging Face checkpoint's config.json tells a downstream user: sizes, heads and dtype."""
    columns = {}
    for label, path in paths.items():
        config = json.loads((path / "config.json").read_text())
        columns[label] = {key: config.get(key) for key in HF_NAMES.values()} | {"dtype": config.get("torch_dtype") or config.get("dtype")}
    return pd.DataFrame(columns)


def test_windows(profile: Profile, ws: Workspace):
    """The held-out tokens every model is scored on: the start of the test split, in windows of the sequence length."""
    length = profile.evaluation.seq_length
    return token_windows(ws.data_prefix("test"), length, profile.evaluation.ppl_windows)


def measure(profile: Profile, ws: Workspace) -> pd.DataFrame:
    """Evaluate the five models on identical tokens and settings, then their speed together; save the table as JSON and CSV."""
    from transformers import AutoTokenizer

    settings = profile.evaluation
    windows = test_windows(profile, ws)
    tokenizer = AutoTokenizer.from_pretrained(ws.hf_teacher)
    rows, per_window = {}, {}
    with hf_model.loaded(ws.hf_teacher) as teacher:  # each student is also scored against the teacher's distribution
        for label, path in hf_checkpoints(ws).items():
            reference = None if label == "teacher" else teacher
            rows[label] = perplexity.evaluate(path, windows, tokenizer, batch_size=settings.batch_size, prompt=settings.prompt, max_new_tokens=settings.max_new_tokens, teacher=reference)
            per_window[label] = rows[label].pop("per window")
            kl = rows[label].setdefault("KL to teacher", 0.0)
            print(f"{label:16} test perplexity {rows[label]['test perplexity']:>10}   KL to the teacher {kl:.4f} nats/token")
    for kind in ws.students:
        rows[f"{kind}-distilled"]["best KD val_loss"] = distill.best(ws, kind)["val_loss"]
    timing = speed_settings(profile, ws)
    print(f"Speed: {timing}")
    speeds = measure_speed(ws, timing)
    print(speed.unreliable_note(speeds) or f"Speed: every ratio within ±{speed.BOUND:.0%}.")
    table = pd.concat([pd.DataFrame(rows).T, speeds], axis=1).rename_axis("model")
    route = get_route(ws.route)
    save(table, ws, tokens=int(windows.size), device=hf_model.device(), profile=profile.name, route=route.name,
         versions=installed_versions(route), speed=str(timing), per_window=per_window)
    return table


def speed_settings(profile: Profile, ws: Workspace) -> speed.SpeedSettings:
    """What the speed measurement runs: the evaluation batch, the generation length, the profile's rounds (at most twice as
    many on a busy machine), the teacher's dtype, this machine's threads."""
    import torch

    settings = profile.evaluation
    dtype = json.loads((ws.hf_teacher / "config.json").read_text()).get("torch_dtype", "float32")
    return speed.SpeedSettings(
        batch_size=settings.batch_size, seq_length=settings.seq_length, decode_tokens=settings.max_new_tokens,
        rounds=settings.speed_rounds, max_rounds=speed.MAX_ROUNDS_FACTOR * settings.speed_rounds,
        device=hf_model.device(), dtype=dtype, threads=torch.get_num_threads(),
    )  # fmt: skip


def measure_speed(ws: Workspace, settings: speed.SpeedSettings) -> pd.DataFrame:
    """Prefill and decode speed of the five models, loaded together and measured in interleaved rounds."""
    from transformers import AutoModelForCausalLM

    models = {label: AutoModelForCausalLM.from_pretrained(path, torch_dtype="auto").eval() for label, path in hf_checkpoints(ws).items()}
    try:
        return speed.measure(models, "teacher", settings)
    finally:
        del models
        hf_model.free_device_memory()  # before MMLU's processes need the GPUs


def save(table: pd.DataFrame, ws: Workspace, **metadata) -> None:
    ws.results.mkdir(parents=True, exist_ok=True)
    table.to_csv(ws.results / f"{RESULTS}.csv")
    records = json.loads(table.reset_index().to_json(orient="records"))
    (ws.results / f"{RESULTS}.json").write_text(json.dumps({**metadata, "models": records}, indent=2))


def load(ws: Workspace) -> dict:
    """The saved comparison: {"profile", "route", "versions": {package: version}, "tokens", "device", "speed", "per_window": {model: {"loss": [...], "KL to
    teacher": [...]}, one value per test window, for `perplexity.difference`}, "models": [one record per model]}; after
    the FP8 step (`quantize.measure`) also "fp8" (the recipe and calibration, or why it was skipped) and per-window
    scores of each "<model>-fp8", and after the vLLM step (`quantize.benchmark`) "vllm" ({checkpoint: figures})."""
    return json.loads((ws.results / f"{RESULTS}.json").read_text())


def provenance(ws: Workspace) -> pd.Series:
    """Which route and which installed framework versions produced the saved comparison."""
    saved = load(ws)
    route = get_route(saved["route"])
    return pd.Series({"route": f"{route.name}: {route.title}", "container (GPUs)": route.container, "device": saved["device"]}
                     | saved["versions"], name="produced by")


def add_mmlu(profile: Profile, ws: Workspace, table: pd.DataFrame) -> pd.DataFrame:
    """MMLU (5-shot) of the teacher and each distilled student (`ws.deployed`), added to the table and
    re-saved; where it cannot run, say why, print the commands, and return the table unchanged."""
    scores = mmlu.evaluate_all(ws.deployed, ws, enabled=profile.evaluation.mmlu)
    return table if scores is None else update(table.assign(**{mmlu.COLUMN: pd.Series(scores)}), ws)


def update(table: pd.DataFrame, ws: Workspace, per_window: dict[str, dict[str, list[float]]] | None = None, **metadata) -> pd.DataFrame:
    """Re-save the comparison with `table` (a later step's columns added), its per-window scores extended by
    `per_window` and its metadata by `metadata`."""
    saved = {key: value for key, value in load(ws).items() if key != "models"}
    saved["per_window"] = saved["per_window"] | (per_window or {})
    save(table, ws, **(saved | metadata))
    return table


def measurements(table: pd.DataFrame) -> pd.DataFrame:
    """The table as measured, without the generations, a speed ratio marked unreliable saying so."""
    return speed.marked(table.drop(columns=["generation"]))


def generations(profile: Profile, table: pd.DataFrame) -> str:
    """The prompt as each model continued it, greedily."""
    return "\n".join(f"{model:>16}: {profile.evaluation.prompt}{text!r}" for model, text in table["generation"].items())


def overview(table: pd.DataFrame) -> pd.DataFrame:
    """Size, perplexity, KL divergence from the teacher and speed of each model, parameters in millions, a speed ratio
    marked unreliable saying so."""
    columns = ["parameters", "non-embedding parameters", "test perplexity", "KL to teacher", *speed.RATIOS]
    shown = speed.marked(table)[columns]
    shown[columns[:2]] = (shown[columns[:2]].astype(float) / 1e6).round(2)
    return shown.rename(columns={"parameters": "params (M)", "non-embedding parameters": "non-emb (M)"})


def findings(table: pd.DataFrame, per_window: dict[str, dict[str, list[float]]]) -> str:
    """What this run's comparison shows, in its own numbers: what each cut cost, what distillation won back and how
    much closer it brought each student to the teacher, depth vs width. A loss difference counts only beyond NOISE
    standard errors of comparing the two models on the same test windows (`per_window`, saved by `measure`)."""
    ppl, params, kl = table["test perplexity"].astype(float), table["parameters"].astype(float), table["KL to teacher"].astype(float)
    loss = {model: scores["loss"] for model, scores in per_window.items()}
    kinds = [model.removesuffix("-pruned") for model in table.index if model.endswith("-pruned")]
    lines = []
    for kind in kinds:
        pruned, distilled = f"{kind}-pruned", f"{kind}-distilled"
        cost, won = perplexity.difference(loss[pruned], loss["teacher"]), perplexity.difference(loss[pruned], loss[distilled])
        closer = perplexity.difference(per_window[pruned]["KL to teacher"], per_window[distilled]["KL to teacher"])
        share = f", {won.nats / cost.nats:.0%} of it" if cost.exceeds(NOISE) and won.exceeds(NOISE) else ""
        lines.append(
            f"{kind}: pruning to {params[pruned] / params['teacher']:.0%} of the parameters cost {cost.verdict()} "
            f"(perplexity {ppl['teacher']:.1f} -> {ppl[pruned]:.1f}); "
            f"distillation won back {won.verdict()}{share} (perplexity {ppl[distilled]:.1f}); KL divergence from the teacher "
            f"{kl[pruned]:.4f} -> {kl[distilled]:.4f} nats per token ({kl[distilled] / kl[pruned] - 1:+.0%}"
            f"{'' if closer.significant else ', within the noise'})."
        )
    pairs = [(kinds[0], kinds[1]), *((kind, other) for kind in kinds[2:] for other in kinds[:2])]  # the searched vs each
    for a, b in (tuple(f"{kind}-distilled" for kind in pair) for pair in pairs):
        gap = perplexity.difference(loss[b], loss[a])
        better = f"{a if gap.nats > 0 else b} has the lower perplexity" if gap.significant else "neither is ahead"
        speeds = ", ".join(speed_difference(table, a, b, side) for side in ("prefill", "decode"))
        lines.append(
            f"{a} vs {b} at {params[a] / 1e6:.1f}M vs {params[b] / 1e6:.1f}M parameters: {better} "
            f"({ppl[a]:.1f} vs {ppl[b]:.1f}, loss difference {gap}); time relative to the teacher, {speeds}."
        )
    return "\n".join(lines)


def speed_difference(table: pd.DataFrame, a: str, b: str, side: str) -> str:
    """`a`'s and `b`'s time relative to the teacher on one side of speed, and whether they differ: not compared if the
    measurement marked either unreliable, no difference if their 95% intervals (the ratios' uncertainties) overlap."""
    text = f"{side} {speed.ratio_text(table, a, side)} vs {speed.ratio_text(table, b, side)}"
    if not (table.loc[a, f"{side} reliable"] and table.loc[b, f"{side} reliable"]):
        return text + " (not compared: the machine was too busy; measure again with python -m helpers.evaluate.speed)"
    first, second = (float(table.loc[model, f"{side} time / teacher"]) for model in (a, b))
    margin = first * float(table.loc[a, f"{side} uncertainty"]) + second * float(table.loc[b, f"{side} uncertainty"])
    if abs(first - second) <= margin:
        text += f" (no difference beyond the measurement's uncertainty: {abs(first - second):.3f} apart, within ±{margin:.3f})"
    return text
