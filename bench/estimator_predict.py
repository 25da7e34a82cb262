#!/usr/bin/env python3
"""Times the scikit-learn estimators' predictions on the CPU: a fitted EmberRegressor's and
EmberClassifier's model predicting (what predict and predict_proba call) with each CPU mode (the float64 reference, the fast path on OpenBLAS,
and the row-invariant loops the estimators use, where a row predicts the same bits whatever rows
come with it) against scikit-learn's MLPRegressor/MLPClassifier of the same layers. One table,
medians of --runs after a warm-up, all side by side in one process:

    PYTHONPATH=build/python .venv/bin/python bench/estimator_predict.py [--rows 40000 --big-rows 1000000]
"""
import argparse
import os
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from ember.sklearn import EmberClassifier, EmberRegressor


def median_ms(function, runs):
    function()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return 1e3 * statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="rows of the classifier's predict_proba")
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(0)
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs")
    print(f"{'estimator':15} {'layers':9} {'rows':>8} {'reference':>10} {'OpenBLAS':>10} {'row-inv.':>10} "
          f"{'sklearn':>10}  (ms)")
    for width in (64, 256):
        for kind, rows in (("regressor", args.rows), ("classifier", args.big_rows)):
            x = rng.standard_normal((rows, args.features))
            y = x @ rng.standard_normal(args.features)
            fit_rows = min(rows, 20_000)
            # One network of scikit-learn's shape: the defaults would average several networks (members)
            # or keep a linear model where it validates better (y is linear in x here).
            same_shape = {"members": 1, "compare_linear": False}
            layers = (width, width)
            if kind == "regressor":
                ember = EmberRegressor(hidden_layer_sizes=layers, epochs=1, random_state=0, device="cpu", **same_shape)
                peer = MLPRegressor(hidden_layer_sizes=layers, max_iter=1, random_state=0)
                target, method = y, "predict"
            else:
                ember = EmberClassifier(hidden_layer_sizes=layers, epochs=1, random_state=0, device="cpu", **same_shape)
                peer = MLPClassifier(hidden_layer_sizes=layers, max_iter=1, random_state=0)
                target, method = np.digitize(y, np.quantile(y, [0.33, 0.66])), "predict_proba"
            ember.fit(x[:fit_rows], target[:fit_rows])
            peer.fit(x[:fit_rows], target[:fit_rows])
            times = []
            for reference, row_invariant in ((True, False), (False, False), (False, True)):
                ember.model_._model._recompile("cpu", reference, row_invariant)
                model = ember.model_
                data = x.astype(np.float32)
                times.append(median_ms(lambda: model.predict(data), args.runs if rows <= 100_000 else 1))
            times.append(median_ms(lambda: getattr(peer, method)(x), args.runs if rows <= 100_000 else 1))
            print(f"{kind:15} {width}-{width:<5} {rows:8} " + " ".join(f"{t:10.1f}" for t in times))


if __name__ == "__main__":
    main()
