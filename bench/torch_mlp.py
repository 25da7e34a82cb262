#!/usr/bin/env python3
"""The training steps of `ember bench` in PyTorch, printed in the same table format.

Depth-4 MLPs (ReLU) in two tasks: one output with MSE and SGD momentum 0.9 ("mse"), and 10 classes
with softmax cross-entropy and Adam ("softmax"); FP32 with TF32 off; on CUDA both eager and captured
with torch.cuda.graphs. Median of --runs runs of 10 steps after two warm-up runs.

    python3 bench/torch_mlp.py --device cpu      # width 64 / batch 32 and width 256 / batch 256
    python3 bench/torch_mlp.py --device cuda     # widths 64..4096, batch 1024 and 8192

With --ember-csv FILE (the CSV of `ember bench --csv FILE` from the same machine), each row also
shows Ember's step time (CUDA-graph replay on the GPU, the fast path on the CPU) and the speed-up
of Ember over PyTorch (PyTorch's time over Ember's). --csv FILE writes the rows in the format of
`ember bench --csv` (docs/formats.md).
"""
import argparse
import csv
import os
import statistics
import time

import torch


def make_step(width, depth, batch, device, classes=0):
    """The step of `ember bench`'s StepCase: classes 0 is the MSE/SGD task, else softmax/Adam."""
    layers = []
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, classes or 1)).to(device)
    x = torch.rand(batch, width, device=device) * 2 - 1
    if classes:
        # capturable: Adam's step count stays on the device, so the step can be graphed.
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, capturable=device == "cuda")
        y = torch.randint(0, classes, (batch,), device=device)
        loss_function = torch.nn.functional.cross_entropy
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        y = torch.rand(batch, 1, device=device) * 2 - 1
        loss_function = torch.nn.functional.mse_loss

    def step():
        optimizer.zero_grad(set_to_none=False)
        loss = loss_function(model(x), y)
        loss.backward()
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters())


def time_step(step, device, runs, steps_per_run=10):
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    samples = []
    for run in range(runs + 2):
        sync()
        start = time.perf_counter()
        for _ in range(steps_per_run):
            step()
        sync()
        if run >= 2:
            samples.append((time.perf_counter() - start) * 1e3 / steps_per_run)
    return statistics.median(samples)


def graphed(step):
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def case_name(width, batch, classes):
    """The case as `ember bench` names it (StepCase::name)."""
    return f"depth 4 width {width} batch {batch}" + (f" softmax {classes} adam" if classes else "")


def ember_step_ms(path, device):
    """{case: step ms} of Ember's headline variant, read from an `ember bench` CSV."""
    variant = "graph" if device == "cuda" else "cpu"
    times = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            if row["table"] == "step" and row["variant"] == variant and row["metric"] == "step ms":
                times[row["case"]] = float(row["value"])
    return variant, times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--ember-csv", help="an `ember bench --csv` file to compare with, row by row")
    parser.add_argument("--csv", help="also write the rows to this CSV file, in `ember bench --csv` format")
    args = parser.parse_args()
    if args.runs < 20:
        parser.error(f"--runs {args.runs}: at least 20 runs make a median")
    ember_variant, ember = ember_step_ms(args.ember_csv, args.device) if args.ember_csv else (None, {})
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    shapes = [(64, 32), (256, 256)] if args.device == "cpu" else [(w, b) for w in (64, 256, 1024, 4096) for b in (1024, 8192)]
    cases = [(width, batch, classes) for width, batch in shapes for classes in (0, 10)]
    print(f"Training step (PyTorch {torch.__version__}): MLP depth 4 (ReLU); task mse: one output, MSE, SGD momentum "
          f"0.9; softmax: 10 classes, softmax cross-entropy, Adam; median of {args.runs} runs of 10 steps")
    extra = f" {'ember ' + ember_variant + ' ms':>17} {'ember speed-up':>14}" if args.ember_csv else ""
    print(f"{'width':<6} {'batch':<6} {'task':<8} {'variant':<13} {'parameters':>11} {'step ms':>12} {'steps/s':>11}{extra}")
    rows = ["table,case,variant,metric,value,yardstick,ratio"]
    for width, batch, classes in cases:
        step, parameters = make_step(width, 4, batch, args.device, classes)
        variants = [("torch-eager", step)]
        if args.device == "cuda":
            variants.append(("torch-graph", graphed(step)))
        for label, run in variants:
            ms = time_step(run, args.device, args.runs)
            task = "softmax" if classes else "mse"
            line = f"{width:<6} {batch:<6} {task:<8} {label:<13} {parameters:>11} {ms:>12.4f} {1000 / ms:>11.0f}"
            if args.ember_csv:
                theirs = ember.get(case_name(width, batch, classes))
                line += f" {theirs:>17.4f} {ms / theirs:>13.2f}x" if theirs else f" {'-':>17} {'-':>14}"
            print(line, flush=True)
            rows.append(f"step,{case_name(width, batch, classes)},{label},step ms,{ms:.6g},,")
    if args.csv:
        with open(args.csv + ".tmp", "w") as file:  # written whole, then renamed: never a partial file
            file.write("\n".join(rows) + "\n")
        os.replace(args.csv + ".tmp", args.csv)


if __name__ == "__main__":
    main()
