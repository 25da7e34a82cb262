#!/usr/bin/env python3
"""Ember on a busy machine, side by side in one run.

1. The training step (depth-4 MLP, ReLU, MSE, SGD momentum 0.9) and a predict of 100,000 rows, for
   Ember's default threads, Ember with one thread (both from `ember bench --tables threads`) and
   PyTorch with its default threads, first on an idle machine, then with --busy processes that spin
   on the CPU (as many as cores by default), started and stopped by this script.
2. Several processes at once, against the same work run one after the other on one thread each:
   `mpirun -np 2 ember train` (data-parallel; each rank its half of every batch) against one
   process, and GridSearchCV(EmberRegressor, n_jobs=2) against n_jobs=1.

    python3 bench/contention.py --ember build/ember --torch-python /usr/bin/python3 \\
        --ember-python .venv/bin/python --pythonpath build/python

Only the standard library runs here; PyTorch and the Ember package run in the interpreters named.
A part whose tools are missing (PyTorch, mpirun, the package) prints why and is skipped.
"""
import argparse
import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# PyTorch's side of the threads table: the same MLPs as bench/torch_mlp.py, timed as Ember's are.
TORCH_CODE = r"""
import json, statistics, sys, time
import torch
sys.path.insert(0, sys.argv[1])
from torch_mlp import make_step, time_step
runs, rows = int(sys.argv[2]), int(sys.argv[3])
cases = json.loads(sys.argv[4])
torch.manual_seed(0)
out = {"version": torch.__version__, "threads": torch.get_num_threads(), "step": {}, "predict": {}}
for width, batch in cases:
    step, _ = make_step(width, 4, batch, "cpu")
    out["step"][f"{width} {batch}"] = time_step(step, "cpu", runs, 2 if width >= 1024 else 10)
    if width <= 256 and batch == 256:
        model = torch.nn.Sequential(*[m for _ in range(3) for m in (torch.nn.Linear(width, width), torch.nn.ReLU())],
                                    torch.nn.Linear(width, 1))
        x = torch.rand(rows, width) * 2 - 1
        samples = []
        with torch.inference_mode():
            for run in range(max(5, runs // 4) + 1):
                start = time.perf_counter()
                for begin in range(0, rows, 1024):  # Ember's predict batch
                    model(x[begin:begin + 1024])
                if run:
                    samples.append((time.perf_counter() - start) * 1e3)
        out["predict"][f"{width}"] = statistics.median(samples)
print(json.dumps(out))
"""

CASES = [(64, 32), (64, 256), (256, 32), (256, 256), (1024, 256)]


@contextlib.contextmanager
def busy(count):
    """count processes spinning on the CPU for as long as the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def ember_threads_table(ember, runs, folder):
    path = os.path.join(folder, "threads.csv")
    subprocess.run([ember, "bench", "--device", "cpu", "--tables", "threads", "--runs", str(runs), "--csv", path],
                   check=True, stdout=subprocess.DEVNULL)
    figures = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            figures[(row["case"], row["variant"], row["metric"])] = float(row["value"])
    return figures


def torch_threads_table(python, runs):
    if not python:
        return None
    result = subprocess.run([python, "-c", TORCH_CODE, HERE, str(runs), "100000", json.dumps(CASES)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f"PyTorch skipped: {python} failed: {result.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(result.stdout)


def print_threads(load, ember, torch):
    print(f"\n{load}")
    print(f"{'width':<6} {'batch':<6} {'what':<8} {'ember ms':>10} {'1 thread':>10} {'ratio':>6} "
          f"{'pytorch ms':>11} {'pytorch/ember':>14}")
    verdicts = []
    for width, batch in CASES:
        rows = [("step", f"depth 4 width {width} batch {batch}", "step ms", torch and torch["step"].get(f"{width} {batch}"))]
        if width <= 256 and batch == 256:
            rows.append(("predict", f"predict 100000 rows depth 4 width {width}", "predict ms",
                         torch and torch["predict"].get(f"{width}")))
        for what, case, metric, theirs in rows:
            mine, one = ember[(case, "default", metric)], ember[(case, "1 thread", metric)]
            theirs_text = f"{theirs:>11.3f} {theirs / mine:>13.2f}x" if theirs else f"{'-':>11} {'-':>14}"
            print(f"{width:<6} {batch:<6} {what:<8} {mine:>10.3f} {one:>10.3f} {mine / one:>6.2f} {theirs_text}")
            verdicts.append((width, batch, what, mine / one, theirs / mine if theirs else None))
    return verdicts


def timed(command, environment=None):
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, **(environment or {})})
    return time.perf_counter() - start


def write_table(path, rows, columns, seed=0):
    """A regression table: columns features and y, a smooth function of them plus noise."""
    import random
    generator = random.Random(seed)
    with open(path, "w") as file:
        file.write(",".join(f"x{c}" for c in range(columns)) + ",y\n")
        for _ in range(rows):
            x = [generator.uniform(-1, 1) for _ in range(columns)]
            y = sum((c % 3 - 1) * v * v + 0.5 * v for c, v in enumerate(x)) + generator.gauss(0, 0.1)
            file.write(",".join(f"{v:.5f}" for v in x) + f",{y:.5f}\n")


def mpi_part(ember, folder):
    launcher = shutil.which("mpirun") or shutil.which("mpiexec")
    if not launcher:
        print("\nmpirun: skipped (no launcher on the PATH)")
        return None
    data = os.path.join(folder, "table.csv")
    write_table(data, 40000, 16)
    train = [ember, "train", "--data", data, "--target", "y", "--layers", "256,256", "--epochs", "12",
             "--batch-size", "256", "--device", "cpu"]
    root = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    one = timed(train, {"EMBER_NUM_THREADS": "1"})
    two = timed([launcher, "-np", "2", *train], root)
    launch = timed([launcher, "-np", "2", ember, "info"], root)  # the launcher's own start-up and MPI's
    print(f"\nmpirun -np 2 ember train (40,000 rows, 256-256, 12 epochs, batch 256), default threads: {two:.2f} s; "
          f"one process, one thread: {one:.2f} s; ratio {two / one:.2f} (target <= 1.3); "
          f"mpirun -np 2 ember info alone: {launch:.2f} s")
    return two / one


GRID_CODE = r"""
import sys, time
import numpy as np
import ember
from ember.sklearn import EmberRegressor
from sklearn.model_selection import GridSearchCV
jobs = int(sys.argv[1])
if jobs == 1:
    ember.set_num_threads(1)
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (20000, 16)).astype(np.float32)
y = (x[:, :8] ** 2).sum(axis=1) - x[:, 8:].sum(axis=1) + rng.normal(0, 0.1, 20000)
grid = GridSearchCV(EmberRegressor(hidden_layer_sizes=(256, 256), epochs=4, batch_size=256, random_state=0),
                    {"lr": [0.001, 0.003, 0.01, 0.03]}, cv=2, n_jobs=jobs)
start = time.perf_counter()
grid.fit(x, y)
print(time.perf_counter() - start)
"""


def grid_part(python, pythonpath):
    if not python:
        return None
    environment = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else dict(os.environ)
    seconds = {}
    for jobs in (1, 2):
        result = subprocess.run([python, "-c", GRID_CODE, str(jobs)], capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            print(f"\nGridSearchCV: skipped ({python}: {result.stderr.strip().splitlines()[-1:]})")
            return None
        seconds[jobs] = float(result.stdout.strip().splitlines()[-1])
    print(f"\nGridSearchCV(EmberRegressor, 4 candidates x 2 folds, 20,000 rows, 256-256, 4 epochs): n_jobs=2 "
          f"{seconds[2]:.2f} s; n_jobs=1 with one thread {seconds[1]:.2f} s; ratio {seconds[2] / seconds[1]:.2f} "
          f"(target <= 1.3)")
    return seconds[2] / seconds[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ember", default="build/ember", help="the ember command line")
    parser.add_argument("--busy", type=int, default=os.cpu_count(), help="spinning processes for the busy runs")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--torch-python", help="an interpreter with PyTorch (e.g. /usr/bin/python3 with python3-torch)")
    parser.add_argument("--ember-python", help="an interpreter with the ember package and scikit-learn")
    parser.add_argument("--pythonpath", help="PYTHONPATH for --ember-python (e.g. build/python)")
    parser.add_argument("--parts", default="threads,mpi,grid", help="comma-separated: threads, mpi, grid")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    threads_environment = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "EMBER_NUM_THREADS")}
    print(f"{os.cpu_count()} cores; environment: {threads_environment}; busy processes: {args.busy}")
    with tempfile.TemporaryDirectory() as folder:
        if "threads" in parts:
            for load, spinners in (("idle", 0), (f"{args.busy} busy processes", args.busy)):
                with busy(spinners):
                    ember = ember_threads_table(args.ember, args.runs, folder)
                    torch = torch_threads_table(args.torch_python, args.runs)
                title = f"{load}: Ember default and one thread; PyTorch {torch['version']} with its default " \
                        f"{torch['threads']} threads" if torch else f"{load}: Ember default and one thread"
                print_threads(title, ember, torch)
        if "mpi" in parts:
            mpi_part(args.ember, folder)
        if "grid" in parts:
            grid_part(args.ember_python, args.pythonpath)


if __name__ == "__main__":
    main()
