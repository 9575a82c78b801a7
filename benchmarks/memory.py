"""Peak memory of Hyperflux training over dense training, one fresh process per configuration.

Each configuration (see train_overhead.py) runs in its own Python process: it imports torch and hyperflux, records
its resident memory (the baseline every configuration shares), builds the model and optimisers, runs a few training
steps and reports its peak resident memory (VmHWM of /proc/self/status: unlike getrusage's ru_maxrss it is not
inherited from the parent across fork+exec) or, on a GPU, torch.cuda.max_memory_allocated.
The ratio of peaks includes the shared baseline (interpreter, torch); the ratio of peak minus baseline is what the
training itself costs.

Run alone: python benchmarks/memory.py [--quick] [--device cuda] [--models ...]
Probe (internal): python benchmarks/memory.py --probe MODEL CONFIG --device cpu --steps 3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def probe(model: str, config: str, device: str, steps: int, threads: int, amp: str, channels_last: bool) -> dict:
    "In this (fresh) process: baseline memory, then peak memory over `steps` training steps of `config`."
    import torch
    from common import current_rss_mib, peak_rss_mib, set_threads
    from train_overhead import MODELS, StepSetup, build_step
    set_threads(threads)
    base = current_rss_mib()
    s = StepSetup(device=device, batch=MODELS[model]["batch"]["cuda" if device.startswith("cuda") else "cpu"], amp=amp,
                  channels_last=channels_last)
    if device.startswith("cuda"): torch.cuda.reset_peak_memory_stats()
    step, _ = build_step(model, config, s)
    for _ in range(steps): step()
    out = dict(model=model, config=config, device=device, batch=s.batch, baseline_mib=round(base, 1),
               peak_rss_mib=round(peak_rss_mib(), 1))
    if device.startswith("cuda"): out["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def run_probe(model: str, config: str, device: str, steps: int, threads: int, amp="off", channels_last=False) -> dict:
    "Run `probe` in a fresh Python process and return its result."
    cmd = [sys.executable, str(HERE / "memory.py"), "--probe", model, config, "--device", device, "--steps", str(steps),
           "--threads", str(threads), "--amp", amp] + (["--channels-last"] if channels_last else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0: raise RuntimeError(f"memory probe {model}/{config} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(models: list[str], device: str = "cpu", quick: bool = False, threads: int = 1, amp: str = "off",
        channels_last: bool = False, configs=("dense", "hyperflux", "prune_hooks")) -> list[dict]:
    "The memory rows of results.json: per model, the peak of each configuration and the ratios to dense."
    from common import log
    rows = []
    for model in models:
        steps = 2 if quick else 3
        log(f"memory: {model} on {device}, one process per configuration ({', '.join(configs)}), {steps} steps each")
        got = {c: run_probe(model, c, device, steps, threads, amp, channels_last) for c in configs}
        d = got["dense"]
        row = dict(model=model, device=device, batch=d["batch"], steps=steps, baseline_mib=d["baseline_mib"])
        key = "peak_cuda_mib" if device.startswith("cuda") else "peak_rss_mib"
        for c in configs:
            row[f"{c}_peak_mib"] = got[c][key]
            if c != "dense":
                row[f"{c}_ratio"] = round(got[c][key] / d[key], 3)
                if key == "peak_rss_mib":   # training memory above the shared interpreter+torch baseline
                    row[f"{c}_ratio_above_baseline"] = round((got[c][key] - got[c]["baseline_mib"]) /
                                                             max(d[key] - d["baseline_mib"], 1e-9), 3)
        row["ratio"] = row["hyperflux_ratio"]
        above = row.get("hyperflux_ratio_above_baseline")
        log(f"  peak hyperflux/dense = {row['ratio']:.3f}"
            + (f" (above baseline {above:.3f})" if above is not None else ""))
        rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--probe", nargs=2, metavar=("MODEL", "CONFIG"))
    p.add_argument("--models", default="lenet300,lenet5,resnet50")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--amp", default="off", choices=["off", "bf16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    if a.probe:
        print(json.dumps(probe(*a.probe, a.device, a.steps, a.threads, a.amp, a.channels_last)))
    else:
        print(json.dumps(run(a.models.split(","), a.device, a.quick, a.threads, a.amp, a.channels_last), indent=1))


if __name__ == "__main__":
    main()
