#!/usr/bin/env python3
"""Times fits whose one batch holds every training row (full-batch training) on the CPU's two fast
modes: OpenBLAS, and the row-invariant path (each row's values from that row alone, the weights in
float64 sums over the rows), which the scikit-learn estimators use for such fits so that a whole
sample weight trains the model of as many copies of the row. Beside them scikit-learn's MLP of the
same layers with batch_size=rows, the same epochs (no early stopping). Also checks, at each size,
whether weights 0 to 4 and the repeated rows give the same predictions bit for bit on each mode.
One table, medians of --runs, all side by side in one process:

    PYTHONPATH=build/python .venv/bin/python bench/one_batch_fit.py [--sizes 30,1000,10000]
"""
import argparse
import statistics
import timeit
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

import ember


def fit(x, y, row_invariant, epochs, sample_weight=None):
    model = ember.Sequential([ember.Dense(64), ember.Dense(64), ember.Dense(1, "linear")], seed=0)
    model.compile(optimizer="sgd", loss="mse", device="cpu", row_invariant=row_invariant, lr=0.01, momentum=0.9)
    model.fit(x, y, epochs=epochs, batch_size=len(x), sample_weight=sample_weight, seed=0, verbose=0)
    return model


def median_ms(function, runs):
    return 1e3 * statistics.median(timeit.repeat(function, number=1, repeat=runs))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="30,1000,10000", help="rows of each fit, comma-separated")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"layers 64-64, {args.features} features, {args.epochs} epochs of one step, SGD with momentum 0.9; "
          f"ms, median of {args.runs}")
    print(f"{'rows':>7} | {'OpenBLAS':>9} | {'row-invariant':>13} | {'ratio':>5} | {'scikit-learn':>12} | "
          f"{'weights = copies (OpenBLAS / row-invariant)':>44}")
    for rows in (int(size) for size in args.sizes.split(",")):
        rng = np.random.default_rng(rows)
        x = rng.standard_normal((rows, args.features)).astype(np.float32)
        y = (x @ rng.standard_normal((args.features, 1)) + np.sin(x[:, :1])).astype(np.float32)
        fast = median_ms(lambda: fit(x, y, False, args.epochs), args.runs)
        exact = median_ms(lambda: fit(x, y, True, args.epochs), args.runs)
        mlp = MLPRegressor(hidden_layer_sizes=(64, 64), solver="sgd", learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=False,
                           batch_size=rows, max_iter=args.epochs, tol=0.0, n_iter_no_change=args.epochs + 1,
                           random_state=0)
        theirs = median_ms(lambda: mlp.fit(x, y.ravel()), args.runs)
        weights = rng.integers(0, 5, rows).astype(np.float32)
        weights[0] = max(weights[0], 1.0)
        same = []
        for row_invariant in (False, True):
            weighted = fit(x, y, row_invariant, 5, sample_weight=weights)
            copies = fit(np.repeat(x, weights.astype(int), axis=0), np.repeat(y, weights.astype(int), axis=0),
                         row_invariant, 5)
            same.append("yes" if np.array_equal(weighted.predict(x), copies.predict(x)) else "no")
        print(f"{rows:>7} | {fast:>9.1f} | {exact:>13.1f} | {exact / fast:>5.2f} | {theirs:>12.1f} | "
              f"{' / '.join(same):>44}")


if __name__ == "__main__":
    main()
