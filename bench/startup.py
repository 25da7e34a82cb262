#!/usr/bin/env python3
"""Start-up cost of `ember` builds side by side: wall time and peak resident memory.

Runs `ember info` and a 20-epoch training on 4096 x 64 rows (device auto, so a CUDA build looks for
its GPU first) with each binary given, 11 times each in turns, and prints the medians as a table.
What a CPU run pays for a build's CUDA support shows as the gap to a CPU-only build.

    python3 bench/startup.py "CUDA build=build/ember" "CPU-only build=build-cpu/ember"
"""
import argparse
import os
import random
import statistics
import subprocess
import tempfile
import time


def write_data(path, rows=4096, features=64):
    generator = random.Random(1)
    with open(path, "w") as out:
        out.write(",".join(f"x{i}" for i in range(features)) + ",y\n")
        for _ in range(rows):
            x = [generator.gauss(0, 1) for _ in range(features)]
            out.write(",".join(f"{v:.5f}" for v in x) + f",{sum(x[:8]):.5f}\n")


def measure(binary, arguments):
    """Wall seconds and peak resident MiB of one run (GNU time's %M)."""
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "%M", binary] + arguments, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{binary} {' '.join(arguments)} failed ({run.returncode}):\n{run.stderr}")
    return wall, int(run.stderr.strip().splitlines()[-1]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="+", metavar="LABEL=PATH", help="an ember binary and its name in the table")
    parser.add_argument("--runs", type=int, default=11)
    options = parser.parse_args()
    builds = [b.split("=", 1) if "=" in b else [b, b] for b in options.builds]
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "wide.csv")
        write_data(data)
        commands = {"ember info": ["info"],
                    "train 20 epochs, 4096 x 64": ["train", "--data", data, "--target", "y", "--epochs", "20",
                                                   "--quiet"]}
        print("| command | build | wall (median) | peak resident (median) |")
        print("|---|---|---|---|")
        for name, arguments in commands.items():
            samples = {label: [] for label, _ in builds}
            for _ in range(options.runs):  # in turns, so that load on the machine falls on every build alike
                for label, binary in builds:
                    samples[label].append(measure(binary, arguments))
            for label, _ in builds:
                wall = statistics.median(s[0] for s in samples[label])
                resident = statistics.median(s[1] for s in samples[label])
                print(f"| `{name}` | {label} | {wall * 1000:.1f} ms | {resident:.1f} MiB |")


if __name__ == "__main__":
    main()
