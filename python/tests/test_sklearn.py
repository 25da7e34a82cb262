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
