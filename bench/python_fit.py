#!/usr/bin/env python3
"""What training from Python costs over training in C++: the same fit on the same rows, both ways.

C++: build/bench/ember_fit_time (bench/fit_time.cpp), Sequential::fit timed around the call, on rows
read from raw float32 files. Python: ember.Sequential.fit on the same rows as float32 arrays, timed
the same way. Same model (64-64-1 ReLU MLP, Adam, batch 32, seed 0), one after the other in turns;
medians over --runs turns of --repeat fits each.

    PYTHONPATH=build/python .venv/bin/python bench/python_fit.py --fit-time build/bench/ember_fit_time
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
    parser.add_argument("--fit-time", required=True, help="the ember_fit_time binary")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5, help="turns")
    parser.add_argument("--repeat", type=int, default=3, help="fits per turn and side")
    options = parser.parse_args()
    rng = np.random.RandomState(0)
    x = rng.randn(options.rows, options.features).astype(np.float32)
    y = (x[:, :4].sum(axis=1) + 0.1 * rng.randn(options.rows)).astype(np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        x_path, y_path = os.path.join(scratch, "x.f32"), os.path.join(scratch, "y.f32")
        x.tofile(x_path)
        y.tofile(y_path)

        def cpp(runs):
            out = subprocess.run([options.fit_time, x_path, y_path, str(options.rows), str(options.features),
                                  str(options.epochs), str(runs)], check=True, capture_output=True, text=True).stdout
            return [float(line) for line in out.split()]

        def python():
            model = ember.Sequential([ember.Dense(64, "relu"), ember.Dense(64, "relu"), ember.Dense(1)])
            model.compile("adam", "mse", "cpu")
            start = time.perf_counter()
            model.fit(x, y, epochs=options.epochs, batch_size=32, verbose=0)
            return time.perf_counter() - start

        python()  # as the C++ program does: the thread pool started, the memory touched
        samples = {"cpp": [], "python": []}
        for _ in range(options.runs):  # in turns, so that a slow spell of the machine meets both
            samples["cpp"] += cpp(options.repeat)
            samples["python"] += [python() for _ in range(options.repeat)]
    c, p = statistics.median(samples["cpp"]), statistics.median(samples["python"])
    print("| fit | C++ (Sequential::fit) | Python (ember.Sequential.fit) | Python / C++ |")
    print("|---|---|---|---|")
    print(f"| {options.rows} rows x {options.features}, MLP 64-64-1, Adam, batch 32, {options.epochs} epochs "
          f"| {c * 1000:.0f} ms | {p * 1000:.0f} ms | {p / c:.3f} |")
    print(f"all runs, ms: C++ {[round(v * 1000) for v in samples['cpp']]}, "
          f"Python {[round(v * 1000) for v in samples['python']]}")


if __name__ == "__main__":
    main()
