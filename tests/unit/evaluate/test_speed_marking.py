"""Every place that shows a speed ratio the measurement marked unreliable says so: the table, the summary of
`python -m helpers.series`, the figures."""

import matplotlib.colors
import pandas as pd
import pytest

from helpers import distill, plots, series
from helpers.evaluate import comparison, speed
from helpers.run import timings
from helpers.workspace import Workspace

UNRELIABLE = ("depth-distilled", "prefill")  # the only ratio still uncertain by more than the bound


@pytest.fixture
def measured() -> pd.DataFrame:
    """A comparison whose depth-distilled prefill ratio was measured on a busy machine."""
    models = ["teacher", "depth-pruned", "depth-distilled", "width-pruned", "width-distilled"]
    table = pd.DataFrame(index=pd.Index(models, name="model"))
    table["parameters"], table["non-embedding parameters"], table["test perplexity"], table["KL to teacher"] = 10e6, 4e6, 100.0, 0.5
    for side in speed.SIDES:
        table[f"{side} time / teacher"] = [1.0, 0.711, 0.299, 0.701, 0.722]
        table[f"{side} uncertainty"] = 0.02
        table[f"{side} reliable"] = True
        table[f"{side} rounds"] = 6
    table.loc[UNRELIABLE[0], [f"{UNRELIABLE[1]} uncertainty", f"{UNRELIABLE[1]} reliable"]] = [1.6, False]
    return table


def test_the_table_marks_the_unreliable_ratio_and_prints_the_others_plain(measured):
    shown = speed.marked(measured)
    assert shown.loc["depth-distilled", "prefill time / teacher"] == "0.299 (unreliable: ±160%)"
    assert shown.loc["depth-distilled", "decode time / teacher"] == "0.299"
    assert shown.loc["width-pruned", "prefill time / teacher"] == "0.701"
    assert not {"prefill reliable", "prefill uncertainty"} & set(shown.columns)  # folded into the ratio


def test_the_note_names_each_unreliable_ratio_and_the_re_measurement(measured):
    note = speed.unreliable_note(measured)
    assert "depth-distilled prefill" in note and "width" not in note and "after 6 prefill and 6 decode rounds" in note
    assert "python -m helpers.evaluate.speed" in note
    assert speed.unreliable_note(measured.assign(**{"prefill reliable": True})) == ""


def test_the_series_summary_marks_the_unreliable_ratio(measured, tmp_path, monkeypatch):
    ws = Workspace(root=tmp_path, model_name="m")
    comparison.save(measured, ws, profile="tiny", speed="settings")
    kd = pd.DataFrame({"val_loss before KD (step 0)": [9.0], "best val_loss": [8.0], "best step": [12]}, index=["depth-pruned"])
    monkeypatch.setattr(distill, "summary", lambda _ws: kd)
    monkeypatch.setattr(timings, "breakdown", lambda *_: pd.DataFrame())
    monkeypatch.setattr(timings, "commands", lambda *_: pd.DataFrame())
    text = series.summary(ws, {"04_depth_vs_width_comparison.ipynb": 60.0}, {"04_depth_vs_width_comparison.ipynb": 90.0})
    row = next(line for line in text.splitlines() if line.startswith("depth-distilled"))
    assert "0.299 (unreliable: ±160%)" in row and row.rstrip().endswith("0.299")  # prefill marked, decode plain
    assert "0.701 " in next(line for line in text.splitlines() if line.startswith("width-pruned"))
    assert speed.unreliable_note(measured) in text


def test_the_speed_figure_greys_and_flags_the_unreliable_bar(measured, tmp_path):
    figure = plots.speed(measured, tmp_path / "speed.png", "settings")
    axis = figure.axes[0]
    prefill = axis.patches[: len(measured)]  # the prefill bars come first, one per model
    grey = matplotlib.colors.to_rgba("lightgrey", 0.8)
    assert [bar.get_facecolor() == grey for bar in prefill] == [model == UNRELIABLE[0] for model in measured.index]
    labels = [text.get_text() for text in axis.texts]
    assert "0.30?" in labels and labels.count("0.30") == 1  # depth-distilled: prefill flagged, decode plain
    assert any(speed.unreliable_note(measured) in text.get_text() for text in figure.texts)


def test_the_tradeoff_figure_greys_the_unreliable_prefill_point(measured, tmp_path):
    figure = plots.tradeoffs(measured, tmp_path / "tradeoffs.png", speed="settings")
    names = [text.get_text() for text in figure.axes[1].texts if text.get_text()]
    assert "depth-distilled?" in names and "width-pruned" in names
    assert "depth-distilled" in [text.get_text() for text in figure.axes[0].texts]  # its size is no less certain
