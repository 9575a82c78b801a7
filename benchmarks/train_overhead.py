"""Training overhead: one Hyperflux training step over one dense training step, same model, batch and weight optimiser.

Configurations (built by `build_step`):
- dense:        the plain model (no masks: the engine cannot train it, so this step is the benchmark's own copy of
                the engine's), SGD (momentum 0.9, weight decay 5e-4) on its weights; the baseline.
- hyperflux:    the engine's own step, `hyperflux.engine.train_step(run, x, y)` of a `Run` of the Hyperflux method
                (constant pressure) on synthetic data of the model's input shape: masks attached, SGD on the weights,
                fused Adam on the mask logits, the pressure gradient between backward and the optimiser steps.
- fixed_masks:  the engine's own step of a `Run` of the dense method: masks attached but frozen, every weight present,
                what every method that does not learn masks (dense, GMP, IMP, ...) trains through.
- prune_hooks:  the peer: torch.nn.utils.prune.custom_from_mask on the same layers (a forward pre-hook multiplies
                weight_orig by a fixed mask), SGD on the weights; masks are not learned.

Every row also carries `extra_ops_per_step`: compute operators of one step (top-level aten operators, views and
metadata-only operators left out; hyperflux.masks.count_compute_ops) at batch 2, Hyperflux minus dense.

Run alone: python benchmarks/train_overhead.py [--quick] [--device cuda] [--models resnet50,vgg19] ...
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (count_compute_ops, interleaved, log, masks_channels_last, ratio_summary,  # noqa: E402
                    set_threads, summary)

from hyperflux.masks import (attach_masks, mask_banks, mask_parameters, prunable_layers,  # noqa: E402
                             weight_parameters)
from hyperflux.models import get_model  # noqa: E402
from hyperflux import engine  # noqa: E402
from hyperflux.config import TrainConfig  # noqa: E402

# model -> input shape, classes and the batch sizes used per device
MODELS = {
    "lenet300": dict(shape=(1, 28, 28), classes=10, batch={"cpu": 128, "cuda": 128}),
    "lenet5": dict(shape=(1, 28, 28), classes=10, batch={"cpu": 128, "cuda": 128}),
    "resnet50": dict(shape=(3, 32, 32), classes=10, batch={"cpu": 32, "cuda": 128}),
    "vgg19": dict(shape=(3, 32, 32), classes=10, batch={"cpu": 32, "cuda": 128}),
}
CONFIGS = ("dense", "hyperflux", "fixed_masks", "prune_hooks")
PRESSURE = 1.0    # a constant pressure; its value does not change the cost of a step (only P = 0 skips the add)


@dataclass
class StepSetup:
    "What one configuration needs per step."
    device: str = "cpu"
    batch: int = 32
    amp: str = "off"              # off | bf16
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None   # torch.compile's mode, e.g. reduce-overhead (CUDA graphs); None: its default
    compile_backend: str = "inductor" # aot_eager: trace and check graphs without generating code (fast, CPU tests)
    seed: int = 0
    sgd_foreach: bool | None = None   # None: torch's default (foreach on GPU, one tensor at a time on CPU)


def compile_model(model: nn.Module, s: StepSetup):
    "torch.compile(model) with the setup's mode and backend."
    if s.compile_backend != "inductor": return torch.compile(model, backend=s.compile_backend)
    return torch.compile(model, mode=s.compile_mode)


def engine_step(model_name: str, config: str, s: StepSetup):
    "The engine's own step (`hyperflux.engine.train_step`) of a Run of `config` on a fixed batch, and the Run's model."
    spec = MODELS[model_name]
    method = {"hyperflux": "hyperflux", "fixed_masks": "dense"}[config]
    data = dict(shape=list(spec["shape"]), num_classes=spec["classes"], train_size=s.batch, test_size=s.batch)
    cfg = TrainConfig(arch=model_name, dataset="synthetic", method=method, data_options=data, batch_size=s.batch,
                      device=s.device, amp=s.amp, channels_last=s.channels_last, compile=s.compile, seed=s.seed,
                      progress=False, epochs_prune=1, epochs_regrow=0, sparsity_pct=50.0,
                      **(dict(pressure=PRESSURE) if method == "hyperflux" else {}))   # Hyperflux's own setting
    run = engine.Run(cfg, Path(tempfile.gettempdir()) / "hyperflux-bench-unused")   # Run writes nothing itself
    masks_channels_last(run)
    if s.compile and (s.compile_mode or s.compile_backend != "inductor"):   # a mode or backend the engine lacks
        run.net = compile_model(run.model, s)
    if s.sgd_foreach is not None:   # the op count with SGD as on a GPU: the engine's optimiser, foreach chosen
        g = run.opt_w.param_groups[0]
        run.opt_w = torch.optim.SGD(weight_parameters(run.model), lr=g["lr"], momentum=g["momentum"],
                                    weight_decay=g["weight_decay"], foreach=s.sgd_foreach)
    torch.manual_seed(s.seed)
    x = torch.randn(s.batch, *spec["shape"], device=run.device)
    y = torch.randint(0, spec["classes"], (s.batch,), device=run.device)
    if s.compile and s.compile_mode == "reduce-overhead":   # CUDA graphs: a new step may reuse the last one's memory
        def step():
            torch.compiler.cudagraph_mark_step_begin()
            return engine.train_step(run, x, y)
        return step, run.model
    return (lambda: engine.train_step(run, x, y)), run.model


def build_step(model_name: str, config: str, s: StepSetup):
    "A zero-argument function doing one training step of `config` on a fixed batch, and the model it trains."
    if config in ("hyperflux", "fixed_masks"): return engine_step(model_name, config, s)
    spec = MODELS[model_name]
    torch.manual_seed(s.seed)
    model = get_model(model_name, num_classes=spec["classes"], input_shape=spec["shape"])
    x = torch.randn(s.batch, *spec["shape"])
    y = torch.randint(0, spec["classes"], (s.batch,))
    convnet = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if config == "prune_hooks":
        for layer in prunable_layers(model).values():
            prune.custom_from_mask(layer, "weight", torch.ones_like(layer.weight))
    elif config != "dense": raise ValueError(f"unknown configuration {config!r}; choose from {CONFIGS}")
    if s.channels_last and convnet and s.device.startswith("cuda"):   # as the engine: channels_last on GPU only
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model, x, y = model.to(s.device), x.to(s.device), y.to(s.device)
    opt_w = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                            foreach=s.sgd_foreach)   # the engine's
    net = compile_model(model, s) if s.compile else model
    amp_dtype = {"off": None, "bf16": torch.bfloat16}[s.amp]
    dev_type = torch.device(s.device).type

    def step():
        if s.compile and s.compile_mode == "reduce-overhead": torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(dev_type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = F.cross_entropy(net(x), y, label_smoothing=0.1)
        opt_w.zero_grad(set_to_none=True)
        loss.backward()
        opt_w.step()
        return loss.detach()

    return step, model


def breakdown_parts(model_name: str, s: StepSetup, with_fwd_bwd: bool = True) -> dict:
    "Zero-argument functions timing the pieces Hyperflux adds: masked vs plain forward+backward, mask Adam, pressure."
    spec = MODELS[model_name]
    torch.manual_seed(s.seed)
    x = torch.randn(s.batch, *spec["shape"], device=s.device)
    y = torch.randint(0, spec["classes"], (s.batch,), device=s.device)
    plain = get_model(model_name, num_classes=spec["classes"], input_shape=spec["shape"]).to(s.device)
    masked = attach_masks(get_model(model_name, num_classes=spec["classes"], input_shape=spec["shape"]),
                          seed=s.seed).to(s.device)
    logits = mask_parameters(masked)
    for lg in logits: lg.grad = torch.randn_like(lg) * 1e-3
    adam = torch.optim.Adam(logits, lr=1e-3)
    adam_fused = torch.optim.Adam([nn.Parameter(lg.detach().clone()) for lg in logits], lr=1e-3, fused=True)
    for p, lg in zip(adam_fused.param_groups[0]["params"], logits): p.grad = lg.grad.clone()
    sgd = torch.optim.SGD(list(plain.parameters()), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    for p in plain.parameters(): p.grad = torch.randn_like(p) * 1e-3
    from hyperflux.pressure import Pressure
    pressure = Pressure(masked)

    bank = mask_banks(masked)[0]
    upstream = bank.views(torch.randn_like(bank.logits))

    def mask_ste():   # what the masks add to forward + backward: the fused w * H(m), and its backward into w and m
        torch.autograd.backward(bank.masked_views(), upstream)

    def fwd_bwd(model):
        def run():
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y, label_smoothing=0.1).backward()
        return run
    parts = {"mask_ste_fwd_bwd": mask_ste, "sgd_weights": sgd.step, "adam_masks": adam_fused.step,   # the engine's
             "adam_masks_foreach": adam.step, "pressure_add": lambda: pressure.add_gradient(PRESSURE)}
    if with_fwd_bwd: parts.update(fwd_bwd_dense=fwd_bwd(plain), fwd_bwd_masked=fwd_bwd(masked))
    return parts


def op_counts(model_name: str, s: StepSetup, batch: int = 2) -> dict:
    "Compute operators per step of dense, Hyperflux and fixed masks at `batch`; Hyperflux minus dense."
    configs, out = ("dense", "hyperflux", "fixed_masks"), {}
    for foreach, tag in ((None, ""), (True, "_foreach_sgd")):   # the engine's SGD here, and SGD as on a GPU
        small = StepSetup(device=s.device, batch=batch, amp=s.amp, channels_last=s.channels_last, seed=s.seed,
                          sgd_foreach=foreach)
        ops = {c: sum(count_compute_ops(build_step(model_name, c, small)[0]).values()) for c in configs}
        out[f"ops_per_step{tag}"] = {**ops, "batch": batch}
        out[f"extra_ops_per_step{tag}"] = ops["hyperflux"] - ops["dense"]
        out[f"fixed_masks_extra_ops_per_step{tag}"] = ops["fixed_masks"] - ops["dense"]
    return out


def measure_model(model_name: str, s: StepSetup, rounds: int, repeat: int, configs=CONFIGS, breakdown: bool = True,
                  big: bool = False) -> dict:
    "Interleaved step times of every configuration, their ratios to dense, and the cost of Hyperflux's pieces."
    steps = {c: build_step(model_name, c, s)[0] for c in configs}
    times = interleaved(steps, rounds=rounds, repeat=repeat, warmup=2 if s.compile else 1, device=s.device)
    del steps
    row = dict(model=model_name, device=s.device, batch=s.batch, amp=s.amp, channels_last=s.channels_last,
               compile=s.compile, rounds=rounds, steps_per_round=repeat,
               threads=torch.get_num_threads() if s.device == "cpu" else None)
    for c in configs: row[f"{c}_ms"] = summary([1e3 * t for t in times[c]], 2)
    row["ratio"] = ratio_summary(times["hyperflux"], times["dense"])["median"]
    row["ratio_spread"] = ratio_summary(times["hyperflux"], times["dense"])
    row["ratio_best_rounds"] = round(min(times["hyperflux"]) / min(times["dense"]), 3)   # fastest round of each
    row.update(op_counts(model_name, s))
    for c in configs:
        if c in ("dense", "hyperflux"): continue
        row[f"{c}_ratio_spread"] = ratio_summary(times[c], times["dense"])
        row[f"{c}_ratio"] = row[f"{c}_ratio_spread"]["median"]
    if breakdown:
        parts = breakdown_parts(model_name, s, with_fwd_bwd=not big)
        ptimes = interleaved(parts, rounds=max(3, rounds // 2) if big else rounds, repeat=repeat, device=s.device)
        b = row["breakdown_ms"] = {k: round(1e3 * min(v), 3) for k, v in ptimes.items()}   # best round of each part
        extra = b["mask_ste_fwd_bwd"] + b["pressure_add"]
        dense = 1e3 * min(times["dense"])
        # the step's extra work, part by part, over the best dense step: an estimate that is less noisy than the
        # ratio of whole steps when steps take seconds and the machine is shared
        row["ratio_from_parts"] = round((dense + extra + b["adam_masks"]) / dense, 3)
    return row


def run(models: list[str], device: str = "cpu", quick: bool = False, amp: str = "off", channels_last: bool = False,
        compile_modes=(False,), rounds: int | None = None, batch: int | None = None) -> list[dict]:
    "The train_overhead rows of results.json."
    rows = []
    for name in models:
        for comp in compile_modes:
            s = StepSetup(device=device,
                          batch=batch or MODELS[name]["batch"]["cuda" if device.startswith("cuda") else "cpu"],
                          amp=amp, channels_last=channels_last, compile=comp)
            big = name in ("resnet50", "vgg19") and not device.startswith("cuda")
            r = rounds or (2 if quick else (8 if big else 21))
            repeat = 1 if big or quick else 5
            configs = CONFIGS
            log(f"train overhead: {name} on {device} (batch {s.batch}, "
                f"{r} rounds x {repeat} steps{', compiled' if comp else ''})")
            row = measure_model(name, s, r, repeat, configs, breakdown=not quick, big=big)
            log(f"  hyperflux/dense = {row['ratio']:.3f}, fixed masks/dense = {row['fixed_masks_ratio']:.3f}, "
                f"prune hooks/dense = {row['prune_hooks_ratio']:.3f}, extra ops/step = {row['extra_ops_per_step']}")
            rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="lenet300,lenet5,resnet50")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--amp", default="off", choices=["off", "bf16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", choices=["off", "on", "both"], default="off")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds per model (default: 21; 8 for big models on CPU, whose steps take seconds)")
    a = p.parse_args(argv)
    set_threads(a.threads)
    modes = {"off": (False,), "on": (True,), "both": (False, True)}[a.compile]
    print(json.dumps(run(a.models.split(","), a.device, a.quick, a.amp, a.channels_last, modes, a.rounds), indent=1))


if __name__ == "__main__":
    main()
