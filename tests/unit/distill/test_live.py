"""The live curve's data path: streamed lines in, series out."""

from helpers.distill import live

LINES = [
    "Training epoch 0, iteration 0/11 | lr: 0.0005 | global_batch_size: 4 | global_step: 0 | reduced_train_loss: 7.912 | train_step_timing in s: 5.1 | consumed_samples: 4",
    "val_loss after step 0: 8.2891",
    "[NeMo I 2026-11-30 01:00:00 nemo_logging:393] Async finalization time took 0.001 s",
    "Training epoch 0, iteration 1/11 | lr: 0.001 | global_batch_size: 4 | global_step: 1 | reduced_train_loss: 7.5 | train_step_timing in s: 4.9 | consumed_samples: 8",
    "val_loss after step 2: 7.9012",
]


def test_lines_become_series_by_steps_completed():
    curves = live.LiveCurves("test")
    for line in LINES:
        curves(line)
    assert curves.series["KD loss (nats per token)"] == {1: 7.912, 2: 7.5}
    assert curves.series[live.VAL] == {0: 8.2891, 2: 7.9012}
    assert curves.series["learning rate"] == {1: 0.0005, 2: 0.001} and curves.series["seconds per step"] == {1: 5.1, 2: 4.9}


def test_other_lines_and_a_console_are_ignored_quietly():
    assert live.parse("Validation: iteration 1/4") == {} and live.parse("") == {}
    curves = live.LiveCurves("console")
    assert not curves._live  # pytest is not a notebook kernel: nothing is drawn, nothing fails
    curves.finish()
    figure = curves.figure()  # the figure can still be drawn from what was collected
    assert len(figure.axes) == 4


def test_in_a_notebook_the_figure_comes_first_and_is_updated_in_place(monkeypatch):
    shown = []

    class Handle:
        def update(self, figure):
            shown.append(("update", figure))

    def display(figure, display_id):
        shown.append(("display", figure))
        return Handle()

    monkeypatch.setattr("IPython.display.display", display)
    curves = live.LiveCurves("notebook", every=0.0)
    curves._live = True  # as in a kernel
    curves.start()
    assert [kind for kind, _ in shown] == ["display"]  # before any line: the figure sits above the streamed log
    for line in LINES:
        curves(line)
    curves.finish()
    kinds = [kind for kind, _ in shown]
    assert kinds[0] == "display" and kinds.count("display") == 1 and kinds.count("update") >= 2
    assert all(image.data.startswith(b"\x89PNG") for _, image in shown)  # an image whatever the kernel's backend
