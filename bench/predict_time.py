#!/usr/bin/env python3
"""Times ember.Sequential.predict on 100,000 random rows for depth-4 MLPs of widths 64 and 256 (ReLU),
the median of --runs after one warm-up, and prints one line per width. Run it with two builds'
packages to compare them on the same machine, alternating:

    for build in build /tmp/old/build; do PYTHONPATH=$build/python .venv/bin/python bench/predict_time.py; done
"""
import argparse
import statistics
import time

import numpy as np

import ember


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    x_all = np.random.default_rng(0).uniform(-1, 1, (args.rows, 256)).astype(np.float32)
    for width in (64, 256):
        model = ember.Sequential([ember.Dense(width, "relu") for _ in range(3)] + [ember.Dense(1)], seed=1)
        model.compile(optimizer="sgd", loss="mse", device="cpu")
        x = np.ascontiguousarray(x_all[:, :width])
        model.fit(x[:64], x[:64, 0], epochs=1, verbose=0)  # builds the weights
        samples = []
        for run in range(args.runs + 1):
            start = time.perf_counter()
            model.predict(x)
            if run:
                samples.append((time.perf_counter() - start) * 1e3)
        print(f"predict {args.rows} rows, depth 4 width {width}: {statistics.median(samples):.2f} ms "
              f"(median of {args.runs}; {ember.__file__})", flush=True)


if __name__ == "__main__":
    main()
