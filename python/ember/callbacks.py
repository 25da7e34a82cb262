"""Keras' callbacks for Sequential.fit(callbacks=[...]), with Keras' names, settings and meanings.

A callback's hooks get Keras' arguments: epoch counts from initial_epoch (0 by default) within each
fit, logs maps the epoch's figures ("loss", "mae", "r2" or "accuracy", their "val_" forms, "lr").
Setting model.stop_training = True in on_epoch_end ends training after that epoch; setting
model.learning_rate in on_epoch_begin trains that epoch and the following ones at that rate. While
fit runs, a callback may read the model's weights (get_weights) and save it, but not predict,
evaluate or fit it. A plain function in the list is called as on_epoch_end(epoch, logs).
"""
import csv as _csv
import inspect as _inspect
import math as _math
import os as _os
import sys as _sys
import time as _time
import warnings as _warnings

from ._core import InputError

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau",
           "CSVLogger", "LambdaCallback"]


class Callback:
    """The hooks fit calls; override those you need. fit sets .model (the ember.Sequential) and
    .params ({"epochs", "verbose"}) before training."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass


class History(Callback):
    """What fit returns, as Keras' History: history maps each figure to its list over the epochs,
    epoch lists the epochs' numbers (from initial_epoch, per fit). best_epoch: with fit's
    early_stopping, the epoch whose weights the model kept; stopped: why training ended before
    its last epoch ("early stopping", "stop requested"), else "". linear: with fit's
    compare_linear, {"val_loss", "linear_val_loss", "linear_share", "kept": "layers", "linear" or
    "blend", "blends": {share: val_loss}}, else None."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []
        self.best_epoch = None
        self.stopped = ""
        self.linear = None

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, figures={sorted(self.history)})"


def _mode(monitor, mode):
    """Keras' mode "auto": accuracy and r2 (and anything named like a score) rise, losses fall."""
    if mode not in ("auto", "min", "max"):
        raise InputError(f"mode '{mode}': use 'auto', 'min' or 'max'")
    if mode == "auto":
        mode = "max" if any(word in monitor for word in ("acc", "r2", "auc", "f1")) else "min"
    return mode


class _Monitor:
    """Whether a figure improved, as Keras' callbacks judge it: by more than min_delta, in the mode's
    direction."""

    def __init__(self, monitor, mode, min_delta):
        self.monitor = monitor
        self.sign = 1.0 if _mode(monitor, mode) == "max" else -1.0
        self.min_delta = abs(float(min_delta))
        self.best = -_math.inf

    def value(self, logs, who):
        if self.monitor not in (logs or {}):
            _warnings.warn(f"{who} monitors '{self.monitor}', which fit does not record here; it records "
                           f"{', '.join(sorted(logs or {}))}", stacklevel=4)
            return None
        return float(logs[self.monitor])

    def improved(self, value):
        return self.sign * value - self.min_delta > self.best

    def take(self, value):
        self.best = self.sign * value

    @property
    def best_value(self):
        return self.sign * self.best


class EarlyStopping(Callback):
    """Keras' EarlyStopping: stops when monitor has not improved by more than min_delta for patience
    epochs; restore_best_weights puts back the weights of the best epoch when training ends (as
    Keras 3; the weights only: the optimizer's state stays that of the last epoch). fit's own
    early_stopping=patience does the same on the loss, restoring the whole state."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.min_delta, self.patience, self.verbose = monitor, min_delta, int(patience), verbose
        self.mode, self.baseline, self.restore_best_weights = mode, baseline, restore_best_weights
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self._watch = _Monitor(self.monitor, self.mode, self.min_delta)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None

    @property
    def best(self):
        return self._watch.best_value

    def on_epoch_end(self, epoch, logs=None):
        value = self._watch.value(logs, "EarlyStopping")
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # the first epoch's, should none improve on the baseline
        self.wait += 1
        if self._watch.improved(value):
            self._watch.take(value)
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Waiting starts over only past the baseline, if there is one.
            if self.baseline is None or self._watch.sign * value - self._watch.min_delta > self._watch.sign * float(
                    self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring the weights of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Keras' ModelCheckpoint: saves the model after each epoch to filepath, which may name the
    epoch and figures as Keras' does ("model-{epoch:02d}-{val_loss:.3f}.safetensors"; epoch from 1).
    save_best_only: only when monitor improved. Each file is a whole Ember checkpoint written
    through a temporary file; save_weights_only=True is refused (the checkpoint is the model)."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_weights_only:
            raise InputError("save_weights_only=True: Ember's checkpoints hold the whole model (weights, optimizer "
                             "state, preprocessing); get_weights() gives the weights alone")
        if save_freq != "epoch":
            raise InputError(f"save_freq={save_freq!r}: Ember saves at the end of epochs; use 'epoch'")
        self.filepath, self.monitor, self.verbose = _os.fspath(filepath), monitor, verbose
        self.save_best_only, self.mode = save_best_only, mode
        self.initial_value_threshold = initial_value_threshold

    def on_train_begin(self, logs=None):
        if not hasattr(self, "_watch"):  # the best carries over fits, as Keras' does
            self._watch = _Monitor(self.monitor, self.mode, 0.0)
            if self.initial_value_threshold is not None:
                self._watch.take(float(self.initial_value_threshold))

    @property
    def best(self):
        return self._watch.best_value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._watch.value(logs, "ModelCheckpoint")
            if value is None or not self._watch.improved(value):
                return
            self._watch.take(value)
        path = self.filepath.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: saved the model to {path}")


class LearningRateScheduler(Callback):
    """Keras' LearningRateScheduler: before each epoch, schedule(epoch, lr) (or schedule(epoch))
    gives the rate to train it at; lr is the rate of the previous epoch (the compiled rate at the
    first). The compiled schedule (compile(schedule=...)) then no longer applies."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise InputError(f"LearningRateScheduler takes a function schedule(epoch, lr), not {schedule!r}")
        self.schedule, self.verbose = schedule, verbose
        try:
            parameters = _inspect.signature(schedule).parameters.values()
            self._takes_rate = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                                   for p in parameters) >= 2
        except (TypeError, ValueError):  # a builtin without a signature
            self._takes_rate = True

    def on_epoch_begin(self, epoch, logs=None):
        rate = self.model.learning_rate
        rate = self.schedule(epoch, rate) if self._takes_rate else self.schedule(epoch)
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            raise InputError(f"the schedule of LearningRateScheduler returned {rate!r} for epoch {epoch}; it must "
                             f"return a number") from None
        self.model.learning_rate = rate
        if self.verbose > 0:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting the learning rate to {rate:g}.")


class ReduceLROnPlateau(Callback):
    """Keras' ReduceLROnPlateau: after patience epochs without monitor improving by more than
    min_delta, the rate is multiplied by factor, not below min_lr; then cooldown epochs pass before
    waiting again. (compile(schedule=ember.ReduceOnPlateau(...)) does the same inside the engine,
    on the loss, and keeps its state in checkpoints.)"""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if not 0 < factor < 1:
            raise InputError(f"ReduceLROnPlateau factor {factor}: must be between 0 and 1")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.mode, self.min_delta, self.cooldown, self.min_lr = mode, min_delta, int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        self._watch = _Monitor(self.monitor, self.mode, self.min_delta)
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._watch.value(logs, "ReduceLROnPlateau")
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._watch.improved(value):
            self._watch.take(value)
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                rate = self.model.learning_rate
                if rate > self.min_lr:
                    self.model.learning_rate = max(rate * self.factor, self.min_lr)
                    if self.verbose > 0:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing the learning rate to "
                              f"{self.model.learning_rate:g}.")
                self.cooldown_counter = self.cooldown
                self.wait = 0


class CSVLogger(Callback):
    """Keras' CSVLogger: one row per epoch (epoch, then the figures by name) in filename; append
    adds to an existing file."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = _os.fspath(filename), separator, append

    def on_train_begin(self, logs=None):
        exists = self.append and _os.path.exists(self.filename) and _os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None
        self._header = exists

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self._writer is None:
            self._writer = _csv.DictWriter(self._file, fieldnames=["epoch"] + sorted(logs), delimiter=self.separator)
            if not self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **logs})
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class LambdaCallback(Callback):
    """Keras' LambdaCallback: the hooks given as functions (on_epoch_begin(epoch, logs),
    on_epoch_end(epoch, logs), on_train_begin(logs), on_train_end(logs))."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None):
        super().__init__()
        for name, function in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                               ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if function is not None:
                setattr(self, name, function)


class _Function(Callback):
    """A plain function in callbacks=[...]: called as on_epoch_end(epoch, logs)."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def on_epoch_end(self, epoch, logs=None):
        self.function(epoch, logs)


def _as_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    out = []
    for callback in callbacks:
        if isinstance(callback, Callback):
            out.append(callback)
        elif callable(callback):
            out.append(_Function(callback))
        else:
            raise InputError(f"callbacks takes ember.callbacks.Callback objects or functions(epoch, logs), "
                             f"not {callback!r}")
    return out


def _figure(value):
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4e}"


class _Progress:
    """fit's display, as Keras' verbose: 1 draws a bar that fills during each epoch (where the
    output is a terminal or a notebook; elsewhere the epoch's line alone), then the epoch's figures;
    2 prints one line per epoch."""

    def __init__(self, verbose, epochs, stream=None):
        self.verbose, self.epochs = int(verbose), epochs
        self.stream = stream or _sys.stdout
        self.dynamic = self.verbose == 1 and (getattr(self.stream, "isatty", lambda: False)()
                                              or "ipykernel" in _sys.modules)
        self.width = 0

    def epoch_begin(self, epoch):
        self.started = _time.perf_counter()
        if self.verbose == 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", file=self.stream, flush=True)

    def _bar(self, batch, batches):
        filled = int(20 * batch / max(batches, 1))
        return f"{batch:>{len(str(batches))}}/{batches} " + "━" * filled + "─" * (20 - filled)

    def batch(self, batch, batches):
        if not self.dynamic:
            return
        elapsed = _time.perf_counter() - self.started
        left = elapsed / max(batch, 1) * (batches - batch)
        line = f"{self._bar(batch, batches)} {left:.0f}s left"
        self.stream.write("\r" + line + " " * max(0, self.width - len(line)))
        self.stream.flush()
        self.width = len(line)

    def epoch_end(self, epoch, logs, batches, seconds):
        if self.verbose <= 0:
            return
        per_step = f"{1000 * seconds / max(batches, 1):.0f}ms/step"
        figures = " - ".join(f"{name}: {_figure(value)}" for name, value in logs.items() if name != "lr")
        if self.verbose == 1:
            line = f"{self._bar(batches, batches)} {seconds:.0f}s {per_step} - {figures}"
            if self.dynamic:
                line = "\r" + line + " " * max(0, self.width - len(line))
            self.width = 0
        else:
            line = f"Epoch {epoch + 1}/{self.epochs} - {seconds:.2f}s - {per_step} - {figures}"
        print(line, file=self.stream, flush=True)
