"""Every figure of the series: each function draws one, saves it as PNG and returns it for display."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def _save(figure, path: Path):
    """Save the figure, and close it so a notebook shows it once: as the cell's value."""
    figure.tight_layout()
    figure.savefig(path, dpi=120)
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
    axis.set(yscale="log", xlabel="layer (1-indexed)", ylabel="block importance (log scale)",
             title=f"Layer importance: 1 - cos(input, output), summed over calibration batches; dropped in red {sorted(dropped)}")  # fmt: skip
    axis.title.set_fontsize(9)
    return _save(figure, path)


def width_importance(hidden: list[float], ffn: dict[int, list[float]], kept_hidden: int, kept_ffn: int, path: Path):
    """Channel and neuron importances sorted high to low, with the width each is cut to."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    ranked = np.sort(np.asarray(hidden))[::-1]
    left.plot(ranked, color="tab:blue")
    left.axvline(kept_hidden, color="tab:red", linestyle="--", label=f"keep {kept_hidden} of {len(ranked)}")
    left.fill_between(np.arange(kept_hidden, len(ranked)), ranked[kept_hidden:], color="tab:red", alpha=0.25)
    left.set(title="embedding channels (hidden size)", xlabel="channel, most important first", ylabel="importance")
    left.legend()
    colors = plt.cm.viridis(np.linspace(0, 1, len(ffn)))
    for color, (layer, values) in zip(colors, sorted(ffn.items())):
        right.plot(np.sort(np.asarray(values))[::-1], color=color, label=f"layer {layer}", linewidth=1)
    width = len(next(iter(ffn.values())))
    right.axvline(kept_ffn, color="tab:red", linestyle="--", label=f"keep {kept_ffn} of {width}")
    right.set(title="MLP neurons (ffn hidden size), per layer", xlabel="neuron, most important first", ylabel="importance", yscale="log")
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
    bars = axis.bar(list(values), list(values.values()), color=["tab:gray"] + ["tab:orange"] * (len(values) - 1))
    axis.bar_label(bars, fmt="%.3f")
    low, high = min(values.values()), max(values.values())
    axis.set(ylabel="next-token loss (nats)", title=title, ylim=(low - 0.5 * (high - low + 0.1), high + 0.3 * (high - low + 0.1)))
    return _save(figure, path)


def kd_curves(curves, best: dict[str, dict], path: Path):
    """Distillation loss (training) and validation loss of every student by step; best checkpoints circled."""
    figure, (train, val) = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = dict(zip(sorted(curves["student"].unique()), ("tab:blue", "tab:orange", "tab:green")))
    for student, rows in curves.groupby("student"):
        for axis, tag in ((train, "reduced_train_loss"), (val, "val_loss")):
            points = rows[rows["tag"] == tag].sort_values("step")
            axis.plot(points["step"], points["value"], marker="o", markersize=3, color=colors[student], label=f"{student}-pruned")
        if student in best:
            val.scatter([best[student]["step"]], [best[student]["val_loss"]], s=120, facecolors="none", edgecolors=colors[student], linewidths=2)
    train.set(title="training: KL divergence to the teacher", xlabel="step", ylabel="loss")
    val.set(title="validation: next-token loss (○ best checkpoint)", xlabel="step", ylabel="loss")
    for axis in (train, val):
        axis.legend()
    return _save(figure, path)


def tradeoffs(table, path: Path):
    """Test perplexity against model size and against latency; arrows from each pruned student to its distilled self."""
    figure, (size, speed) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"teacher": "black", "depth": "tab:blue", "width": "tab:orange"}
    for axis, column, label in (
        (size, "non-embedding parameters", "non-embedding parameters (millions)"),
        (speed, "latency ms", "forward latency, fixed batch (ms)"),
    ):
        scale = 1e6 if column.endswith("parameters") else 1
        for model, row in table.iterrows():
            x, y = float(row[column]) / scale, float(row["test perplexity"])
            color = colors[model.split("-")[0]]
            axis.scatter([x], [y], color=color, marker="*" if model == "teacher" else ("o" if model.endswith("distilled") else "x"), s=80)
            axis.annotate(model, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        for kind in ("depth", "width"):
            start, end = table.loc[f"{kind}-pruned"], table.loc[f"{kind}-distilled"]
            axis.annotate("", xy=(float(end[column]) / scale, float(end["test perplexity"])),
                          xytext=(float(start[column]) / scale, float(start["test perplexity"])),
                          arrowprops={"arrowstyle": "->", "color": colors[kind], "alpha": 0.6})  # fmt: skip
        axis.set(xlabel=label, ylabel="test perplexity (lower is better)")
    size.set_title("accuracy vs size")
    speed.set_title("accuracy vs speed")
    return _save(figure, path)
