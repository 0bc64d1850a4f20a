"""Lightning callbacks of the distillation runs."""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import Callback


def _as_float(value) -> float | None:
    if isinstance(value, dict):
        value = value.get("loss")
    return None if value is None else float(value)


class StopOnNonFiniteLoss(Callback):
    """Stop the run, with a diagnosis, at the first step whose loss is NaN or infinite."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = _as_float(outputs)
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(
                f"the distillation loss is {loss} at step {trainer.global_step}. Training cannot recover from this: "
                "lower --lr (or lengthen --warmup_steps), check the data, and rerun; the checkpoints saved "
                "before this step are intact and the rerun resumes from the last one."
            )


class LogValidationBeforeTraining(Callback):
    """Log the sanity-check validation as the student's `val_loss` before any distillation.

    Lightning validates `num_sanity_val_steps` batches before training but keeps the result out of
    the logs; with `num_sanity_val_steps = limit_val_batches` they are the batches every later
    validation uses, so the curve starts where the pruned student stands. NeMo logs each step
    under its 0-based index (the first step is 0), so "before the first step" is index -1.
    """

    def on_sanity_check_end(self, trainer, pl_module):
        value = trainer.callback_metrics.get("val_loss")
        if trainer.global_step == 0 and value is not None and trainer.logger is not None:
            trainer.logger.log_metrics({"val_loss": float(value)}, step=-1)


class AlignLoggingStepOnResume(Callback):
    """After a resume, log under the same step numbers an uninterrupted run would have used.

    Lightning logs under `fit_loop.epoch_loop._batches_that_stepped`, which advances after the
    validation that ends a step; a checkpoint saved at that validation stores it one behind the
    optimizer's `global_step`, so a resumed run would log every later metric one step early.
    """

    def on_train_start(self, trainer, pl_module):
        loop = trainer.fit_loop.epoch_loop
        if loop._batches_that_stepped != trainer.global_step:
            loop._batches_that_stepped = trainer.global_step


class PrintValidationLoss(Callback):
    """Print every validation's loss as a line (`val_loss after step N: X`): the live curve reads it from the stream.

    NeMo's progress printer shows the training metrics of each logged step but not the validation loss,
    and the TensorBoard event files reach the disk only every couple of minutes.
    """

    def on_validation_end(self, trainer, pl_module):
        value = trainer.callback_metrics.get("val_loss")
        if value is not None and trainer.is_global_zero:
            print(f"val_loss after step {trainer.global_step}: {float(value):.4f}", flush=True)
