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
