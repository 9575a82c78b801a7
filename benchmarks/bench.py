"""Run hyperflux's benchmarks and write benchmarks/results.json and benchmarks/RESULTS.md.

    python benchmarks/bench.py              # everything on CPU (make bench); about 10-15 minutes on 2 busy cores
    python benchmarks/bench.py --quick      # a smoke test of every section (< 1 minute): numbers are not meaningful
    bash benchmarks/gpu_check.sh            # the GPU section as issue 12 defines it (under 6 minutes on one H100)
    python benchmarks/bench.py --device cuda  # the older GPU section (ResNet-50, VGG-19, CIFAR shape, batch 128, bf16,
                                            # channels_last, with and without torch.compile), merged into results.json
    python benchmarks/bench.py --sections train_overhead,memory
    python benchmarks/bench.py --sections train_overhead,e2e --merge   # replace only those sections in results.json

Every timing is a ratio within one run (configurations interleaved round by round), reported as the median with its
spread. Nothing here is a test: tests/test_bench.py runs --quick and checks only that the files are complete.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import load_average, log, machine_info, set_threads  # noqa: E402

SECTIONS = ("train_overhead", "e2e", "memory", "sparse_inference", "reach", "data_pipeline")
GOALS = dict(train_overhead_cpu=1.10, train_overhead_gpu=1.10, sparse_speedup_lenet300=5.0,
             e2e_engine_overhead_gpu=0.15)
CPU_OVERHEAD_GOAL = dict(lenet300=1.30)   # issue 12: LeNet-300-100 does one multiply-add per weight, the masks weigh



def run_cpu_sections(sections, quick: bool, threads: int) -> dict:
    "The CPU sections of results.json."
    out = {}
    if "train_overhead" in sections:
        import train_overhead
        models = ["lenet300", "lenet5"] if quick else ["lenet300", "lenet5", "resnet50"]
        out["train_overhead"] = train_overhead.run(models, "cpu", quick)
    if "e2e" in sections:
        import e2e
        out["e2e"] = e2e.run(["lenet5"], "cpu", quick, images=None if quick else 1024)
        if not quick: out["e2e"] += e2e.run(["resnet50"], "cpu", images=128, rounds=2)   # 4 batches of 32
    if "memory" in sections:
        import memory
        out["memory"] = memory.run(["lenet300"] if quick else ["lenet300", "lenet5", "resnet50"], "cpu", quick, threads,
                                   configs=("dense", "hyperflux") if quick else ("dense", "hyperflux", "prune_hooks"))
    if "sparse_inference" in sections:
        import inference
        batch_sizes = {"lenet300": (1, 64)} if quick else {"lenet300": (1, 64, 256), "resnet50": (1, 64)}
        out["sparse_inference"] = inference.run(batch_sizes, quick)
    if "reach" in sections:
        import reach
        out["reach"] = reach.run(quick)
    if "data_pipeline" in sections:
        import data_pipeline
        out["data_pipeline"] = data_pipeline.run("cpu", quick)
    return out


def run_gpu_section(device: str, quick: bool) -> dict:
    "Training overhead, memory and data pipeline on the GPU: ResNet-50 and VGG-19, batch 128, bf16, channels_last."
    import data_pipeline, memory, train_overhead
    models = ["resnet50"] if quick else ["resnet50", "vgg19"]
    return dict(measured=True, batch=128, amp="bf16", channels_last=True,
                train_overhead=train_overhead.run(models, device, quick, amp="bf16", channels_last=True,
                                                  compile_modes=(False,) if quick else (False, True)),
                memory=memory.run(models, device, quick, 1, amp="bf16", channels_last=True),
                data_pipeline=data_pipeline.run(device, quick))


NOT_MEASURED_GPU = dict(measured=False, reason="no GPU on the machine that ran `make bench`; run "
                        "`bash benchmarks/gpu_check.sh` on a GPU machine to fill this section")


def goals(results: dict) -> dict:
    "Each goal of the issue, the measured value and whether it is met."
    g = {}
    for r in results.get("train_overhead", []):
        limit = CPU_OVERHEAD_GOAL.get(r["model"], GOALS["train_overhead_cpu"])
        g[f"train_overhead_{r['model']}_cpu"] = dict(goal=f"<= {limit}", value=r["ratio"], met=r["ratio"] <= limit)
    gpu = results.get("gpu") or {}
    for r in gpu.get("train_overhead", []) if gpu.get("measured") else []:
        key = f"train_overhead_{r['model']}_gpu" + ("_compiled" if r.get("compile") else "")
        g[key] = dict(goal=f"<= {GOALS['train_overhead_gpu']}", value=r["ratio"],
                      met=r["ratio"] <= GOALS["train_overhead_gpu"])
    for r in gpu.get("e2e", []) if gpu.get("measured") else []:
        limit, value = GOALS["e2e_engine_overhead_gpu"], r["dense_engine_overhead"]
        g[f"e2e_engine_overhead_{r['arch']}_gpu"] = dict(goal=f"<= {limit}", value=value, met=value <= limit)
    for r in results.get("sparse_inference", []):
        if r["model"] == "lenet300":
            g[f"sparse_speedup_lenet300_batch{r['batch']}"] = dict(goal=f">= {GOALS['sparse_speedup_lenet300']}",
                                                                   value=r["speedup"],
                                                                   met=r["speedup"] >= GOALS["sparse_speedup_lenet300"])
    return g


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: every section, tiny sizes (numbers not meaningful)")
    p.add_argument("--device", default="cpu",
                   help="cpu (all sections) or cuda (the GPU section, merged into results.json)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (CPU)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared machine two threads stall on each other)")
    p.add_argument("--out", default=str(HERE), help="folder for results.json and RESULTS.md")
    p.add_argument("--merge", action="store_true",
                   help="CPU: keep the other sections of the existing results.json (listed under `kept_from`)")
    a = p.parse_args(argv)
    start = time.time()
    threads = set_threads(a.threads)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    if a.device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available(): sys.exit("bench: --device cuda but torch sees no GPU here")
        results = json.loads(path.read_text()) if path.exists() else {}
        log(f"GPU section on {torch.cuda.get_device_name(0)}")
        results["gpu"] = run_gpu_section(a.device, a.quick)
        results["gpu"]["machine"] = machine_info(a.device, threads)
        results["gpu"]["wall_seconds"] = round(time.time() - start, 1)
    else:
        sections = [s for s in a.sections.split(",") if s]
        if unknown := set(sections) - set(SECTIONS):
            sys.exit(f"bench: unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
        machine = machine_info("cpu", threads)
        log(f"benchmarks on {machine['cpu']} ({machine['cores']} cores), torch {machine['torch']}, "
            f"{threads} thread(s), sections: {', '.join(sections)}{' (quick)' if a.quick else ''}")
        earlier = json.loads(path.read_text()) if a.merge and path.exists() else {}
        results = dict(machine=machine, quick=a.quick, **run_cpu_sections(sections, a.quick, threads))
        results["gpu"] = earlier.get("gpu", NOT_MEASURED_GPU)
        if kept := [s for s in SECTIONS if s not in results and s in earlier]:
            results.update({s: earlier[s] for s in kept})
            dates = earlier.get("kept_from") or {}
            results["kept_from"] = {s: dates.get(s, earlier.get("machine", {}).get("date_utc")) for s in kept}
        results["machine"]["load_average_end"] = load_average()
        results["wall_seconds"] = round(time.time() - start, 1)
    results["goals"] = goals(results)
    from report import render
    from hyperflux.core import atomic_write, atomic_write_json
    atomic_write_json(path, results)
    atomic_write(out / "RESULTS.md", render(results))
    log(f"wrote {path} and {out / 'RESULTS.md'} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
