"""scikit-learn estimators on Ember: EmberRegressor and EmberClassifier.

They drop into Pipeline, GridSearchCV and cross_val_score, and pass scikit-learn's estimator checks
(sklearn.utils.estimator_checks). A multilayer perceptron of hidden_layer_sizes (ReLU), trained by
Ember's engine. With no arguments they train what `ember train --data FILE --target y` trains on
the same table (the library's TableDefaults: SGD, 100 epochs, from 1,000 rows a validation split
with early stopping and SGD's momentum 0.9 with the gradients clipped to norm 5 (momentum="auto",
clip_norm="auto"), from 5,000 rows bins for a DataFrame's numbers, below that steps for its
whole-number codes, and 100,000 / rows networks averaged, 1 to 5: members="auto"), and with
random_state=S the same model as --seed S. members=K trains K networks (seeds S to S + K - 1) on
the same rows and predicts their mean, as `ember train --members K`; coefs_ and intercepts_ are
the first network's. compare_linear="auto" (for the default layers) also trains a linear model on
the same rows and keeps it where its mean validation loss is lower, or a blend of the two where
that validates lower still (model_.linear_share; coefs_ and intercepts_ stay the layers'), as
`ember train` without --layers does. Inputs and regression targets are standardized inside the model. embed
names a DataFrame's categorical columns to give a learned vector per category (`ember train
--embed`; an Embedding first, 8 values per category) rather than indicators. dropout
(0 by default) puts a Dropout layer of that rate after each hidden layer; layer_norm=True a
LayerNormalization, batch_norm=True a BatchNormalization after each hidden layer's activation
(before its Dropout).

A pandas DataFrame with text columns or missing cells is read as `ember train` reads a CSV file
(text columns as categories, gaps filled with indicators; docs/formats.md); the model then keeps
its column names (feature_names_in_) and takes DataFrames with those columns at predict.

save(path) writes the fitted model as an Ember checkpoint, which `ember predict` and `ember
evaluate` take (by column name when the estimator was fitted on a DataFrame), and load(path) gives
a fitted estimator back, also from a checkpoint that `ember train` wrote.

As scikit-learn's MLP: alpha is an L2 penalty on the weights, warm_start=True makes fit go on from
the fitted model, and partial_fit trains one epoch on the rows it is given.
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

try:  # scikit-learn 1.6 and later
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # older releases (Debian's): the estimator's own method
    def _validate_data(estimator, X="no_validation", y="no_validation", reset=True, **settings):
        return estimator._validate_data(X, y, reset=reset, **settings)

from . import BatchNormalization, Dense, Dropout, Embedding, LayerNormalization, Sequential, _core, _pandas
from . import _weights as _engine_weights

__all__ = ["EmberRegressor", "EmberClassifier"]

# `ember train`'s default for a table, from the library (ember::TableDefaults): the same model from
# the same table and seed.
_DEFAULTS = _core.table_defaults()


class _EmberEstimator(BaseEstimator):
    def __init__(self, hidden_layer_sizes=_DEFAULTS["hidden_layer_sizes"], activation="relu", optimizer="sgd",
                 lr=None, momentum="auto", epochs=_DEFAULTS["epochs"], batch_size=_DEFAULTS["batch_size"],
                 early_stopping="auto", validation_fraction=_DEFAULTS["default_validation_split"],
                 n_iter_no_change=_DEFAULTS["default_patience"], normalize=True, random_state=None, device="auto",
                 verbose=0, dropout=0.0, alpha=0.0, warm_start=False, layer_norm=False, bins="auto", embed=None,
                 batch_norm=False, members="auto", compare_linear="auto", clip_norm="auto"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.epochs = epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.normalize = normalize
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.dropout = dropout
        self.alpha = alpha
        self.warm_start = warm_start
        self.layer_norm = layer_norm
        self.bins = bins
        self.embed = embed
        self.batch_norm = batch_norm
        self.members = members
        self.compare_linear = compare_linear
        self.clip_norm = clip_norm

    def _is_table(self, X):
        """A DataFrame that only the table path reads: one with text columns or missing cells."""
        if not (hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "isna")):
            return False
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        numeric = all(is_numeric_dtype(dtype) or is_bool_dtype(dtype) for dtype in X.dtypes)
        return not numeric or bool(X.isna().to_numpy().any())

    def _stops_early(self, rows):
        """early_stopping as given, or "auto": as `ember train`, from TableDefaults' row count."""
        if isinstance(self.early_stopping, str):
            if self.early_stopping != "auto":
                raise ValueError(f"early_stopping={self.early_stopping!r}: use True, False or 'auto'")
            return _core.table_defaults(int(rows))["validation_split"] > 0
        return bool(self.early_stopping)

    def _compares_linear(self):
        """compare_linear as given, or "auto": as `ember train` without --layers, for the default
        layers (no dropout, normalization or embedding)."""
        if isinstance(self.compare_linear, str):
            if self.compare_linear != "auto":
                raise ValueError(f"compare_linear={self.compare_linear!r}: use True, False or 'auto'")
            sizes = self.hidden_layer_sizes
            return (list([sizes] if np.isscalar(sizes) else sizes) == list(_DEFAULTS["hidden_layer_sizes"])
                    and self.activation == "relu" and not self.dropout and not self.layer_norm
                    and not self.batch_norm and not self.embed)
        return bool(self.compare_linear)

    def _by_size(self, name, rows):
        """A setting as given, or "auto": as `ember train`, TableDefaults' for this many rows."""
        value = getattr(self, name)
        if isinstance(value, str):
            if value != "auto":
                raise ValueError(f"{name}={value!r}: use 'auto' or a number, 0 or more")
            return float(_core.table_defaults(int(rows))[name])
        if not (np.isscalar(value) and float(value) >= 0):
            raise ValueError(f"{name}={value!r}: use 'auto' or a number, 0 or more")
        return float(value)

    def _members(self, rows):
        """members as given, or "auto": as `ember train`, from TableDefaults' row count."""
        if isinstance(self.members, str):
            if self.members != "auto":
                raise ValueError(f"members={self.members!r}: use 'auto' or 1 to 64")
            return _core.table_defaults(int(rows))["members"]
        if isinstance(self.members, bool) or not isinstance(self.members, (int, np.integer)) or not 1 <= self.members <= 64:
            raise ValueError(f"members={self.members!r}: use 'auto' or 1 to 64")
        return int(self.members)

    def _bins(self, rows):
        """bins as given, or "auto": as `ember train`, from TableDefaults' row count."""
        if isinstance(self.bins, str):
            if self.bins != "auto":
                raise ValueError(f"bins={self.bins!r}: use 'auto', 0 (off) or 2 to 256")
            return _core.table_defaults(int(rows))["bins"]
        if isinstance(self.bins, bool) or not isinstance(self.bins, (int, np.integer)):
            raise ValueError(f"bins={self.bins!r}: use 'auto', 0 (off) or 2 to 256")
        return int(self.bins)

    def _levels(self, rows):
        """With bins="auto", an indicator per value of whole-number codes, as `ember train` gives them."""
        return self.bins == "auto" and bool(_core.table_defaults(int(rows))["levels"])

    def _steps(self, rows):
        """With bins="auto", the steps of whole-number codes as `ember train` gives them; else none."""
        return self.bins == "auto" and bool(_core.table_defaults(int(rows))["steps"])

    def _reads_as_table(self, X, incremental):
        """Whether X goes through the table reading that `ember train` uses: a DataFrame with text or
        gaps, or one of numbers whose columns get bins or steps (partial_fit and a warm start keep the kind
        of the first fit)."""
        if self._is_table(X) or (self.embed and hasattr(X, "to_csv")):
            return True
        if not hasattr(X, "columns") or not hasattr(X, "to_csv"):
            if self.embed:
                raise ValueError(f"embed={self.embed!r} names columns of a DataFrame; X is an array")
            if not isinstance(self.bins, str) and self._bins(len(X)) > 0:
                raise ValueError(f"bins={self.bins}: bins encode the numeric columns of a DataFrame; X is an "
                                 f"array (give a DataFrame, or bins=0)")
            return False
        if hasattr(self, "model_") and (incremental or self.warm_start):
            return self._table
        return not incremental and (self._bins(len(X)) > 0 or self._steps(len(X)))

    def _frame(self, X):
        """X for a model trained on a table: a DataFrame (its columns by name), or an array of its columns in order."""
        if hasattr(X, "columns"):
            return X
        import pandas as pd

        X = np.asarray(X, dtype=object)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names_in_):
            raise ValueError(f"X has {X.shape[-1] if X.ndim == 2 else X.ndim} columns; the model was fitted on a "
                             f"DataFrame of {len(self.feature_names_in_)}: {list(self.feature_names_in_)}")
        return pd.DataFrame(X, columns=self.feature_names_in_)

    def _layers(self, outputs, seed):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if np.isscalar(sizes) else list(sizes)
        # scikit-learn's MLP names two activations its own way; every Ember name works too.
        activation = {"identity": "linear", "logistic": "sigmoid"}.get(self.activation, self.activation)
        # After each hidden layer a LayerNormalization and a Dropout layer, as asked.
        rate = float(self.dropout)
        hidden = [[Dense(int(units), activation)] + ([LayerNormalization()] if self.layer_norm else []) +
                  ([BatchNormalization()] if self.batch_norm else []) +
                  ([Dropout(rate)] if rate > 0 else []) for units in sizes]
        # embed: the named columns' categories as learned vectors, a first layer sized by the table.
        first = [Embedding(0, _DEFAULTS["embedding_dim"])] if self.embed else []
        return first + [layer for group in hidden for layer in group] + [Dense(outputs)]

    def _compiled(self, outputs, loss, seed, rows):
        """A new model of the estimator's layers, compiled with its optimizer, L2 penalty and clipping
        (momentum and clip_norm "auto": TableDefaults' for this many rows)."""
        if not (np.isscalar(self.alpha) and float(self.alpha) >= 0):
            raise ValueError(f"alpha={self.alpha!r}: the L2 penalty must be a number, 0 or more")
        model = Sequential(self._layers(outputs, seed), seed=seed)
        # scikit-learn's MLP adds alpha * W / batch rows to the gradient of its loss, whose squared
        # error is halved: as a weight decay on Ember's mean squared error, twice that.
        decay = float(self.alpha) / int(self.batch_size) * (2.0 if loss == "mse" else 1.0)
        settings = {"weight_decay": decay}
        if self.lr is not None:  # else the optimizer's own default (SGD's 0.01, Adam's 0.001, ...)
            settings["lr"] = float(self.lr)
        if str(self.optimizer).lower() == "sgd":
            settings["momentum"] = self._by_size("momentum", rows)
        model.compile(optimizer=self.optimizer, loss=loss, device=self._training_device(rows),
                      row_invariant=self._one_batch(rows), clip_norm=self._by_size("clip_norm", rows), **settings)
        return model

    def _one_batch(self, rows):
        """Whether one batch holds every row: training then runs on the CPU's row-invariant path,
        where a step is a function of its rows as a set (weights inside its float64 sums), so that
        the rows' order does not matter and a weight of k trains the model of k copies of the row."""
        return int(rows) <= int(self.batch_size)

    def _training_device(self, rows):
        """device as given; "auto" is the CPU where one batch holds every row (a GPU gains nothing on
        so few rows, and the CPU's row-invariant path makes the step a function of its rows)."""
        return "cpu" if self.device == "auto" and self._one_batch(rows) else self.device

    def _continues(self, incremental, table=False):
        """Whether this fit goes on from the fitted model (partial_fit, or fit with warm_start): one
        fitted on the same kind of data (arrays, or a DataFrame read as a table)."""
        return hasattr(self, "model_") and (incremental or self.warm_start) and self._table == table

    def _train(self, X, targets, outputs, loss, table=False, target_names=(), incremental=False, sample_weight=None):
        """Trains on an array, or (table) on a DataFrame with text or gaps through the engine's
        table reading, which keeps its column names. incremental: one epoch, as partial_fit."""
        # A whole-number random_state is the engine's seed itself (`ember train --seed`).
        seed = (int(self.random_state) if isinstance(self.random_state, (int, np.integer)) else
                int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max)))
        if self._continues(incremental, table):
            model = self.model_
            if model.output_width != outputs:
                raise ValueError(f"y has {outputs} outputs; the fitted model has {model.output_width}: fit it "
                                 f"anew (warm_start=False)")
            row_invariant = self._one_batch(len(X))
            if (model.backend_name == "cpu (row-invariant)") != row_invariant:
                model._model._recompile(self._training_device(len(X)), False, row_invariant)
        else:
            model = self._compiled(outputs, loss, seed, len(X))
            self.loss_curve_ = []
            self.n_iter_ = 0
            self._scores = []
        if table:
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            self.n_features_in_ = len(self.feature_names_in_)
        # The validation rows are drawn at random (per class for a classifier), as scikit-learn's MLP draws them.
        stopping = self._stops_early(len(X)) and not incremental
        # A new model: its bins (a table fit) and members; a model that goes on keeps its own.
        fresh = model is not getattr(self, "model_", None)
        bins = ({"bins": self._bins(len(X)), "steps": self._steps(len(X)), "levels": self._levels(len(X))}
                if table and fresh else {})
        if bins and self.embed:
            bins["embed"] = [self.embed] if isinstance(self.embed, str) else list(self.embed)
        history = model.fit(X, targets, epochs=1 if incremental else int(self.epochs),
                            batch_size=int(self.batch_size),
                            validation_split=float(self.validation_fraction) if stopping else 0.0,
                            early_stopping=int(self.n_iter_no_change) if stopping else None,
                            normalize=bool(self.normalize), verbose=int(self.verbose), seed=seed,
                            sample_weight=sample_weight, members=self._members(len(X)) if fresh else None,
                            compare_linear=fresh and self._compares_linear(),
                            **bins)
        if not table and hasattr(self, "feature_names_in_"):
            # A DataFrame of numbers: its column names go into the checkpoint, so that the CLI
            # selects the columns of a CSV file by name.
            model._model._set_column_names([str(c) for c in self.feature_names_in_], list(target_names))
        self.model_ = model
        self._table = table
        # As scikit-learn's MLP: the epochs run (the weights are the best epoch's with early
        # stopping), and with early stopping the validation *score* per epoch (R^2 or accuracy,
        # higher is better) and its best; without it, the lowest training loss. A warm start or
        # partial_fit adds to them.
        self.loss_curve_ = self.loss_curve_ + list(history.history.get("loss", []))
        self.n_iter_ += len(history.epoch)
        score = "val_accuracy" if loss == "crossentropy" else "val_r2"
        self._scores = self._scores + list(history.history.get(score, []))
        if stopping and self._scores:
            self.validation_scores_ = list(self._scores)
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None
        self._set_weights_attributes()
        return self

    def _set_weights_attributes(self):
        """coefs_[i] (inputs, units) and intercepts_[i] (units,) of each Dense layer, as scikit-learn's
        MLP lays them out (Keras' layout, get_weights'); a LayerNormalization's are not among them."""
        dense = [(dict(tensors)["weight"], dict(tensors)["bias"]) for l, tensors in self.model_._model._get_weights()
                 if isinstance(self.model_.layers[l], Dense)]
        self.coefs_ = [np.asarray(w.T, dtype=np.float64) for w, _ in dense]
        self.intercepts_ = [np.asarray(b, dtype=np.float64).ravel() for _, b in dense]
        self.n_layers_ = len(self.coefs_) + 1
        self.n_outputs_ = self.coefs_[-1].shape[1]

    def save(self, path):
        """Writes the fitted model as an Ember checkpoint (docs/formats.md), through a temporary file."""
        check_is_fitted(self, "model_")
        self.model_.save(path)

    def export_onnx(self, path):
        """Writes the fitted model as one ONNX graph, preprocessing included (Sequential.export_onnx)."""
        check_is_fitted(self, "model_")
        self.model_.export_onnx(path)

    @classmethod
    def load(cls, path, **params):
        """A fitted estimator from a checkpoint written by save() or by `ember train --save`; params
        set its hyperparameters (device=..., for instance) for predictions and any later fit."""
        model = Sequential.load(path)
        if bool(model.classification) != (cls is EmberClassifier):
            raise ValueError(f"{path}: a {'classification' if model.classification else 'regression'} model; load "
                             f"it with {'EmberClassifier' if model.classification else 'EmberRegressor'}")
        estimator = cls(**params)
        estimator.model_ = model
        names = model.feature_names
        # A model that names its columns takes them by name (a table's, as the CLI reads one).
        estimator._table = bool(names)
        if names:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        estimator.n_features_in_ = len(names) if names else model.input_width
        estimator.n_iter_ = model.epochs_completed
        estimator.loss_curve_ = []
        estimator._scores = []
        estimator._set_weights_attributes()
        estimator._loaded(model)
        return estimator

    def _predictor(self):
        """The fitted model, ready to predict. A row's prediction must not depend on the other rows
        predicted with it (scikit-learn checks it), and OpenBLAS rounds a row's products by its place
        in its blocks: on the CPU, predictions come from Ember's row-invariant loops for the forward
        products (a model trained on OpenBLAS is compiled so at the first predict)."""
        check_is_fitted(self, "model_")
        name = self.model_.backend_name  # empty until first used (a model just unpickled)
        if name not in ("cpu (row-invariant)", "cpu (reference)") and not name.startswith("cuda"):
            self.model_._model._recompile(self.device, False, True)
        return self.model_


class EmberRegressor(RegressorMixin, _EmberEstimator):
    """Regression by an MLP (MSE loss); y of one or several columns; float64 predictions."""

    def fit(self, X, y, sample_weight=None):
        """Trains for `epochs` epochs: a new model, or with warm_start the fitted one further.
        sample_weight: a weight per row; each step minimizes the weighted mean of its rows' losses."""
        return self._fit(X, y, False, sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on these rows, from the fitted model (a new one at the first call, whose rows
        set the standardization)."""
        return self._fit(X, y, True, sample_weight)

    def _fit(self, X, y, incremental, sample_weight):
        X = _pandas(X)
        if self._reads_as_table(X, incremental):
            self._y_ndim = np.ndim(y)
            return self._train(X, np.asarray(y, dtype=np.float32), 1 if np.ndim(y) == 1 else np.shape(y)[1], "mse",
                               table=True, incremental=incremental, sample_weight=_weights(sample_weight, X))
        # A pandas Series or DataFrame names the targets: `ember evaluate` then finds them in a CSV file.
        names = [str(y.name)] if getattr(y, "name", None) is not None else [str(c) for c in getattr(y, "columns", [])]
        X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float32,
                              reset=not self._continues(incremental))
        self._y_ndim = np.ndim(y)
        targets = np.asarray(y, dtype=np.float32).reshape(X.shape[0], -1)
        return self._train(X, targets, targets.shape[1], "mse",
                           target_names=names if len(names) == targets.shape[1] else [], incremental=incremental,
                           sample_weight=_weights(sample_weight, X))

    def predict(self, X):
        model = self._predictor()
        X = _pandas(X)
        X = self._frame(X) if self._table else _validate_data(self, X, reset=False, dtype=np.float32)
        prediction = model.predict(X).astype(np.float64)
        return prediction.ravel() if self._y_ndim == 1 else prediction

    def _loaded(self, model):
        self._y_ndim = 1 if model.output_width == 1 else 2

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self):  # scikit-learn before 1.6
        return {"multioutput": True}


class EmberClassifier(ClassifierMixin, _EmberEstimator):
    """Classification by an MLP with softmax cross-entropy (one logit and the binary loss for two
    classes); any labels (numbers or strings); float64 probabilities."""

    def fit(self, X, y, sample_weight=None):
        """Trains for `epochs` epochs: a new model, or with warm_start the fitted one further.
        sample_weight: a weight per row; each step minimizes the weighted mean of its rows' losses."""
        return self._fit(X, y, None, False, sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on these rows, from the fitted model. The first call needs classes, every label
        that any call will see (as scikit-learn's partial_fit); its rows set the standardization."""
        if not hasattr(self, "model_"):
            if classes is None:
                raise ValueError("the first call to partial_fit needs classes=, every label y may hold")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={list(classes)} differs from the classes of the first call: "
                             f"{list(self.classes_)}")
        return self._fit(X, y, classes, True, sample_weight)

    def _fit(self, X, y, classes, incremental, sample_weight):
        X = _pandas(X)
        weights = _weights(sample_weight, X)
        if self._reads_as_table(X, incremental):
            if incremental:
                raise ValueError("partial_fit takes arrays or DataFrames of numbers without gaps; fit reads "
                                 "DataFrames with text columns or missing cells")
            if self._continues(False, True):
                self._train(X, np.asarray(y), self.model_.output_width, "crossentropy", table=True,
                            sample_weight=weights)
                return self
            y = np.asarray(y)
            check_classification_targets(y)
            self.classes_ = np.unique(y)
            _two_weighted_classes(y, weights)
            if len(self.classes_) < 2:
                raise ValueError(f"EmberClassifier needs samples of at least 2 classes; the data has one class: "
                                 f"{self.classes_[0]!r}")
            self._train(X, y, 1 if len(self.classes_) == 2 else len(self.classes_), "crossentropy", table=True,
                        sample_weight=weights)
            # The engine sorts labels as np.unique does (by value for numbers, by code point for text).
            if [str(c) for c in self.classes_] != list(self.model_.classes):
                raise ValueError(f"the classes {list(self.classes_)} were read as {list(self.model_.classes)}")
            return self
        continues = self._continues(incremental)
        X, y = _validate_data(self, X, y, dtype=np.float32, reset=not continues)
        check_classification_targets(y)
        if not continues:
            self.classes_ = np.unique(y if classes is None else classes)
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(f"y holds labels the model does not know: {list(unknown)[:5]}; its classes are "
                             f"{list(self.classes_)}" + ("" if incremental else "; fit it anew (warm_start=False)"))
        indices = np.searchsorted(self.classes_, y)
        _two_weighted_classes(y, weights)
        if len(self.classes_) < 2:
            raise ValueError(f"EmberClassifier needs samples of at least 2 classes; the data has one class: "
                             f"{self.classes_[0]!r}")
        outputs = 1 if len(self.classes_) == 2 else len(self.classes_)
        self._train(X, indices.astype(np.float32).reshape(-1, 1), outputs, "crossentropy", incremental=incremental,
                    sample_weight=weights)
        # The labels themselves travel with the model (checkpoints, the CLI, ONNX export).
        self.model_.set_classes([str(c) for c in self.classes_])
        return self

    def _loaded(self, model):
        self.classes_ = np.asarray([_label(c) for c in model.classes])

    def predict_proba(self, X):
        model = self._predictor()
        X = _pandas(X)
        X = self._frame(X) if self._table else _validate_data(self, X, reset=False, dtype=np.float32)
        probabilities = model.predict(X).astype(np.float64)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict(self, X):
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _weights(sample_weight, X):
    """sample_weight checked as scikit-learn checks it (one per row of X), then as the engine takes
    it (float32, finite, 0 or more); or None."""
    if sample_weight is None:
        return None
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
    return _engine_weights(weights, len(weights))


def _two_weighted_classes(y, weights):
    """A ValueError naming the class when weights leave rows of one class only."""
    if weights is None:
        return
    kept = np.unique(np.asarray(y)[weights > 0])
    if len(kept) < 2:
        left = "no class" if len(kept) == 0 else f"one class: {getattr(kept[0], 'item', lambda: kept[0])()!r}"
        raise ValueError(f"EmberClassifier needs rows of at least 2 classes with a weight above 0; sample_weight "
                         f"leaves {left}")


def _label(text):
    """A class label as a checkpoint stores it (text), back as the number it spells, if it does."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
