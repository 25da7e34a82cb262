#!/usr/bin/env python3
"""What training from Python costs over training in C++: the same fit on the same rows, both ways.

C++: `ember train` on a CSV, minus the same command with --epochs 0 (reading the file, building the
model), so that what remains is the library's fit. Python: ember.Sequential.fit on the same rows
as a float32 array. Medians of --runs runs, taken in turns.

    PYTHONPATH=build/python .venv/bin/python bench/python_fit.py --ember build/ember
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np

import ember


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ember", required=True, help="the ember binary")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    rng = np.random.RandomState(0)
    x = rng.randn(options.rows, options.features).astype(np.float32)
    y = (x[:, :4].sum(axis=1) + 0.1 * rng.randn(options.rows)).astype(np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "data.csv")
        names = ",".join(f"x{i}" for i in range(options.features))
        np.savetxt(data, np.column_stack([x, y]), delimiter=",", header=names + ",y", comments="", fmt="%.7g")
        x, y = np.loadtxt(data, delimiter=",", skiprows=1, dtype=np.float32, unpack=False).T[:-1].T.copy(), \
            np.loadtxt(data, delimiter=",", skiprows=1, dtype=np.float32)[:, -1].copy()

        def cli(epochs):
            start = time.perf_counter()
            subprocess.run([options.ember, "train", "--data", data, "--target", "y", "--layers", "64,64", "--epochs",
                            str(epochs), "--optimizer", "adam", "--device", "cpu", "--quiet"], check=True)
            return time.perf_counter() - start

        def python():
            model = ember.Sequential([ember.Dense(64, "relu"), ember.Dense(64, "relu"), ember.Dense(1)])
            model.compile("adam", "mse", "cpu")
            start = time.perf_counter()
            model.fit(x, y, epochs=options.epochs, verbose=0)
            return time.perf_counter() - start

        samples = {"cli": [], "setup": [], "python": []}
        for _ in range(options.runs):
            samples["cli"].append(cli(options.epochs))
            samples["setup"].append(cli(0))
            samples["python"].append(python())
    cpp = statistics.median(samples["cli"]) - statistics.median(samples["setup"])
    py = statistics.median(samples["python"])
    print(f"| fit, {options.rows} rows x {options.features}, MLP 64-64-1, Adam, batch 32, {options.epochs} epochs "
          f"| C++ (ember train, less its set-up) {cpp * 1000:.0f} ms | Python {py * 1000:.0f} ms "
          f"| Python / C++ {py / cpp:.3f} |")


if __name__ == "__main__":
    main()
