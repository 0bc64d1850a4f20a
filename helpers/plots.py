"""Every figure of the series: each function draws one, saves it as PNG and returns it for display."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

# One colour per model family in every figure of the series; the distilled student is the solid shade.
COLORS = {"teacher": "black", "depth": "tab:blue", "width": "tab:orange", "nas": "tab:green"}


def color(model: str) -> str:
    """The colour of `model` ("teacher", "depth-pruned", "width-distilled", "depth", ...)."""
    return COLORS[model.split("-")[0]]


def marker(model: str) -> str:
    """The marker of `model` in the accuracy figures: a star for the teacher, a dot once distilled, a cross when pruned."""
    return "*" if model == "teacher" else ("o" if model.endswith("distilled") else "x")


def _save(figure, path: Path):
    """Save the figure whole (nothing cut at the edges), and close it so a notebook shows it once: as the cell's value."""
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return figure


def document_lengths(lengths: dict[str, np.ndarray], path: Path):
    """Histogram of tokens per document, one panel per split, log-spaced bins."""
    figure, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.2), squeeze=False)
    bins = np.logspace(0, np.log10(max(int(v.max()) for v in lengths.values()) + 1), 40)
    for axis, (split, values) in zip(axes[0], lengths.items()):
        axis.hist(values, bins=bins, color="tab:blue")
        axis.axvline(np.median(values), color="tab:red", linestyle="--", label=f"median {np.median(values):.0f}")
        axis.set(xscale="log", title=f"{split}: {len(values):,} documents", xlabel="tokens per document", ylabel="documents")
        axis.legend()
    return _save(figure, path)


def layer_importance(scores: dict[int, float], dropped: list[int], path: Path):
    """Block importance of every layer, the dropped ones marked."""
    layers = sorted(scores)
    figure, axis = plt.subplots(figsize=(max(6, 0.35 * len(layers) + 2), 3.4))
    colors = ["tab:red" if layer in dropped else "tab:blue" for layer in layers]
    axis.bar([str(layer) for layer in layers], [scores[layer] for layer in layers], color=colors)
    axis.set(yscale="log", xlabel="layer (1-indexed)", ylabel="block importance\n1 - cos(input, output), log scale")
    axis.set_title(f"Layer importance (summed over calibration batches); dropped in red: {sorted(dropped)}", fontsize=10, wrap=True)
    return _save(figure, path)


def width_importance(hidden: list[float], ffn: dict[int, list[float]], kept_hidden: int, kept_ffn: int, path: Path):
    """Channel and neuron importances sorted high to low, with the width each is cut to."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    ranked = np.sort(np.asarray(hidden))[::-1]
    left.plot(ranked, color="tab:blue")
    left.axvline(kept_hidden, color="tab:red", linestyle="--", label=f"keep {kept_hidden} of {len(ranked)}")
    left.fill_between(np.arange(kept_hidden, len(ranked)), ranked[kept_hidden:], color="tab:red", alpha=0.25)
    left.set(title="embedding channels (hidden size)", xlabel="channel, most important first", ylabel="importance (activation magnitude)")
    left.legend()
    colors = plt.cm.viridis(np.linspace(0, 1, len(ffn)))
    for color, (layer, values) in zip(colors, sorted(ffn.items())):
        right.plot(np.sort(np.asarray(values))[::-1], color=color, label=f"layer {layer}", linewidth=1)
    width = len(next(iter(ffn.values())))
    right.axvline(kept_ffn, color="tab:red", linestyle="--", label=f"keep {kept_ffn} of {width}")
    right.set(title="MLP neurons (ffn hidden size), per layer", xlabel="neuron, most important first", ylabel="importance (log scale)", yscale="log")
    right.legend(fontsize=7, ncol=2)
    return _save(figure, path)


def parameters_by_component(table, path: Path):
    """Stacked bars: parameters of each model by component (rows of `table` in millions)."""
    parts = table.drop(index=["total", "non-embedding"])
    figure, axis = plt.subplots(figsize=(6.5, 3.6))
    bottom = np.zeros(len(parts.columns))
    for component, values in parts.iterrows():
        axis.bar(parts.columns, values.to_numpy(), bottom=bottom, label=component)
        bottom += values.to_numpy()
    axis.set(ylabel="parameters (millions)", title="Where the parameters are")
    axis.legend(fontsize=8, loc="upper right")
    return _save(figure, path)


def losses(values: dict[str, float], path: Path, title: str):
    """One bar per model: a loss measured on the same tokens."""
    figure, axis = plt.subplots(figsize=(5.5, 3.4))
    bars = axis.bar(list(values), list(values.values()), color=[color(model) for model in values], alpha=0.8)
    axis.bar_label(bars, fmt="%.3f")
    low, high = min(values.values()), max(values.values())
    axis.set(ylabel="next-token loss (nats)", title=title, ylim=(low - 0.5 * (high - low + 0.1), high + 0.3 * (high - low + 0.1)))
    return _save(figure, path)


def kd_curves(curves, best: dict[str, dict], path: Path):
    """Distillation loss (training) and validation loss of every student by step; best checkpoints circled."""
    figure, (train, val) = plt.subplots(1, 2, figsize=(11, 3.8))
    for student, rows in curves.groupby("student"):
        for axis, tag in ((train, "reduced_train_loss"), (val, "val_loss")):
            points = rows[rows["tag"] == tag].sort_values("step")
            axis.plot(points["step"], points["value"], marker="o", markersize=3, color=color(student), label=f"{student}-pruned")
        if student in best:
            val.scatter([best[student]["step"]], [best[student]["val_loss"]], s=120, facecolors="none", edgecolors=color(student), linewidths=2)
    train.set(title="training: KL divergence to the teacher", xlabel="optimizer step", ylabel="KL divergence (nats per token)")
    val.set(title="validation: next-token loss (○ best checkpoint)", xlabel="optimizer step", ylabel="cross-entropy (nats per token)")
    for axis in (train, val):
        axis.legend()
    return _save(figure, path)


def _speed_caption(text: str, table) -> str:
    """`text`, and what the grey "?" in a speed figure means if `table` holds ratios the measurement marked unreliable."""
    from helpers.evaluate.speed import unreliable_note

    note = unreliable_note(table)
    return text + (f"\nGrey, '?': {note}" if note else "")


def tradeoffs(table, path: Path, speed: str):
    """Test perplexity against size and against prefill time relative to the teacher; arrows from each pruned student to
    its distilled self. A prefill time the measurement marked unreliable is drawn grey, its model's name with a "?"."""
    figure, (size, fast) = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, column, label in (
        (size, "non-embedding parameters", "non-embedding parameters (millions)"),
        (fast, "prefill time / teacher", "prefill time relative to the teacher (median of interleaved rounds)"),
    ):
        scale = 1e6 if column.endswith("parameters") else 1
        for model, row in table.iterrows():
            x, y = float(row[column]) / scale, float(row["test perplexity"])
            unsure = axis is fast and not row["prefill reliable"]
            axis.scatter([x], [y], color="lightgrey" if unsure else color(model), s=80, marker=marker(model))
            axis.annotate(model + ("?" if unsure else ""), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        for kind in sorted({model.split("-")[0] for model in table.index} - {"teacher"}):
            start, end = table.loc[f"{kind}-pruned"], table.loc[f"{kind}-distilled"]
            axis.annotate("", xy=(float(end[column]) / scale, float(end["test perplexity"])),
                          xytext=(float(start[column]) / scale, float(start["test perplexity"])),
                          arrowprops={"arrowstyle": "->", "color": color(kind), "alpha": 0.6})  # fmt: skip
        axis.set(xlabel=label, ylabel="test perplexity (lower is better)")
    size.set_title("accuracy vs size")
    fast.set_title("accuracy vs speed")
    figure.text(0.5, -0.02, _speed_caption(f"speed: {speed}", table), ha="center", va="top", fontsize=8, wrap=True)
    return _save(figure, path)


def fp8(table, path: Path, fp8: dict):
    """Test perplexity against the weights' size on disk: every model as exported (bf16 on GPUs), and each quantized one in FP8
    (diamonds), an arrow from the one to the other. `fp8`: comparison.json's record of the step (its recipe, or why
    it was skipped)."""
    figure, axis = plt.subplots(figsize=(7.5, 4.4))
    for model, row in table.iterrows():
        x, y = float(row["weights MB"]), float(row["test perplexity"])
        axis.scatter([x], [y], color=color(model), s=80, marker=marker(model))
        axis.annotate(model, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        if np.isfinite(float(row.get("FP8 weights MB", np.nan))):
            end = (float(row["FP8 weights MB"]), float(row["FP8 test perplexity"]))
            axis.scatter([end[0]], [end[1]], color=color(model), s=70, marker="D")
            axis.annotate(f"{model} FP8", end, textcoords="offset points", xytext=(5, -10), fontsize=8)
            axis.annotate("", xy=end, xytext=(x, y), arrowprops={"arrowstyle": "->", "color": color(model), "alpha": 0.6})
    axis.set(xlabel="weights on disk (MB)", ylabel="test perplexity (lower is better)", title="accuracy vs size: as exported and in FP8")
    note = fp8.get("recipe") or f"not measured here: {fp8.get('skipped')}"
    figure.text(0.5, -0.02, f"FP8: {note}", ha="center", va="top", fontsize=8, wrap=True)
    return _save(figure, path)


def speed(table, path: Path, settings: str):
    """Prefill and decode time of each model relative to the teacher, measured in interleaved rounds; a ratio the
    measurement marked unreliable is drawn grey and labelled with a "?", and the note under the figure says why."""
    from helpers.evaluate.speed import SIDES

    figure, axis = plt.subplots(figsize=(7.5, 3.6))
    models, width = list(table.index), 0.38
    x = np.arange(len(models))
    for offset, side, hatch in zip((-width / 2, width / 2), SIDES, ("", "//")):
        values, reliable = table[f"{side} time / teacher"].astype(float), table[f"{side} reliable"].astype(bool)
        bars = axis.bar(x + offset, values, width, color=[color(m) if ok else "lightgrey" for m, ok in zip(models, reliable)],
                        alpha=0.8, hatch=hatch, label=side, edgecolor="white")  # fmt: skip
        axis.bar_label(bars, labels=[f"{v:.2f}" + ("" if ok else "?") for v, ok in zip(values, reliable)], fontsize=7)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_xticks(x, models, rotation=15)
    axis.set(ylabel="time relative to the teacher (1 = same)", title="Speed relative to the teacher (lower is faster)")
    axis.legend(fontsize=8)
    figure.text(0.5, -0.02, _speed_caption(settings, table), ha="center", va="top", fontsize=8, wrap=True)
    return _save(figure, path)


def search_candidates(table, budget: float, score_func: str, path: Path):
    """Each candidate the architecture search scored, by parameters, the chosen one ringed, and the hand-picked
    students scored with the same function; the budget as a line."""
    figure, axis = plt.subplots(figsize=(7.5, 4.2))
    searched = table[table["source"] == "search"]
    axis.scatter(searched["params"] / 1e6, searched["score"], color=color("nas"), s=40, label="searched candidates")
    chosen = searched[searched["chosen"]]
    axis.scatter(chosen["params"] / 1e6, chosen["score"], facecolors="none", edgecolors="black", s=180, linewidths=1.5, label="chosen")
    for model, row in table[table["source"] != "search"].iterrows():
        axis.scatter([row["params"] / 1e6], [row["score"]], color=color(model), marker="x", s=90)
        axis.annotate(model, (row["params"] / 1e6, row["score"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axis.axvline(budget / 1e6, color="tab:red", linestyle="--", label=f"budget {budget / 1e6:,.1f}M")
    axis.set(xlabel="parameters (millions)", ylabel=f"score: {score_func} (higher is better)", title="Architecture search: the scored candidates")
    axis.legend(fontsize=8)
    return _save(figure, path)
