"""End-to-end throughput: images/s of the engine's own epoch against steps x its bare step, dense and Hyperflux.

For each method a `hyperflux.engine.Run` is built on CIFAR-shaped synthetic data (`dataset="synthetic"`,
`data_options={"shape": [3, 32, 32], ...}`), exactly as `hyperflux train` builds it, and three things are timed:
- *epoch*: `Run.train_epoch`, the engine's whole loop over the loader (batches drawn, augmented, stepped, the loss
  summed);
- *bare steps*: the same number of `hyperflux.engine.train_step(run, x, y)` calls on one fixed batch (no loader):
  what the epoch would cost if the engine added nothing around its step;
- optionally *train epoch*: one warm epoch of `hyperflux.engine.train` (from metrics.csv's `seconds`), which adds
  the test-set evaluation and the method's end of epoch.
`engine_overhead` = epoch / (steps x bare step) - 1 per round (goal on GPU: <= 0.15 for dense). Methods and rounds
are interleaved so that a busy machine slows them alike.

Run alone: python benchmarks/e2e.py [--quick] [--device cuda] [--arch resnet50] [--images 12800] [--batch 128]
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import log, masks_channels_last, ratio_summary, set_threads, summary, sync  # noqa: E402

from hyperflux import engine  # noqa: E402
from hyperflux.config import TrainConfig  # noqa: E402
from hyperflux.runfolder import METRICS  # noqa: E402

METHODS = ("dense", "hyperflux")
PRESSURE = 1.0   # a constant pressure: the scheduler's value does not change the cost of a step


def make_config(arch: str,                 # a paper architecture, e.g. resnet50
                method: str,               # dense | hyperflux | any method name
                device: str = "cpu",       # cpu | cuda
                batch: int = 32,           # training batch size
                images: int = 256,         # training images per epoch (synthetic)
                amp: str = "off",          # off | bf16
                channels_last: bool = False, # conv nets on GPU only, as the engine does
                compile: bool = False,     # torch.compile the model
                epochs: int = 1,           # epochs of a whole `engine.train` run
               ) -> TrainConfig:
    "The TrainConfig of one throughput run on CIFAR-shaped synthetic data."
    data = dict(shape=[3, 32, 32], num_classes=10, train_size=images, test_size=max(batch, 64))
    return TrainConfig(arch=arch, dataset="synthetic", method=method, data_options=data, batch_size=batch,
                       device=device, amp=amp, channels_last=channels_last, compile=compile, progress=False,
                       epochs_prune=epochs, epochs_regrow=0, sparsity_pct=50.0,
                       **(dict(pressure=PRESSURE) if method == "hyperflux" else {}))   # Hyperflux's own setting


def bare_steps(run: engine.Run, steps: int) -> float:
    "Seconds of `steps` engine steps on one fixed batch (no loader around them)."
    x, y = next(iter(run.data.train))
    sync(str(run.device))
    t = time.perf_counter()
    for _ in range(steps): engine.train_step(run, x, y)
    sync(str(run.device))
    return time.perf_counter() - t


def one_epoch(run: engine.Run, epoch: int) -> float:
    "Seconds of the engine's `train_epoch` (the loss is read back, as `train` does)."
    sync(str(run.device))
    t = time.perf_counter()
    run.train_epoch(epoch).item()
    sync(str(run.device))
    return time.perf_counter() - t


def steps_per_epoch(run: engine.Run) -> int:
    "Batches of one epoch of `run`."
    n = len(run.data.train)
    return n if run.cfg.max_batches is None else min(n, run.cfg.max_batches)


def train_epoch_seconds(cfg: TrainConfig) -> dict:
    "A whole 2-epoch `engine.train` run: seconds of its first and second (warm) epoch from metrics.csv."
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "epochs_prune": 2})
    with tempfile.TemporaryDirectory() as folder:
        engine.train(cfg, Path(folder) / "run")
        with open(Path(folder) / "run" / METRICS, newline="") as f:
            seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    return dict(first_epoch_s=round(seconds[0], 3), warm_epoch_s=round(seconds[1] - seconds[0], 3))


def measure(arch: str, device: str = "cpu", batch: int = 32, images: int = 256, rounds: int = 3, amp: str = "off",
            channels_last: bool = False, compile: bool = False, methods=METHODS, whole_train: bool = True) -> dict:
    "Interleaved epoch and bare-step times of every method on `arch`; images/s and the engine's overhead."
    row = dict(arch=arch, device=device, batch=batch, images_per_epoch=images, amp=amp, channels_last=channels_last,
               compile=compile, rounds=rounds)
    times = {m: dict(epoch=[], bare=[]) for m in methods}
    with tempfile.TemporaryDirectory() as folder:
        runs = {m: engine.Run(make_config(arch, m, device, batch, images, amp, channels_last, compile),
                              Path(folder) / m) for m in methods}
        steps = steps_per_epoch(runs[methods[0]])
        row["masks_channels_last"] = {m: masks_channels_last(run) for m, run in runs.items()}
        for m, run in runs.items():   # warm up (compile, cuDNN autotuning, lazy optimiser state)
            t = time.perf_counter()
            bare_steps(run, 3)
            row[f"{m}_warmup_s"] = round(time.perf_counter() - t, 2)
        for r in range(rounds):
            for m in methods[r % len(methods):] + methods[:r % len(methods)]:
                times[m]["epoch"].append(one_epoch(runs[m], 1))
                times[m]["bare"].append(bare_steps(runs[m], steps))
        del runs
    row["steps_per_epoch"] = steps
    for m in methods:
        epoch, bare = times[m]["epoch"], times[m]["bare"]
        row[f"{m}_epoch_s"] = summary(epoch, 4)
        row[f"{m}_bare_step_ms"] = summary([1e3 * b / steps for b in bare], 3)
        row[f"{m}_images_per_s"] = summary([steps * batch / e for e in epoch], 1)
        row[f"{m}_bare_images_per_s"] = summary([steps * batch / b for b in bare], 1)
        row[f"{m}_engine_overhead"] = round(ratio_summary(epoch, bare)["median"] - 1, 3)
        row[f"{m}_engine_overhead_spread"] = ratio_summary(epoch, bare)
        if whole_train:
            row[f"{m}_train"] = train_epoch_seconds(make_config(arch, m, device, batch, images, amp, channels_last,
                                                                compile))
            row[f"{m}_train"]["warm_epoch_images_per_s"] = round(steps * batch / row[f"{m}_train"]["warm_epoch_s"],
                                                                 1)
    if "dense" in methods and "hyperflux" in methods:
        row["hyperflux_over_dense_epoch"] = ratio_summary(times["hyperflux"]["epoch"], times["dense"]["epoch"])
    return row


def run(archs=("lenet5",), device: str = "cpu", quick: bool = False, batch: int | None = None,
        images: int | None = None, amp: str = "off", channels_last: bool = False, compile_modes=(False,),
        rounds: int | None = None) -> list[dict]:
    "The e2e rows of results.json."
    rows = []
    for arch in archs:
        b = batch or (128 if device.startswith("cuda") else 32)
        n = images or (2 * b if quick else (100 * b if device.startswith("cuda") else 8 * b))
        for comp in compile_modes:
            r = rounds or (1 if quick else 3)
            log(f"end to end: {arch} on {device} (batch {b}, {n} images, {r} rounds{', compiled' if comp else ''})")
            row = measure(arch, device, b, n, r, amp, channels_last, comp, whole_train=True)
            log("  " + ", ".join(f"{m}: {row[f'{m}_images_per_s']['median']:.0f} images/s "
                                 f"(engine overhead {100 * row[f'{m}_engine_overhead']:.1f} %)" for m in METHODS))
            rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="lenet5", help="comma-separated architectures")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--images", type=int, default=None, help="training images per epoch")
    p.add_argument("--amp", default="off", choices=["off", "bf16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", choices=["off", "on", "both"], default="off")
    p.add_argument("--rounds", type=int, default=None)
    a = p.parse_args(argv)
    set_threads(a.threads)
    modes = {"off": (False,), "on": (True,), "both": (False, True)}[a.compile]
    rows = run(a.arch.split(","), a.device, a.quick, a.batch, a.images, a.amp, a.channels_last, modes, a.rounds)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
