"""Loss curves that grow while `torchrun` trains, drawn from the lines the run streams.

NeMo's progress printer writes every logged step as a line (`... | lr: 0.001 | global_step: 3 |
reduced_train_loss: 7.82 | train_step_timing in s: 4.8 | ...`) and the distillation entry point
adds one per validation (`val_loss after step 4: 7.69`). `LiveCurves` reads those lines as they
arrive and redraws one figure in place in a notebook, which stays as the cell's final figure.
Outside a notebook (a console, a test) it only collects the numbers: the lines themselves are the
progress there. The event files, read after the run, remain the record (`distill.curves`).
"""

from __future__ import annotations

import re
import time

_STEP = re.compile(r"\bglobal_step: (\d+)")
_TRAIN = {
    "KD loss (nats per token)": re.compile(r"\breduced_train_loss: ([-\d.eE+]+|nan|inf)"),
    "learning rate": re.compile(r"\blr: ([-\d.eE+]+)"),
    "seconds per step": re.compile(r"\btrain_step_timing in s: ([-\d.eE+]+)"),
}
_VALIDATION = re.compile(r"^val_loss after step (\d+): ([-\d.eE+]+|nan|inf)")
VAL = "validation loss (nats per token)"
PANELS = (next(iter(_TRAIN)), VAL, "learning rate", "seconds per step")


def parse(line: str) -> dict[str, tuple[int, float]]:
    """The metrics of one streamed line, each as (steps completed, value); {} for any other line."""
    found = {}
    if match := _VALIDATION.search(line.strip()):
        found[VAL] = (int(match[1]), float(match[2]))
    elif step := _STEP.search(line):
        for name, pattern in _TRAIN.items():
            if value := pattern.search(line):
                found[name] = (int(step[1]) + 1, float(value[1]))  # NeMo prints the 0-based index of the step
    return found


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LiveCurves:
    """Call it with each streamed line; in a notebook it redraws (at most every `every` seconds) as steps arrive."""

    def __init__(self, title: str, color: str = "tab:blue", every: float = 2.0):
        self.title, self.color, self.every = title, color, every
        self.series: dict[str, dict[int, float]] = {name: {} for name in PANELS}
        self._handle, self._drawn, self._changed = None, 0.0, False
        self._live = _in_notebook()

    def __call__(self, line: str) -> None:
        for name, (step, value) in parse(line).items():
            self.series[name][step] = value
            self._changed = True
        if self._live and self._changed and time.monotonic() - self._drawn >= self.every:
            self.draw()

    def figure(self):
        from matplotlib.figure import Figure

        figure = Figure(figsize=(11, 5.2))
        for axis, name in zip(figure.subplots(2, 2).flat, PANELS):
            points = sorted(self.series[name].items())
            if points:
                axis.plot(*zip(*points), marker="o", markersize=3, color=self.color)
            axis.set(title=name, xlabel="optimizer step", ylabel=name.split(" (")[-1].rstrip(")") if "(" in name else name)
        figure.suptitle(f"{self.title}: live, from the run's output")
        figure.tight_layout()
        return figure

    def draw(self) -> None:
        """Show the figure as a PNG: a bare matplotlib Figure shows as text until pyplot has set up inline display."""
        import io

        from IPython.display import Image, display

        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png", dpi=100)
        image = Image(data=buffer.getvalue(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
        self._drawn, self._changed = time.monotonic(), False

    def start(self) -> None:
        """Show the figure (still empty) before the run prints a line, so that it stays at the top of the cell's
        output while the log streams below it, instead of wherever the first step's line happens to fall."""
        if self._live:
            self.draw()

    def finish(self) -> None:
        """Draw the final state (in a notebook), so the figure left in the cell shows the whole run."""
        if self._live and (self._changed or self._handle is None):
            self.draw()
