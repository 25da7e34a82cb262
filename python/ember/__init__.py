"""Ember: neural networks on tabular data, trained on NVIDIA GPUs or the CPU by a C++ engine.

    import ember, numpy as np
    model = ember.Sequential([ember.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.array([[1], [2], [3], [4]]), np.array([1, 2, 3, 4]), epochs=1000, verbose=0)
    model.predict(np.array([[5]]))     # about 5

Arrays of float32 in C order are read where they lie; others are converted once. The GIL is
released while the engine works; Ctrl-C during fit raises KeyboardInterrupt at the next batch and
leaves the model at its last completed epoch. Checkpoints are those of `ember train` (safetensors).
"""
import numpy as _np

from . import _core, callbacks
from . import callbacks as _callbacks
from ._core import (DivergenceError, Error, InputError, activation_names, cuda_unavailable_reason, describe_devices,
                    get_num_threads, layer_names, loss_names, onnx_export_available, optimizer_names, schedule_names,
                    set_num_threads)
from .callbacks import History

# Every kind of layer, by its Keras name: Dense, Dropout, LayerNormalization, BatchNormalization,
# Embedding, RMSNormalization, ... (the engine lists them).
_LAYERS = {name: getattr(_core, name) for name in _core.layer_class_names()}
globals().update(_LAYERS)
Dense, Embedding = _LAYERS["Dense"], _LAYERS["Embedding"]  # named below
# Every loss, by its class name (MeanSquaredError, Huber, MeanAbsoluteError, CrossEntropy, ...), in
# the order of loss_names(); compile() also takes the names.
_LOSSES = {name: getattr(_core, cls) for name, cls in zip(loss_names(), _core.loss_class_names())}
globals().update({cls.__name__: cls for cls in _LOSSES.values()})
CrossEntropy = _LOSSES["crossentropy"]  # named below
# Every optimizer, by its class name (SGD, Adam, AdamW, RMSprop, ...), in optimizer_names()' order.
_OPTIMIZERS = {name: getattr(_core, cls) for name, cls in zip(optimizer_names(), _core.optimizer_class_names())}
globals().update({cls.__name__: cls for cls in _OPTIMIZERS.values()})
# Every learning-rate schedule (ConstantRate, StepDecay, CosineDecay, ReduceOnPlateau, ...), in
# schedule_names()' order.
_SCHEDULES = {name: getattr(_core, cls) for name, cls in zip(schedule_names(), _core.schedule_class_names())}
globals().update({cls.__name__: cls for cls in _SCHEDULES.values()})

__all__ = ["Sequential", *_LAYERS, *(cls.__name__ for cls in _OPTIMIZERS.values()),
           *(cls.__name__ for cls in _LOSSES.values()),
           *(cls.__name__ for cls in _SCHEDULES.values()), "History", "callbacks", "Error",
           "InputError", "DivergenceError", "activation_names", "layer_names", "loss_names", "optimizer_names",
           "schedule_names",
           "cuda_unavailable_reason", "describe_devices", "get_num_threads", "onnx_export_available",
           "set_num_threads"]
__version__ = "0.1.0"

# The names Keras gives the losses.
_LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "cross_entropy": "crossentropy",
                 "sparse_categorical_crossentropy": "crossentropy", "binary_crossentropy": "crossentropy"}


def _matrix(values, name):
    """values as a 2-D float32 C-ordered array: the same array when it already is one."""
    array = _np.asarray(values)
    if array.dtype == object or not (_np.issubdtype(array.dtype, _np.number) or array.dtype == bool):
        raise InputError(f"{name} must hold numbers, not {array.dtype}")
    if _np.iscomplexobj(array):
        raise InputError(f"{name} must hold real numbers, not complex ones")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise InputError(f"{name} must be 2-D (rows, columns), not {array.ndim}-D")
    return _np.ascontiguousarray(array, dtype=_np.float32)


def _weights(values, rows):
    """sample_weight as the engine reads it: float32, one finite weight of 0 or more per row."""
    weights = _np.asarray(values)
    if weights.dtype == object or not (_np.issubdtype(weights.dtype, _np.number) or weights.dtype == bool):
        raise InputError(f"sample_weight must hold numbers, not {weights.dtype}")
    weights = _np.ascontiguousarray(weights, dtype=_np.float32).reshape(-1) if weights.ndim <= 1 else weights
    if weights.ndim != 1 or len(weights) != rows:
        raise InputError(f"sample_weight has shape {_np.shape(values)}; it takes one weight per row of x: ({rows},)")
    bad = _np.flatnonzero(~(_np.isfinite(weights) & (weights >= 0)))
    if len(bad):
        raise InputError(f"sample_weight[{bad[0]}] is {weights[bad[0]]}: weights must be finite and 0 or more")
    return weights


def _is_frame(values):
    """A pandas DataFrame (or anything with its columns and to_csv)."""
    return hasattr(values, "columns") and hasattr(values, "to_csv")


def _pandas(values):
    """values, or the pandas DataFrame of a table of another library: Arrow data (pyarrow, polars,
    DuckDB: the Arrow PyCapsule interface, or to_pandas) and the dataframe interchange protocol
    (__dataframe__). Anything else (arrays, lists, Series) is returned as it is."""
    if _is_frame(values) or isinstance(values, _np.ndarray) or hasattr(values, "to_frame") or not (
            hasattr(values, "__arrow_c_stream__") or hasattr(values, "__dataframe__")
            or (hasattr(values, "to_pandas") and hasattr(values, "schema"))):
        return values
    import pandas
    if hasattr(values, "__arrow_c_stream__") and hasattr(pandas.DataFrame, "from_arrow"):
        return pandas.DataFrame.from_arrow(values)
    if hasattr(values, "to_pandas"):
        return values.to_pandas()
    import warnings
    with warnings.catch_warnings():  # pandas 3 deprecates the protocol in favour of Arrow's
        warnings.simplefilter("ignore")
        return pandas.api.interchange.from_dataframe(values)


def _names(columns, what):
    if columns is None:
        return []
    names = [columns] if isinstance(columns, str) else list(columns)
    if not all(isinstance(name, str) for name in names):
        raise InputError(f"{what} takes column names (strings), not {names!r}")
    return names


def _bins(bins):
    if isinstance(bins, bool) or not isinstance(bins, (int, _np.integer)) or bins < 0:
        raise InputError(f"bins={bins!r}: use 0 (off) or a count of bins per numeric column, 2 to 256")
    return int(bins)


def _frame_with_targets(x, y, target):
    """x with the targets as columns, and the targets' names: target names columns of x, or y's
    columns (a Series' name, a DataFrame's columns, else "target") are added."""
    if y is None:
        if target is None:
            raise InputError("fit on a DataFrame needs y or target=, the column(s) to predict")
        return x, _names(target, "target")
    if target is not None:
        raise InputError("give y or target=, not both")
    y = _pandas(y)
    if _is_frame(y):
        names = [str(c) for c in y.columns]
        columns = {name: y[c].to_numpy() for name, c in zip(names, y.columns)}
    else:
        values = _np.asarray(y)
        name = getattr(y, "name", None)
        names = [str(name) if name is not None else "target"]
        if values.ndim == 2 and values.shape[1] > 1:
            names = [f"target{i}" for i in range(values.shape[1])]
            columns = {n: values[:, i] for i, n in enumerate(names)}
        else:
            columns = {names[0]: values.reshape(-1)}
    for name in names:
        if name in x.columns:
            raise InputError(f"the target '{name}' is also a column of x; give target='{name}' instead of y")
    if any(len(v) != len(x) for v in columns.values()):
        raise InputError(f"y has {len(next(iter(columns.values())))} rows, x {len(x)}")
    return x.assign(**columns), names


class Sequential:
    """A stack of layers (Dense, Dropout, LayerNormalization, BatchNormalization, Embedding), as Keras'
    Sequential: compile, fit,
    evaluate, predict, save, load. Embedding(input_dim, output_dim, columns=0) is Keras' Embedding followed by
    Flatten over the last `columns` input columns (all when 0), which hold category indices; the other
    columns pass through before the vectors. It is the first layer."""

    def __init__(self, layers, seed=0):
        self._model = _core.Sequential(list(layers), seed)

    def compile(self, optimizer="sgd", loss="mse", device="auto", cpu_reference=False, row_invariant=False,
                clip_norm=0.0, schedule=None, **settings):
        """optimizer: "sgd", "adam", "adamw", "rmsprop" or an SGD/Adam/AdamW/RMSprop; loss: a name of
        loss_names() ("mse", "huber", "mae", "crossentropy") or a loss object; settings (lr or learning_rate, momentum, beta1, ...) go to
        the optimizer named by a string; device: "auto", "cpu" or "cuda". row_invariant: on the CPU,
        each row's prediction the same bits whatever rows come with it (built-in loops for the
        forward products rather than OpenBLAS), and training with the rows' weights inside float64
        sums over the batch (a step does not depend on its rows' order; a whole sample_weight gives
        the step of as many copies of the row). clip_norm > 0 scales the gradients down together
        before each update so that their L2 norm is at most clip_norm (torch's clip_grad_norm_).
        schedule: the rate's factor per epoch, a name of schedule_names() ("constant", "step",
        "cosine", "plateau", at its defaults) or an object: ConstantRate() (default), StepDecay,
        CosineDecay or ReduceOnPlateau (kept in checkpoints; epochs count on across fits)."""
        self._not_fitting("compile")
        if "learning_rate" in settings:  # Keras' name
            if "lr" in settings:
                raise InputError("give lr or learning_rate, not both")
            settings["lr"] = settings.pop("learning_rate")
        metrics = settings.pop("metrics", None)
        if isinstance(optimizer, str):
            if optimizer.lower() not in _OPTIMIZERS:
                raise InputError(f"optimizer '{optimizer}': use {', '.join(_OPTIMIZERS)}")
            optimizer = _OPTIMIZERS[optimizer.lower()](**settings)
        elif settings:
            raise InputError(f"settings {sorted(settings)} go with an optimizer given by name")
        if isinstance(loss, str):
            name = _LOSS_ALIASES.get(loss.lower(), loss.lower())
            if name not in _LOSSES:
                raise InputError(f"loss '{loss}': use {', '.join(loss_names())}")
            loss = _LOSSES[name]()
        _check_metrics(metrics, isinstance(loss, CrossEntropy))
        if schedule is None:
            schedule = "constant"
        if isinstance(schedule, str) and schedule.lower() in _SCHEDULES:
            schedule = _SCHEDULES[schedule.lower()]()
        elif not isinstance(schedule, tuple(_SCHEDULES.values())):
            spelled = ", ".join(f"ember.{cls.__name__}(...)" for cls in _SCHEDULES.values())
            raise InputError(f"schedule {schedule!r}: use {spelled} or a name of {', '.join(_SCHEDULES)}; for a "
                             f"function of the epoch, fit(callbacks=[ember.callbacks.LearningRateScheduler(f)])")
        self._model._compile(optimizer, loss, device, cpu_reference, row_invariant, float(clip_norm), schedule)
        return self

    def _not_fitting(self, what):
        """Inside fit's callbacks the model is being trained: it may be read and saved, not used."""
        if getattr(self, "_fitting", False):
            raise InputError(f"{what} while fit runs: a callback may read the weights (get_weights) and save the "
                             f"model, but {what} must wait until fit returns")

    @property
    def learning_rate(self):
        """The rate: inside fit's callbacks that of the current epoch (setting it trains this epoch
        and the following ones of the fit at that rate, as Keras' LearningRateScheduler does);
        outside, the optimizer's lr."""
        if getattr(self, "_fitting", False):
            return self._epoch_rate
        return self._model._base_rate

    @learning_rate.setter
    def learning_rate(self, rate):
        if not getattr(self, "_fitting", False):
            raise InputError("learning_rate is set inside fit's callbacks (for the epochs of that fit); set the "
                             "optimizer's rate with compile(learning_rate=...)")
        rate = float(rate)
        if not 0 <= rate < float("inf"):
            raise InputError(f"learning_rate {rate}: must be finite and 0 or more")
        self._epoch_rate = self._rate_set = rate

    def fit(self, x, y=None, epochs=1, batch_size=32, validation_split=0.0, shuffle=True, seed=None, normalize=True,
            early_stopping=None, min_delta=0.0, restore_best=True, verbose=1, checkpoint_every=0,
            checkpoint_path="", validation_rows="random", target=None, ignore=None, one_hot=None, numeric=None,
            missing=None, validation_data=None, callbacks=None, initial_epoch=0, sample_weight=None, bins=None,
            embed=None, steps=None, members=None, levels=None, compare_linear=False):
        """Trains; returns a History whose .history maps each figure to its list over the epochs.
        x: an array of numbers, or a pandas DataFrame read as `ember train` reads a CSV file (text
        columns are categories, missing cells filled; ignore, one_hot, numeric, missing and bins as
        its --ignore, --one-hot, --numeric, --missing and --bins: missing "fill" and bins 0 unless
        given, and for a model that already learned its columns, its one_hot, missing and bins; embed
        names categorical columns given to the model's first layer, Embedding(0, dim), as `ember
        train --embed` does; steps=True gives whole-number columns of 66 to 257 values a bin between
        each two values where bins is 0, and levels=True those with a bin between each two values an
        indicator per value too, as `ember train` does by default); its
        targets are y's columns or the columns
        named by target=. The model keeps the column names, so that predict and the CLI select
        them by name. validation_split: the fraction of rows held out, drawn at random with the
        seed (stratified by class for classification); validation_rows="last" holds out the last
        rows, as Keras does. validation_data: the rows to validate on instead of a split, as Keras
        takes them: (x_val, y_val) arrays, or for a DataFrame fit a DataFrame holding the target
        columns (or (frame, y)), preprocessed as the training rows taught. early_stopping: a
        patience in epochs (Keras' EarlyStopping on val_loss, else loss, restoring the whole state
        of the best epoch). callbacks: ember.callbacks objects (EarlyStopping, ModelCheckpoint,
        LearningRateScheduler, ...) or functions(epoch, logs). As Keras, epochs is the number of the
        last epoch and training starts at initial_epoch: it runs epochs - initial_epoch epochs,
        numbered from initial_epoch in callbacks, the display and History.epoch. verbose: 0 quiet, 1
        a progress bar per epoch, 2 one line per epoch. sample_weight: a weight (0 or more) per row
        of x: each step minimizes the weighted mean of its rows' losses (scikit-learn's meaning;
        the standardization counts each row its weight's times; the figures and the validation rows
        stay unweighted). members: the networks the model has after fit (None: as many as its earlier
        fits were given, 1 for a new model), trained one after another from seed(), seed() + 1, ...
        each validating on its own fold of the rows (the same rows with validation_rows="last" or
        validation_data); predict gives the mean of their outputs (a deep ensemble, as
        `ember train --members`). The callbacks and the display follow each network's epochs in turn;
        the History is the first network's. compare_linear=True (on a new model, with validation
        rows): also trains a linear model (the last layer alone) on the same rows, with plain SGD at
        its rate, and keeps it in place of the layers when its mean val_loss is lower, or both when
        a blend of their predictions validates lower still (linear_share: the linear model's share
        of each prediction), as `ember train` does without --layers; History.linear then holds the
        losses and what was kept."""
        self._not_fitting("fit")
        if members is not None and (isinstance(members, bool) or not isinstance(members, (int, _np.integer))
                                    or not 1 <= members <= 64):
            raise InputError(f"members={members!r}: must be a whole number from 1 to 64")
        if validation_rows not in ("random", "last"):
            raise InputError(f"validation_rows '{validation_rows}': use 'random' or 'last'")
        validation_x = validation_y = None
        x = _pandas(x)
        if isinstance(validation_data, tuple):
            validation_data = tuple(_pandas(part) for part in validation_data)
        else:
            validation_data = _pandas(validation_data)
        if _is_frame(x):
            frame, targets = _frame_with_targets(x, y, target)
            read = lambda rows: _core._Table.for_training(  # noqa: E731 (the training table's reading)
                self._model, rows.to_csv(index=False), targets, _names(ignore, "ignore"),
                None if one_hot is None else _names(one_hot, "one_hot"), _names(numeric, "numeric"),
                None if missing is None else str(missing), None if bins is None else _bins(bins),
                bool(self._model.classification), None if embed is None else _names(embed, "embed"),
                None if steps is None else bool(steps), None if levels is None else bool(levels))
            data = read(frame)
            labels = None
            if validation_data is not None:
                rows, rows_y = (validation_data if isinstance(validation_data, tuple) else (validation_data, None))
                if not _is_frame(rows):
                    raise InputError("validation_data for a DataFrame fit is a DataFrame (or (frame, y))")
                validation_x = read(_frame_with_targets(rows, rows_y, None if rows_y is not None else targets)[0])
        else:
            for name, value in (("target", target), ("ignore", ignore), ("one_hot", one_hot), ("numeric", numeric),
                                ("embed", embed)):
                if value is not None:
                    raise InputError(f"{name}= names columns of a DataFrame; x is an array")
            if bins or steps or levels:
                raise InputError(f"{'bins' if bins else 'steps' if steps else 'levels'}= encodes the numeric columns "
                                 f"of a DataFrame; x is an array")
            if y is None:
                raise InputError("fit on an array needs y, the targets")
            data, labels = _matrix(x, "x"), _matrix(y, "y")
            if validation_data is not None:
                if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                    raise InputError("validation_data for an array fit is a tuple (x_val, y_val)")
                validation_x, validation_y = _matrix(validation_data[0], "x_val"), _matrix(validation_data[1], "y_val")
        weights = None if sample_weight is None else _weights(sample_weight, len(x))
        return self._train(data, labels, epochs, batch_size, validation_split, validation_rows == "last", shuffle,
                           seed, normalize, early_stopping, min_delta, restore_best, verbose, checkpoint_every,
                           str(checkpoint_path), validation_x, validation_y, callbacks, initial_epoch, weights,
                           0 if members is None else int(members), bool(compare_linear))

    def _train(self, data, labels, epochs, batch_size, validation_split, validation_last, shuffle, seed, normalize,
               early_stopping, min_delta, restore_best, verbose, checkpoint_every, checkpoint_path, validation_x,
               validation_y, callbacks, initial_epoch, weights=None, members=0, compare_linear=False):
        """The engine's fit, with Keras' epoch numbering, callbacks and display around it."""
        if isinstance(epochs, bool) or not isinstance(epochs, (int, _np.integer)) or epochs < 0:
            raise InputError(f"epochs={epochs!r}: must be a whole number, 0 or more")
        if (isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, _np.integer))
                or not 0 <= initial_epoch <= epochs):
            raise InputError(f"initial_epoch={initial_epoch!r}: must be a whole number from 0 to epochs ({epochs}); "
                             f"fit trains epochs - initial_epoch epochs")
        epochs, initial_epoch = int(epochs), int(initial_epoch)
        callbacks = _callbacks._as_callbacks(callbacks)
        history = History()
        progress = _callbacks._Progress(verbose, epochs)
        params = {"epochs": epochs, "verbose": verbose}
        for callback in callbacks + [history]:
            callback.set_model(self)
            callback.set_params(params)
        before = self._model.epochs_completed if self._model.built else 0

        def index(epoch):  # the engine's epoch (from 1, across fits) as Keras numbers it in this fit
            return initial_epoch + epoch - before - 1

        def epoch_begin(epoch, rate):
            self._epoch_rate = rate if self._rate_set is None else self._rate_set
            progress.epoch_begin(index(epoch))
            for callback in callbacks:
                callback.on_epoch_begin(index(epoch), {})
            return self._epoch_rate

        def epoch_end(epoch, logs, batches, seconds):
            progress.epoch_end(index(epoch), logs, batches, seconds)
            for callback in callbacks:
                callback.on_epoch_end(index(epoch), dict(logs))
            return bool(self.stop_training)

        hooks = bool(callbacks) or verbose > 0
        self.stop_training = False
        self._rate_set = None
        for callback in callbacks:
            callback.on_train_begin({})
        self._fitting = True
        try:
            result = self._model._fit(data, labels, epochs - initial_epoch, batch_size, validation_split,
                                      validation_last, shuffle, seed, normalize, early_stopping, min_delta,
                                      restore_best, checkpoint_every, checkpoint_path, validation_x, validation_y,
                                      epoch_begin if hooks else None, epoch_end if hooks else None,
                                      progress.batch if progress.dynamic else None, weights, members,
                                      compare_linear)
        finally:
            self._fitting = False
        history.history = {name: list(values) for name, values in result.history.items()}
        history.epoch = [index(epoch) for epoch in result.epochs]
        history.best_epoch = None if result.best_epoch is None else index(result.best_epoch)
        history.stopped = result.stopped or ("stop requested" if self.stop_training else "")
        history.linear = None if result.linear is None else dict(result.linear)
        for callback in callbacks:
            callback.on_train_end({})
        return history

    def _data(self, x, y, with_targets):
        """x (and y) as the engine takes them: a DataFrame as a table of the model's columns, by name."""
        x = _pandas(x)
        if not _is_frame(x):
            return _matrix(x, "x"), (None if y is None else _matrix(y, "y"))
        if with_targets and y is not None:
            x, _ = _frame_with_targets(x, y, None)
        return _core._Table.for_model(self._model, x.to_csv(index=False), with_targets), None

    def predict(self, x, batch_size=1024):
        """Regression: the targets (rows, outputs) in original units. Classification: each class's
        probability (rows, classes). x: an array, or a DataFrame whose columns the model takes by
        name (in any order; others are ignored)."""
        self._not_fitting("predict")
        return self._model._predict(self._data(x, None, False)[0], batch_size)

    def predict_classes(self, x, batch_size=1024):
        """Classification: the index of each row's most likely class."""
        return _np.argmax(self.predict(x, batch_size), axis=1)

    def evaluate(self, x, y=None, batch_size=1024):
        """Regression: mse, mae, r2; classification: accuracy, log_loss, macro_f1, confusion. x: an
        array with y, or a DataFrame holding the model's target columns (or with y)."""
        self._not_fitting("evaluate")
        data, labels = self._data(x, y, True)
        return self._model._evaluate(data, labels, batch_size)

    def save(self, path):
        """Writes a safetensors checkpoint, as `ember train --save` (PyTorch loads it)."""
        self._model.save(str(path))

    def export_onnx(self, path):
        """Writes the model as one ONNX graph for ONNX Runtime and other runtimes (docs/deploying.md):
        a model trained on a DataFrame takes one (rows, 1) input per feature column, named after it
        (numbers as float32 with NaN for a missing cell, categories as strings), and applies the
        preprocessing it learned; one trained on arrays takes one float32 input "input". Outputs:
        "predictions" (regression, original units), or "label" and "probabilities"."""
        self._model.export_onnx(str(path))

    @classmethod
    def load(cls, path):
        """Reads a checkpoint written by save or by `ember train --save`."""
        model = cls.__new__(cls)
        model._model = _core.Sequential.load(str(path))
        return model

    # Keras' names of each tensor, by the checkpoint's (PyTorch's) name.
    _KERAS_NAMES = {"weight": "kernel", "bias": "bias", "running_mean": "moving_mean",
                    "running_var": "moving_variance"}

    def _keras_name(self, l, name):
        if isinstance(self._model.layers[l], Embedding):
            return "table"
        if not isinstance(self._model.layers[l], Dense):  # a normalization's scale and shift
            return {"weight": "gamma", "bias": "beta"}.get(name, self._KERAS_NAMES[name])
        return self._KERAS_NAMES[name]

    def get_weights(self):
        """Keras' layout, per layer with weights, as numpy copies: a Dense layer's kernel (inputs,
        units) and bias (units,) (kernel.T is torch.nn.Linear's weight, the checkpoint's
        layers.N.weight); a LayerNormalization's gamma and beta (width,); a BatchNormalization's
        gamma, beta, moving_mean and moving_variance (width,); an Embedding's table (input_dim,
        output_dim). Empty before the model is built."""
        arrays = []
        for l, tensors in self._model._get_weights():
            dense = isinstance(self._model.layers[l], Dense)
            for name, values in tensors:
                if dense and name == "weight":
                    arrays.append(_np.ascontiguousarray(values.T))
                elif values.shape[0] == 1 and not isinstance(self._model.layers[l], Embedding):
                    arrays.append(values.reshape(-1))
                else:
                    arrays.append(values)
        return arrays

    def set_weights(self, weights):
        """Sets what get_weights gives, in Keras' layout and order: per Dense layer its kernel
        (inputs, units), then its bias (units,) (or (1, units)); per LayerNormalization its gamma,
        then its beta (width,); per BatchNormalization its gamma, beta, moving_mean and
        moving_variance (width,); per Embedding its table (input_dim, output_dim). The model must be
        built (fit, or build(inputs))."""
        if not self._model.built:
            raise InputError("the model is not built yet: fit it, or build(inputs), before set_weights")
        current = self._model._get_weights()
        weights = list(weights)
        expected = [(l, name, values) for l, tensors in current for name, values in tensors]
        if len(weights) != len(expected):
            raise InputError(f"set_weights takes {len(expected)} arrays, as get_weights gives them (a Dense layer's "
                             f"kernel and bias, a LayerNormalization's gamma and beta, a BatchNormalization's "
                             f"gamma, beta, moving_mean and moving_variance, an Embedding's table), got {len(weights)}")
        checked = []  # every array first: a bad one changes nothing
        for given, (l, name, values) in zip(weights, expected):
            what = f"the {self._keras_name(l, name)} of layer {l}"
            dense = isinstance(self._model.layers[l], Dense)
            if dense and name == "weight":
                kernel = _matrix(given, what)
                if kernel.shape != values.T.shape:
                    raise InputError(f"{what} is {kernel.shape}; Keras' layout is (inputs, units): {values.T.shape}")
                array = _np.ascontiguousarray(kernel.T)
            elif values.shape[0] == 1 and not isinstance(self._model.layers[l], Embedding):
                array = _matrix(_np.reshape(given, (1, -1)), what)
                if array.size != values.size:
                    raise InputError(f"{what} has {array.size} values; it needs {values.size}")
            else:
                array = _matrix(given, what)
                if array.shape != values.shape:
                    raise InputError(f"{what} is {array.shape}; it must be (input_dim, output_dim): {values.shape}")
            checked.append((l, name, array))
        for l, name, array in checked:
            self._model._set_tensor(l, name, array)

    def build(self, inputs):
        """Allocates and initializes the weights for rows of `inputs` numbers (fit does it on first use)."""
        self._model.build(int(inputs))
        return self

    def count_params(self):
        """The number of weights and biases (a BatchNormalization's moving figures included, as
        Keras counts them); InputError before the model is built."""
        if not self._model.built:
            raise InputError("the model is not built yet: fit it, or build(inputs), before count_params")
        return self._model.parameter_count

    def summary(self, print_fn=print):
        """Prints each layer, its output width and parameter count, and the total (Keras' summary)."""
        name = max([24] + [len(repr(layer)) + 2 for layer in self._model.layers])
        lines = [f"{'Layer':<{name}}{'Output shape':<18}{'Param #':>10}"]
        width = self._model.input_width if self._model.built else None
        for l, layer in enumerate(self._model.layers):
            params = f"{self._model._layer_parameter_count(l):,}" if self._model.built else "?"
            if isinstance(layer, Dense):
                width = layer.units
            elif isinstance(layer, Embedding) and width is not None:
                columns = layer.columns or width
                width += columns * (layer.output_dim - 1)
            shape = "(None, " + str(width if width is not None else "?") + ")"
            lines.append(f"{repr(layer):<{name}}{shape:<18}{params:>10}")
        total = f"{self._model.parameter_count:,}" if self._model.built else "? (not built)"
        lines.append(f"Total params: {total}")
        if self._model.built:  # Keras' split: a BatchNormalization's moving figures are not trained
            state = sum(values.size for _, tensors in self._model._get_weights() for name, values in tensors
                        if name.startswith("running_"))
            lines.append(f"Trainable params: {self._model.parameter_count - state:,}")
            lines.append(f"Non-trainable params: {state:,}")
            if self._model.member_count > 1:
                lines.append(f"Members: {self._model.member_count} networks of these layers, whose predictions are "
                             f"averaged (the figures above are one network's)")
            if self._model.linear_share > 0:
                lines.append(f"Blend: the predictions are {1 - self._model.linear_share:g} times these layers' plus "
                             f"{self._model.linear_share:g} times a linear model's (compare_linear)")
        print_fn("\n".join(lines))

    def __getattr__(self, name):  # layers, built, epochs_completed, classes, backend_name, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model, name)

    def __reduce__(self):
        return (_from_bytes, (self._model._to_bytes(),))


# The figures fit records for each task, by the names Keras and scikit-learn give them.
_METRICS = {False: {"mae": "mae", "mean_absolute_error": "mae", "r2": "r2", "r2_score": "r2", "mse": "loss",
                    "mean_squared_error": "loss"},
            True: {"accuracy": "accuracy", "acc": "accuracy", "sparse_categorical_accuracy": "accuracy",
                   "binary_accuracy": "accuracy"}}


def _check_metrics(metrics, classification):
    """compile(metrics=[...]) as Keras takes it: fit records its task's figures whatever is asked
    (loss, mae and r2, or accuracy, and their val_ forms), so a name is checked, not added."""
    if metrics is None:
        return
    known = _METRICS[bool(classification)]
    for name in [metrics] if isinstance(metrics, str) else list(metrics):
        if not isinstance(name, str) or name.lower() not in known:
            raise InputError(f"metric {name!r}: a {'classification' if classification else 'regression'} model "
                             f"records {', '.join(sorted(set(known.values())))} (names: {', '.join(known)})")


def _from_bytes(data):
    model = Sequential.__new__(Sequential)
    model._model = _core.Sequential._from_bytes(data)
    return model
