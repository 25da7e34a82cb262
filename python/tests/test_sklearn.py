"""The scikit-learn estimators: scikit-learn's own estimator checks, with no expected failures, and
the tools they are meant for."""
import numpy as np
import pickle
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import ember
from ember.sklearn import EmberClassifier, EmberRegressor


@parametrize_with_checks([EmberRegressor(), EmberClassifier()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_and_cross_validation():
    x, y = load_iris(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), EmberClassifier(hidden_layer_sizes=(16,), epochs=50, lr=0.01,
                                                               random_state=0, device="cpu"))
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
    model = EmberClassifier(epochs=30, lr=0.01, random_state=0, device="cpu").fit(x, names)
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
