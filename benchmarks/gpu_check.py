"""The GPU section of benchmarks/results.json in one go (under 6 minutes on one H100); run by benchmarks/gpu_check.sh.

Steps, each written to results.json as soon as it is done (a run cut short keeps what it measured):
1. overhead:  `train_overhead` for lenet300, lenet5, resnet50 and vgg19 (CIFAR shape), batch 128, bf16 autocast,
              channels_last: dense, hyperflux, fixed masks and prune hooks, interleaved, with the compute operators
              per step.
2. e2e:       end-to-end throughput of the engine (`e2e`): dense and hyperflux on ResNet-50, the engine's epoch against
              steps x its bare step.
3. compile:   torch.compile on and off for dense and hyperflux on ResNet-50 (and LeNet-5): compile time (the first
              step), graphs and recompiles, step time compiled over eager; mode default and reduce-overhead (CUDA
              graphs) where it works (a failure is recorded, not raised).

    PYTHONPATH=. python benchmarks/gpu_check.py --device cuda                # what gpu_check.sh runs
    PYTHONPATH=. python benchmarks/gpu_check.py --device cpu --quick --out /tmp/x  # dry run: every step, tiny sizes

A dry run (not on CUDA, or --quick) writes its section with `measured: false` and `dry_run: true`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import interleaved, log, machine_info, ratio_summary, set_threads, summary, sync  # noqa: E402

import e2e  # noqa: E402
import train_overhead  # noqa: E402
from train_overhead import StepSetup, build_step  # noqa: E402

from hyperflux.core import atomic_write, atomic_write_json  # noqa: E402

STEPS = ("overhead", "e2e", "compile")
BUDGET_S = 300          # the whole check stays under 6 minutes on an H100; a step that would start later is skipped
COMPILE_CONFIGS = ("dense", "hyperflux")


def plan(device: str, quick: bool) -> dict:
    "Models and sizes of each step: the real check on CUDA, tiny ones for a dry run."
    if quick:
        return dict(overhead=["lenet300", "lenet5"], e2e="lenet5", e2e_images=64, e2e_batch=32, compile=["lenet5"],
                    compile_modes=["default"] + (["reduce-overhead"] if device.startswith("cuda") else []),
                    rounds=2, batch=16)
    return dict(overhead=["lenet300", "lenet5", "resnet50", "vgg19"], e2e="resnet50", e2e_images=12800, e2e_batch=128,
                compile=["resnet50", "lenet5"], compile_modes=["default", "reduce-overhead"], rounds=None, batch=128)


def dynamo_stats() -> dict:
    "Graphs compiled and graph breaks so far in this process (torch._dynamo's counters)."
    from torch._dynamo.utils import counters
    return dict(graphs=int(counters["stats"]["unique_graphs"]), graph_breaks=int(sum(counters["graph_break"].values())))


def compile_row(model: str, mode: str, s: StepSetup, rounds: int, repeat: int) -> dict:
    "Compile time, graphs, recompiles and the eager/compiled step times of dense and hyperflux on `model`."
    row = dict(model=model, mode=mode, backend=s.compile_backend, batch=s.batch, amp=s.amp,
               channels_last=s.channels_last)
    steps = {}
    for config in COMPILE_CONFIGS:
        steps[f"{config}_eager"] = build_step(model, config, s)[0]
        compiled = StepSetup(**{**vars(s), "compile": True, "compile_mode": None if mode == "default" else mode})
        step = build_step(model, config, compiled)[0]
        before = dynamo_stats()
        sync(s.device)
        t = time.perf_counter()
        step()
        sync(s.device)
        row[f"{config}_compile_s"] = round(time.perf_counter() - t, 2)
        first = dynamo_stats()
        for _ in range(2): step()
        after = dynamo_stats()
        row[f"{config}_graphs"] = first["graphs"] - before["graphs"]
        row[f"{config}_recompiles"] = after["graphs"] - first["graphs"]   # graphs compiled by steps 2 and 3
        row[f"{config}_graph_breaks"] = after["graph_breaks"] - before["graph_breaks"]
        steps[f"{config}_compiled"] = step
    times = interleaved(steps, rounds=rounds, repeat=repeat, warmup=1, device=s.device)
    for name, t in times.items(): row[f"{name}_ms"] = summary([1e3 * v for v in t], 3)
    for config in COMPILE_CONFIGS:
        row[f"{config}_speedup"] = ratio_summary(times[f"{config}_eager"], times[f"{config}_compiled"])
    row["hyperflux_over_dense_compiled"] = ratio_summary(times["hyperflux_compiled"], times["dense_compiled"])
    row["hyperflux_over_dense_eager"] = ratio_summary(times["hyperflux_eager"], times["dense_eager"])
    return row


def compile_rows(models: list[str], modes: list[str], device: str, quick: bool, backend: str,
                 deadline: float = float("inf")) -> list[dict]:
    "One compile row per model and mode; a mode that fails is recorded with its error, one past `deadline` skipped."
    rows, cost = [], {}   # cost: seconds the model's last row took, to skip a row that would end past the deadline
    for mode, model in [(mode, model) for mode in modes for model in models]:   # every model's default mode first
        batch = train_overhead.MODELS[model]["batch"]["cuda" if device.startswith("cuda") else "cpu"]
        s = StepSetup(device=device, batch=16 if quick else batch, amp="bf16" if device.startswith("cuda") else "off",
                      channels_last=True, compile_backend=backend)
        if time.time() + cost.get(model, 0) > deadline:
            rows.append(dict(model=model, mode=mode, backend=backend, error="skipped: past the time budget"))
            continue
        log(f"compile: {model}, mode {mode}, backend {backend}")
        start = time.time()
        try: rows.append(compile_row(model, mode, s, rounds=2 if quick else 7, repeat=1 if quick else 5))
        except Exception as e:   # noqa: BLE001  (reduce-overhead may not work with every model: say so)
            rows.append(dict(model=model, mode=mode, backend=backend, error=f"{type(e).__name__}: {e}"[:2000],
                             traceback=traceback.format_exc()[-4000:]))
            log(f"  failed: {rows[-1]['error'][:300]}")
        torch._dynamo.reset()
        cost[model] = time.time() - start
    return rows


def run_step(name: str, p: dict, device: str, quick: bool, backend: str, deadline: float):
    "The result of one step of the check."
    amp = "bf16" if device.startswith("cuda") else "off"
    if name == "overhead":
        return train_overhead.run(p["overhead"], device, quick, amp=amp, channels_last=True, rounds=p["rounds"],
                                  batch=p["batch"] if quick else None)
    if name == "e2e":
        return e2e.run([p["e2e"]], device, quick, batch=p["e2e_batch"], images=p["e2e_images"], amp=amp,
                       channels_last=True, rounds=1 if quick else 3)
    return compile_rows(p["compile"], p["compile_modes"], device, quick, backend, deadline)


def section_header(device: str, quick: bool, backend: str, threads: int) -> dict:
    "The section's description of itself."
    real = device.startswith("cuda") and not quick
    head = dict(measured=real, dry_run=not real, batch=128, amp="bf16" if device.startswith("cuda") else "off",
                channels_last=True, compile_backend=backend, machine=machine_info(device, threads), steps_done=[],
                steps_skipped={}, masks_channels_last="the engine's Runs get channels_last views of the masked conv "
                "weights (hyperflux.masks.to_channels_last), from the benchmark where the engine does not do it yet")
    if not real: head["reason"] = f"dry run of benchmarks/gpu_check.py on {device}{' (quick)' if quick else ''}"
    return head


def write(path: Path, results: dict):
    "results.json and RESULTS.md beside it (RESULTS.md only where the report's imports are installed)."
    from bench import goals
    results["goals"] = goals(results)
    atomic_write_json(path, results)
    try:
        from report import render
        atomic_write(path.parent / "RESULTS.md", render(results))
    except ImportError as e: log(f"RESULTS.md not written ({e}); run `python benchmarks/report.py` where it imports")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a dry run of every step (numbers meaningless)")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    p.add_argument("--backend", default="inductor", help="torch.compile backend (aot_eager: a fast CPU dry run)")
    p.add_argument("--budget", type=float, default=BUDGET_S, help="seconds; later steps are skipped past it")
    p.add_argument("--out", default=str(HERE), help="folder of results.json (its `gpu` section is replaced)")
    a = p.parse_args(argv)
    start = time.time()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check: --device cuda but torch sees no GPU here (torch.cuda.is_available() is False)")
    if unknown := set(a.steps.split(",")) - set(STEPS): sys.exit(f"gpu_check: unknown step(s) {sorted(unknown)}")
    threads = set_threads(None if a.device.startswith("cuda") else 1)
    if a.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        log(f"GPU check on {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    out = Path(a.out)
    if (not a.device.startswith("cuda") or a.quick) and out.resolve() == HERE:
        sys.exit("gpu_check: a dry run (--quick or not on CUDA) would overwrite the measured GPU section of "
                 "benchmarks/results.json; give --out FOLDER")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    gpu = results["gpu"] = section_header(a.device, a.quick, a.backend, threads)
    sizes = plan(a.device, a.quick)
    for name in [s for s in STEPS if s in a.steps.split(",")]:
        if time.time() - start > a.budget:
            gpu["steps_skipped"][name] = f"past the time budget of {a.budget:.0f} s"
            continue
        t = time.time()
        gpu[{"overhead": "train_overhead"}.get(name, name)] = run_step(name, sizes, a.device, a.quick, a.backend,
                                                                    start + a.budget)
        gpu["steps_done"].append(name)
        gpu[f"{name}_seconds"] = round(time.time() - t, 1)
        gpu["wall_seconds"] = round(time.time() - start, 1)
        write(path, results)
        log(f"{name} done in {time.time() - t:.0f} s; wrote {path}")
    gpu["wall_seconds"] = round(time.time() - start, 1)
    write(path, results)
    log(f"GPU check finished in {gpu['wall_seconds']:.0f} s: {', '.join(gpu['steps_done'])}")


if __name__ == "__main__":
    main()
