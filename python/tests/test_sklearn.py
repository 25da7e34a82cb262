"""The scikit-learn estimators: scikit-learn's own estimator checks, with no expected failures, and
the tools they are meant for."""
import os
import re
import subprocess

import numpy as np
import pickle
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import ember
import ember.sklearn
from ember.sklearn import EmberClassifier, EmberRegressor


@parametrize_with_checks([EmberRegressor(), EmberClassifier()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_and_cross_validation():
    x, y = load_iris(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), EmberClassifier(hidden_layer_sizes=(16,), epochs=50, optimizer="adam",
                                                               lr=0.01, random_state=0, device="cpu"))
    scores = cross_val_score(pipeline, x, y, cv=3)
    assert scores.mean() > 0.85, scores
    x, y = load_diabetes(return_X_y=True)
    scores = cross_val_score(EmberRegressor(hidden_layer_sizes=(32,), epochs=100, lr=0.01, early_stopping=True,
                                            random_state=0, device="cpu"), x, y, cv=3)
    assert scores.mean() > 0.3, scores


def test_pandas_names_targets_and_labels():
    pandas = pytest.importorskip("pandas")
    x, y = load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = EmberClassifier(epochs=30, optimizer="adam", lr=0.01, random_state=0, device="cpu").fit(x, names)
    assert list(model.feature_names_in_) == list(x.columns)
    assert set(model.predict(x)) <= set(names) and model.score(x, names) > 0.9
    assert model.predict_proba(x).dtype == np.float64
    two = EmberRegressor(epochs=20, random_state=0, device="cpu").fit(x, np.column_stack([y, 2 * y]))
    assert two.predict(x).shape == (150, 2)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(x), model.predict_proba(x))
    assert isinstance(x, pandas.DataFrame)


def test_estimators_take_every_activation():
    rng = np.random.RandomState(3)
    x = rng.randn(120, 3)
    y = x[:, 0] - 2 * x[:, 1]
    for name in ember.activation_names() + ["identity", "logistic"]:  # scikit-learn's names too
        model = EmberRegressor(hidden_layer_sizes=(16,), activation=name, epochs=30, lr=0.01, random_state=0,
                               device="cpu").fit(x, y)
        assert model.score(x, y) > 0.5, name


def test_estimators_predict_row_invariant_on_the_fast_path():
    # A row's prediction is the same bits alone, in any batch, or among all rows, and the model
    # predicts on Ember's row-invariant loops, not on the float64 reference.
    x, y = load_diabetes(return_X_y=True)
    model = EmberRegressor(hidden_layer_sizes=(64, 33), epochs=5, random_state=0, device="cpu").fit(x, y)
    assert model.model_.backend_name == "cpu"  # trained on OpenBLAS
    whole = model.predict(x)
    assert model.model_.backend_name == "cpu (row-invariant)"
    for batch in (1, 5, 64):
        np.testing.assert_array_equal(np.concatenate([model.predict(x[i:i + batch]) for i in range(0, len(x), batch)]),
                                      whole)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(x), whole)


def test_estimators_put_dropout_and_layer_norm_after_each_hidden_layer():
    x, y = load_diabetes(return_X_y=True)
    model = EmberRegressor(hidden_layer_sizes=(32, 16), dropout=0.2, epochs=40, lr=0.01, random_state=0,
                           device="cpu").fit(x, y)
    assert [repr(layer) for layer in model.model_.layers] == [
        "Dense(32, 'relu')", "Dropout(0.2)", "Dense(16, 'relu')", "Dropout(0.2)", "Dense(1, 'linear')"]
    assert model.score(x, y) > 0.3
    plain = EmberRegressor(hidden_layer_sizes=(32, 16), epochs=1, random_state=0, device="cpu").fit(x, y)
    assert len(plain.model_.layers) == 3
    normed = EmberRegressor(hidden_layer_sizes=(32, 16), layer_norm=True, dropout=0.1, epochs=40, lr=0.01,
                            random_state=0, device="cpu").fit(x, y)
    assert [repr(layer) for layer in normed.model_.layers] == [
        "Dense(32, 'relu')", "LayerNorm(1e-05)", "Dropout(0.1)", "Dense(16, 'relu')", "LayerNorm(1e-05)",
        "Dropout(0.1)", "Dense(1, 'linear')"]
    assert normed.score(x, y) > 0.3
    # coefs_ and intercepts_ are the Dense layers' alone, as scikit-learn's MLP has them.
    assert [c.shape for c in normed.coefs_] == [(10, 32), (32, 16), (16, 1)]
    assert [b.shape for b in normed.intercepts_] == [(32,), (16,), (1,)]
    np.testing.assert_array_equal(normed.coefs_[1], normed.model_.get_weights()[4])
    batched = EmberClassifier(hidden_layer_sizes=(16,), batch_norm=True, epochs=30, optimizer="adam", lr=0.01,
                              random_state=0, device="cpu").fit(*load_iris(return_X_y=True))
    assert [repr(layer) for layer in batched.model_.layers] == [
        "Dense(16, 'relu')", "BatchNormalization(momentum=0.9, epsilon=1e-05)", "Dense(3, 'linear')"]
    assert batched.score(*load_iris(return_X_y=True)) > 0.9
    assert [c.shape for c in batched.coefs_] == [(4, 16), (16, 3)]


def test_dataframes_with_text_and_gaps():
    pd = pytest.importorskip("pandas")
    rows = 150
    colours, kinds = ["red", "green", "blue"], ["apple", "pear", "plum"]
    frame = pd.DataFrame({
        "colour": [None if i % 13 == 0 else colours[i % 3] for i in range(rows)],
        "size": [np.nan if i % 11 == 0 else 1.5 + (i % 4) for i in range(rows)],
        "weight": [2.0 * (i % 3) + 0.1 * (i % 5) for i in range(rows)],
    })
    kind = pd.Series([kinds[i % 3] for i in range(rows)], name="kind")
    classifier = EmberClassifier(hidden_layer_sizes=(16,), epochs=30, lr=0.01, random_state=0, device="cpu")
    classifier.fit(frame, kind)
    assert list(classifier.classes_) == kinds and list(classifier.feature_names_in_) == ["colour", "size", "weight"]
    assert classifier.score(frame, kind) > 0.9
    # Columns by name; an array of the same columns in order gives the same answer.
    np.testing.assert_array_equal(classifier.predict(frame[["weight", "size", "colour"]]), classifier.predict(frame))
    np.testing.assert_allclose(classifier.predict_proba(frame.to_numpy()), classifier.predict_proba(frame))
    again = pickle.loads(pickle.dumps(classifier))
    np.testing.assert_array_equal(again.predict_proba(frame), classifier.predict_proba(frame))
    # Whole-number labels come back as they were given.
    numbers = EmberClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0, device="cpu")
    assert list(numbers.fit(frame, np.arange(rows) % 2 + 3).classes_) == [3, 4]
    assert set(numbers.predict(frame)) <= {3, 4}
    regressor = EmberRegressor(hidden_layer_sizes=(16,), epochs=30, lr=0.01, random_state=0, device="cpu")
    target = frame["weight"] * 2 + (frame["colour"] == "red")
    regressor.fit(frame, target)
    assert regressor.predict(frame).shape == (rows,)
    assert regressor.score(frame, target) > 0.8


def fruit(rows=150):
    pd = pytest.importorskip("pandas")
    colours, kinds = ["red", "green", "blue"], ["apple", "pear", "plum"]
    frame = pd.DataFrame({
        "colour": [None if i % 13 == 0 else colours[i % 3] for i in range(rows)],
        "size": [np.nan if i % 11 == 0 else 1.5 + (i % 4) for i in range(rows)],
        "weight": [2.0 * (i % 3) + 0.1 * (i % 5) for i in range(rows)],
    })
    return frame, pd.Series([kinds[i % 3] for i in range(rows)], name="kind")


def test_save_and_load_give_the_fitted_estimator_back(tmp_path):
    frame, kind = fruit()
    classifier = EmberClassifier(hidden_layer_sizes=(16,), epochs=20, lr=0.01, random_state=0, device="cpu")
    classifier.fit(frame, kind).save(tmp_path / "fruit.safetensors")
    loaded = EmberClassifier.load(tmp_path / "fruit.safetensors")
    assert list(loaded.classes_) == list(classifier.classes_)
    assert list(loaded.feature_names_in_) == list(classifier.feature_names_in_) and loaded.n_features_in_ == 3
    np.testing.assert_array_equal(loaded.predict_proba(frame), classifier.predict_proba(frame))
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), classifier.predict(frame))
    # Whole-number labels come back as numbers; arrays without names take their columns in order.
    x, y = load_iris(return_X_y=True)
    numbers = EmberClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0, device="cpu").fit(x, y)
    numbers.save(tmp_path / "iris.safetensors")
    again = EmberClassifier.load(tmp_path / "iris.safetensors")
    assert list(again.classes_) == [0, 1, 2] and again.n_features_in_ == 4
    np.testing.assert_array_equal(again.predict(x), numbers.predict(x))
    regressor = EmberRegressor(hidden_layer_sizes=(8,), epochs=5, random_state=0, device="cpu").fit(x, x[:, 0])
    regressor.save(tmp_path / "regression.safetensors")
    np.testing.assert_array_equal(EmberRegressor.load(tmp_path / "regression.safetensors").predict(x),
                                  regressor.predict(x))
    # Labels an array fit trains on as class indices: the model and its checkpoint keep the labels.
    species = np.array(["setosa", "versicolor", "virginica"])[y]
    named = EmberClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0, device="cpu").fit(x, species)
    assert named.model_.classes == ["setosa", "versicolor", "virginica"]
    named.save(tmp_path / "species.safetensors")
    loaded = EmberClassifier.load(tmp_path / "species.safetensors")
    assert list(loaded.classes_) == ["setosa", "versicolor", "virginica"]
    np.testing.assert_array_equal(loaded.predict(x), named.predict(x))
    if os.environ.get("EMBER_CLI"):  # and the CLI predicts the labels, the columns taken in order
        np.savetxt(tmp_path / "iris.csv", x, delimiter=",", header="a,b,c,d", comments="")
        subprocess.run([os.environ["EMBER_CLI"], "predict", "--model", str(tmp_path / "species.safetensors"),
                        "--data", str(tmp_path / "iris.csv"), "--out", str(tmp_path / "species.csv"), "--device",
                        "cpu", "--quiet"], check=True)
        with open(tmp_path / "species.csv") as f:
            labels = [line.split(",")[0] for line in f.read().splitlines()[1:]]
        assert labels == list(named.predict(x))
    with pytest.raises(ValueError, match="a regression model; load it with EmberRegressor"):
        EmberClassifier.load(tmp_path / "regression.safetensors")
    with pytest.raises(Exception, match="not fitted"):
        EmberRegressor().save(tmp_path / "unfitted.safetensors")


@pytest.mark.skipif(not os.environ.get("EMBER_CLI"), reason="EMBER_CLI names the ember binary (set by ctest)")
def test_estimator_models_and_cli_models_predict_alike(tmp_path):
    pd = pytest.importorskip("pandas")
    cli = os.environ["EMBER_CLI"]
    # An estimator fitted on a DataFrame of numbers: the CLI selects the CSV's columns by name.
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    regressor = EmberRegressor(hidden_layer_sizes=(16,), epochs=10, random_state=0, device="cpu").fit(x, y)
    regressor.save(tmp_path / "diabetes.safetensors")
    shuffled = x[list(reversed(x.columns))].assign(note="ignored")
    shuffled.to_csv(tmp_path / "diabetes.csv", index=False)
    subprocess.run([cli, "predict", "--model", str(tmp_path / "diabetes.safetensors"), "--data",
                    str(tmp_path / "diabetes.csv"), "--out", str(tmp_path / "predicted.csv"), "--device", "cpu"],
                   check=True, capture_output=True)
    predicted = pd.read_csv(tmp_path / "predicted.csv")
    np.testing.assert_allclose(predicted["target_predicted"].to_numpy(), regressor.predict(x), rtol=1e-4, atol=1e-4)
    # The target's name is kept too: `ember evaluate` finds it in the file.
    shuffled.assign(target=y).to_csv(tmp_path / "diabetes_with_target.csv", index=False)
    evaluated = subprocess.run([cli, "evaluate", "--model", str(tmp_path / "diabetes.safetensors"), "--data",
                                str(tmp_path / "diabetes_with_target.csv"), "--device", "cpu"],
                               check=True, capture_output=True, text=True)
    r2 = float(re.search(r"^r2: (\S+)$", evaluated.stdout, re.MULTILINE).group(1))
    assert r2 == pytest.approx(regressor.score(x, y), abs=1e-4), evaluated.stdout
    # A CLI model trained on the raw table predicts raw DataFrames through the estimator.
    frame, kind = fruit()
    frame.assign(kind=kind).to_csv(tmp_path / "fruit.csv", index=False)
    subprocess.run([cli, "train", "--data", str(tmp_path / "fruit.csv"), "--target", "kind", "--epochs", "10",
                    "--device", "cpu", "--quiet", "--save", str(tmp_path / "cli.safetensors")], check=True)
    subprocess.run([cli, "predict", "--model", str(tmp_path / "cli.safetensors"), "--data",
                    str(tmp_path / "fruit.csv"), "--out", str(tmp_path / "labels.csv"), "--device", "cpu"],
                   check=True, capture_output=True)
    labels = pd.read_csv(tmp_path / "labels.csv")["kind_predicted"].to_numpy()
    loaded = EmberClassifier.load(tmp_path / "cli.safetensors")
    assert list(loaded.classes_) == ["apple", "pear", "plum"]
    np.testing.assert_array_equal(loaded.predict(frame), labels)


@pytest.mark.skipif(not os.environ.get("EMBER_CLI"), reason="EMBER_CLI names the ember binary (set by ctest)")
@pytest.mark.parametrize("rows,task,embed", [(600, "regression", None), (1500, "classification", None),
                                             (6000, "regression", None), (1500, "regression", "city")])
def test_the_estimators_default_is_ember_trains(tmp_path, rows, task, embed):
    """With no settings but the seed (and epochs, for time) an estimator trains the model that
    `ember train --data FILE --target y` trains: the table defaults by size (a validation split and
    early stopping from 1,000 rows, bins from 5,000, steps and levels for whole-number codes, the members
    by size) included."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(rows)
    frame = pd.DataFrame({"city": rng.choice(["north", "south", "east", None], size=rows),
                          "area": np.where(rng.random(rows) < 0.05, np.nan, rng.gamma(3.0, 40.0, size=rows)),
                          "rooms": rng.integers(1, 7, size=rows), "school": rng.integers(0, 80, size=rows)})
    value = (np.nan_to_num(frame["area"].to_numpy()) / 40 + frame["rooms"] + (frame["city"] == "north")
             + (frame["school"] % 3))
    y = pd.Series(value + rng.normal(size=rows), name="y")
    if task == "classification":
        y = pd.Series(np.where(y > np.median(y), "high", "low"), name="y")
    frame.assign(y=y).to_csv(tmp_path / "table.csv", index=False)
    subprocess.run([os.environ["EMBER_CLI"], "train", "--data", str(tmp_path / "table.csv"), "--target", "y",
                    "--epochs", "3", "--seed", "7", "--device", "cpu", "--quiet", "--save",
                    str(tmp_path / "cli.safetensors")] + (["--embed", embed] if embed else []), check=True)
    from_cli = ember.Sequential.load(tmp_path / "cli.safetensors")
    estimator = (EmberClassifier if task == "classification" else EmberRegressor)(epochs=3, random_state=7,
                                                                                  device="cpu", embed=embed).fit(frame, y)
    defaults = ember._core.table_defaults(rows)
    assert (estimator.validation_scores_ is not None) == (defaults["validation_split"] > 0)
    # city: 3 and a gap (embedded: 8 values); area: 1 and a gap; rooms: 1; school: 1, a step between each two of
    # its 80 codes and an indicator for each at every size (their bins where the defaults give them)
    assert defaults["steps"] and defaults["levels"] and frame["school"].nunique() == 80
    inputs = (8 if embed else 4) + 2 + 1 + 80 + 80
    assert (estimator.coefs_[0].shape[0] > inputs) == (defaults["bins"] > 0)
    assert estimator.n_iter_ == 3 and len(from_cli.get_weights()) == len(estimator.model_.get_weights())
    for mine, theirs in zip(estimator.model_.get_weights(), from_cli.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert estimator.model_._model.clip_norm == from_cli._model.clip_norm == pytest.approx(defaults["clip_norm"])
    # The same ensemble: as many networks, the same predictions.
    assert estimator.model_.member_count == from_cli.member_count == defaults["members"]
    np.testing.assert_array_equal(estimator.model_.predict(frame), from_cli.predict(frame))


def test_momentum_and_clipping_follow_the_table_size():
    """momentum and clip_norm "auto": TableDefaults' by the rows (0.9 and 5 from 1,000 rows, where
    rows are held out to stop at the best epoch); a number as given."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + np.sin(3 * x[:, 0])
    small = EmberRegressor(epochs=2, random_state=0, device="cpu", members=1).fit(x[:300], y[:300])
    large = EmberRegressor(epochs=2, random_state=0, device="cpu", members=1).fit(x, y)
    assert small.model_._model.clip_norm == 0
    assert ember._core.table_defaults(1200)["clip_norm"] > 0
    assert large.model_._model.clip_norm == pytest.approx(ember._core.table_defaults(1200)["clip_norm"])
    plain = EmberRegressor(epochs=2, random_state=0, device="cpu", members=1, momentum=0.0, clip_norm=0).fit(x, y)
    assert plain.model_._model.clip_norm == 0
    assert not np.array_equal(plain.coefs_[0], large.coefs_[0])
    with pytest.raises(ValueError, match="momentum='fast'"):
        EmberRegressor(momentum="fast").fit(x, y)
    with pytest.raises(ValueError, match="clip_norm=-1"):
        EmberRegressor(clip_norm=-1).fit(x, y)


def test_warnings_name_the_callers_line():
    frame, kind = fruit()
    classifier = EmberClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0, device="cpu").fit(frame, kind)
    new = frame.head(4).copy()
    new.loc[0, "colour"] = "violet"
    with pytest.warns(UserWarning, match="a category that training never saw") as caught:
        classifier.predict(new)
    assert caught[0].filename == __file__


def test_fitted_attributes_follow_scikit_learns_mlp():
    x, y = load_diabetes(return_X_y=True)
    # One network, whose coefs_ are the whole model (an ensemble's are its first network's).
    regressor = EmberRegressor(hidden_layer_sizes=(6,), epochs=40, early_stopping=True, n_iter_no_change=3,
                               normalize=False, random_state=0, device="cpu", members=1).fit(x, y)
    # n_iter_: the epochs run; validation_scores_: R^2 per epoch (higher is better) and its best.
    assert regressor.n_iter_ == len(regressor.loss_curve_) == len(regressor.validation_scores_)
    assert regressor.best_validation_score_ == max(regressor.validation_scores_) and regressor.best_loss_ is None
    # coefs_ (inputs, units) and intercepts_: the network predict runs (no scaling with normalize=False).
    assert [c.shape for c in regressor.coefs_] == [(10, 6), (6, 1)] and regressor.n_layers_ == 3
    hidden = np.maximum(x @ regressor.coefs_[0] + regressor.intercepts_[0], 0)
    np.testing.assert_allclose(regressor.predict(x), (hidden @ regressor.coefs_[1] + regressor.intercepts_[1])[:, 0],
                               rtol=1e-4, atol=1e-3)
    classifier = EmberClassifier(hidden_layer_sizes=(4,), epochs=5, random_state=0, device="cpu").fit(*load_iris(
        return_X_y=True))
    assert classifier.validation_scores_ is None and classifier.best_loss_ == min(classifier.loss_curve_)


def weights_of(estimator):
    return estimator.coefs_ + estimator.intercepts_


def test_warm_start_and_partial_fit_go_on_as_one_longer_fit():
    X, y = load_diabetes(return_X_y=True)
    six = EmberRegressor(hidden_layer_sizes=(16,), epochs=6, random_state=0, device="cpu").fit(X, y)
    warm = EmberRegressor(hidden_layer_sizes=(16,), epochs=3, random_state=0, device="cpu", warm_start=True)
    warm.fit(X, y)
    warm.predict(X)  # predicting switches to the row-invariant path; training goes on as before
    warm.fit(X, y)
    assert warm.n_iter_ == 6 and len(warm.loss_curve_) == 6 and warm.model_.epochs_completed == 6
    assert all(np.array_equal(a, b) for a, b in zip(weights_of(warm), weights_of(six)))
    assert warm.loss_curve_ == six.loss_curve_
    # Without warm_start, fit starts over.
    cold = EmberRegressor(hidden_layer_sizes=(16,), epochs=3, random_state=0, device="cpu")
    cold.fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 3 and cold.model_.epochs_completed == 3

    # partial_fit: an epoch per call, from the model of the calls before.
    three = EmberRegressor(hidden_layer_sizes=(16,), epochs=3, random_state=0, device="cpu").fit(X, y)
    parts = EmberRegressor(hidden_layer_sizes=(16,), random_state=0, device="cpu")
    for _ in range(3):
        parts.partial_fit(X, y)
    assert parts.n_iter_ == 3 and all(np.array_equal(a, b) for a, b in zip(weights_of(parts), weights_of(three)))
    with pytest.raises(ValueError, match="features"):
        parts.partial_fit(X[:, :5], y)


def test_classifier_partial_fit_takes_every_class_first():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = EmberClassifier(hidden_layer_sizes=(16,), random_state=0, device="cpu", optimizer="adam", lr=0.01)
    with pytest.raises(ValueError, match="classes="):
        model.partial_fit(X[:50], names[:50])
    model.partial_fit(X[:50], names[:50], classes=["virginica", "setosa", "versicolor"])
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"] and model.n_iter_ == 1
    for _ in range(60):
        model.partial_fit(X, names)
    assert model.score(X, names) > 0.9 and model.n_iter_ == 61
    with pytest.raises(ValueError, match="does not know"):
        model.partial_fit(X[:2], ["setosa", "rose"])
    with pytest.raises(ValueError, match="differs"):
        model.partial_fit(X, names, classes=["setosa", "versicolor"])


def test_alpha_is_an_l2_penalty():
    X, y = load_diabetes(return_X_y=True)
    norms = []
    for alpha in (0.0, 0.0001, 50.0):
        model = EmberRegressor(hidden_layer_sizes=(16,), epochs=20, alpha=alpha, random_state=0, device="cpu").fit(X, y)
        norms.append(sum(float(np.sum(c * c)) for c in model.coefs_))
    assert norms[2] < 0.5 * norms[0] and norms[1] == pytest.approx(norms[0], rel=0.05)
    with pytest.raises(ValueError, match="alpha"):
        EmberRegressor(alpha=-1.0).fit(X, y)


def test_estimators_take_sample_weight():
    X, y = load_iris(return_X_y=True)
    # Weight only the first two classes' rows: the third is learned from no row.
    weights = (y < 2).astype(float)
    model = EmberClassifier(hidden_layer_sizes=(16,), epochs=40, random_state=0, device="cpu", lr=0.01)
    model.fit(X, y, sample_weight=weights)
    assert set(model.predict(X[y < 2])) <= {0, 1} and (model.predict(X[y < 2]) == y[y < 2]).mean() > 0.9
    with pytest.raises(ValueError, match="one class: 0"):
        EmberClassifier(epochs=1).fit(X, y, sample_weight=(y == 0).astype(float))
    with pytest.raises(ValueError, match=r"sample_weight\[3\] is -2.0"):
        EmberRegressor(epochs=1).fit(X, y, sample_weight=np.where(np.arange(150) == 3, -2.0, 1.0))


def test_sample_weights_and_row_order_give_the_same_bits_in_one_batch():
    # scikit-learn's check_sample_weight_equivalence_on_dense_data on its own data, asked exactly:
    # where one batch holds every row, the estimators train on the row-invariant path, whose step
    # is a function of its rows as a set: a whole weight gives the model of as many copies, a zero
    # weight the model without the row, and the rows' order does not matter. The defaults: five
    # networks and the compared linear model.
    rng = np.random.RandomState(42)
    x = rng.rand(15, 30)
    labels = rng.randint(0, 3, size=15)
    weights = rng.randint(0, 5, size=15)
    order = rng.permutation(15)
    for estimator, y, method in ((EmberRegressor, labels.astype(float), "predict"),
                                 (EmberClassifier, labels, "predict_proba")):
        weighted = estimator(random_state=0).fit(x[order], y[order], sample_weight=weights[order])
        copies = estimator(random_state=0).fit(x.repeat(weights, axis=0), y.repeat(weights))
        plain = estimator(random_state=0).fit(x, y)
        assert weighted.model_.backend_name == "cpu (row-invariant)"
        mine, theirs = getattr(weighted, method)(x), getattr(copies, method)(x)
        np.testing.assert_array_equal(mine, theirs, err_msg=estimator.__name__)
        for a, b in zip(weighted.coefs_ + weighted.intercepts_, copies.coefs_ + copies.intercepts_):
            np.testing.assert_array_equal(a, b)
        assert np.abs(getattr(plain, method)(x) - theirs).max() > 1e-3  # the weights matter
    # More rows than a batch: the fast path (OpenBLAS), batches of the shuffled rows.
    big = EmberRegressor(random_state=0, batch_size=8, members=1).fit(x, labels.astype(float))
    assert big.model_.backend_name == "cpu"


def test_members_auto_is_the_clis_count_and_predicts_the_mean_of_the_networks(tmp_path):
    x, y = load_diabetes(return_X_y=True)
    auto = EmberRegressor(hidden_layer_sizes=(8,), epochs=5, random_state=3, device="cpu").fit(x, y)
    assert auto.model_.member_count == 5  # 442 rows: 100,000 / rows, at most 5
    one = EmberRegressor(hidden_layer_sizes=(8,), epochs=5, random_state=3, device="cpu", members=1).fit(x, y)
    assert one.model_.member_count == 1
    # The first network is the single model of the same seed; the ensemble differs from it.
    for mine, theirs in zip(auto.coefs_, one.coefs_):
        np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(auto.predict(x), one.predict(x))
    # Saved and loaded, all five predict, as the CLI's checkpoints do.
    auto.save(tmp_path / "five.safetensors")
    loaded = EmberRegressor.load(tmp_path / "five.safetensors")
    np.testing.assert_array_equal(loaded.predict(x), auto.predict(x))
    with pytest.raises(ValueError, match="members=0"):
        EmberRegressor(members=0).fit(x, y)

