"""Shared pieces of the benchmarks: the machine description, interleaved timing and robust summaries.

Timings here are always ratios measured within one run: the configurations being compared take turns, round after
round, so that whatever else the machine is doing slows them alike. A ratio is computed per round (from adjacent
measurements) and summarised by its median and spread (quartiles, min and max); times per step are medians.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from hyperflux.masks import count_compute_ops  # noqa: F401  (compute operators of one step, for the benchmarks)
from hyperflux.core import keep_freed_memory
from hyperflux.masks import mask_banks, to_channels_last

ROOT = Path(__file__).resolve().parents[1]


def set_threads(threads: int | None) -> int:
    "Use `threads` torch CPU threads (None: torch's default) and the engine's malloc setting; the threads in use."
    if threads: torch.set_num_threads(int(threads))
    set_malloc()
    return torch.get_num_threads()


def set_malloc() -> str:
    "The engine's CPU malloc setting for the whole process, so every configuration runs under it; it, in words."
    if keep_freed_memory(): return "keeps freed blocks up to 1 GiB (hyperflux.core.keep_freed_memory)"
    return "glibc's defaults (HYPERFLUX_KEEP_FREED_MEMORY=0, or not glibc)"


def cpu_model() -> str:
    "The CPU model name from /proc/cpuinfo (or platform.processor())."
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    "Total memory of the machine in GiB."
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"): return round(int(line.split()[1]) / 2**20, 1)
    except OSError: return None
    return None


def git_commit() -> str | None:
    "HEAD of the repository, with '+dirty' when tracked files differ from it."
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return (head + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError): return None


def load_average() -> list[float] | None:
    "The 1, 5 and 15 minute load averages (a busy machine makes every timing slower and noisier)."
    try: return [round(v, 2) for v in os.getloadavg()]
    except OSError: return None


def machine_info(device: str, threads: int) -> dict:
    "Everything a reader needs to judge where the numbers come from."
    info = dict(cpu=cpu_model(), cores=os.cpu_count(), memory_gib=memory_gib(), python=platform.python_version(),
                torch=torch.__version__, torch_threads=threads, malloc=set_malloc(), device=device,
                platform=platform.platform(),
                date_utc=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), git_commit=git_commit(),
                command=" ".join([Path(sys.executable).name, *sys.argv]), load_average_start=load_average())
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def sync(device: str):
    "Wait for queued GPU work so wall-clock timings are complete."
    if device.startswith("cuda"): torch.cuda.synchronize()


def interleaved(fns: dict[str, Callable[[], object]], # name -> one unit of work (e.g. a training step)
                rounds: int,                         # rounds; each runs every function `repeat` times
                repeat: int = 1,                     # calls per function per round
                warmup: int = 1,                     # untimed calls of each function first
                device: str = "cpu",
               ) -> dict[str, list[float]]:
    "Seconds per call of each function, one value per round; the order of the functions rotates every round."
    names = list(fns)
    for name in names:
        for _ in range(warmup): fns[name]()
    sync(device)
    times = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            sync(device); t = time.perf_counter()
            for _ in range(repeat): fns[name]()
            sync(device)
            times[name].append((time.perf_counter() - t) / repeat)
    return times


def summary(values: list[float], digits: int = 3) -> dict:
    "Median, quartiles, min and max of `values`."
    v = sorted(values)
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else [v[0]] * 3
    r = lambda x: round(x, digits)
    return dict(median=r(statistics.median(v)), q1=r(q[0]), q3=r(q[2]), min=r(v[0]), max=r(v[-1]), n=len(v))


def ratio_summary(num: list[float], den: list[float], digits: int = 3) -> dict:
    "Summary of the per-round ratios num[i] / den[i] (adjacent measurements, so shared slowdowns cancel)."
    return summary([a / b for a, b in zip(num, den)], digits)


def peak_rss_mib() -> float:
    "Peak resident memory of this process so far, MiB: VmHWM, else ru_maxrss."
    # ru_maxrss survives fork+exec on Linux: a child started by a big parent reports at least the parent's size.
    # VmHWM belongs to the process's own address space, which exec replaces, so it starts afresh.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"): return int(line.split()[1]) / 1024
    except OSError: pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    "Resident memory of this process now, MiB."
    try: return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError: return float("nan")


def log(msg: str):
    "Progress line on stderr (results go to files)."
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def masks_channels_last(run) -> str:
    "Where a CUDA channels_last run's 4-D masked weights get channels_last views: 'engine', 'benchmark' or 'no'."
    if not (run.device.type == "cuda" and run.cfg.channels_last and run.convnet): return "no"
    banks = mask_banks(run.model)
    if all(b.channels_last == [len(s) == 4 for s in b.shapes] for b in banks): return "engine"
    to_channels_last(run.model)   # the engine does not re-lay the flat buffers yet: do it before the first step
    return "benchmark"
