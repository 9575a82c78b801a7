"""benchmarks/RESULTS.md from benchmarks/results.json: every figure with a sentence saying what it is.

    python benchmarks/report.py   # re-render RESULTS.md from results.json
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from hyperflux.report import markdown_table

HERE = Path(__file__).resolve().parent


def _f(x, digits=2) -> str:
    return "-" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _spread(s: dict, digits=2) -> str:
    "median [q1, q3] (min to max) of a summary dict."
    return (f"{s['median']:.{digits}f} [{s['q1']:.{digits}f}, {s['q3']:.{digits}f}] "
            f"({s['min']:.{digits}f} to {s['max']:.{digits}f})")


def _table(header: list[str], rows: list[list]) -> list[str]:
    "The lines of a Markdown table, written by the report's one table writer."
    return markdown_table(pd.DataFrame(rows, columns=header)).rstrip("\n").split("\n")


def machine_section(r: dict) -> list[str]:
    m = r["machine"]
    lines = ["## Machine and run", ""]
    lines += _table(["what", "value"], [
        ["CPU", f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB memory"],
        ["software", f"torch {m['torch']}, Python {m['python']}, {m['platform']}"],
        ["torch threads", m["torch_threads"]],
        ["malloc", m.get("malloc", "glibc's defaults (not recorded: before keep_freed_memory)")],
        ["command", f"`{m['command']}`"],
        ["date (UTC)", m["date_utc"]],
        ["git commit", f"`{m['git_commit']}`"],
        ["load average (1/5/15 min) at start / end", f"{m.get('load_average_start')} / {m.get('load_average_end')}"],
        ["wall time of the whole run", f"{r.get('wall_seconds', 0) / 60:.1f} min"],
    ])
    lines += ["", "The load average counts processes wanting a CPU: above the number of cores, other work shared the "
              "machine during the run and every absolute time is inflated; the ratios below compare configurations "
              "measured side by side, round after round, so they are what to read. The benchmarks use one torch "
              "thread by default: on a shared 2-core machine two threads wait on each other and timings become "
              "erratic."]
    if kept := r.get("kept_from"):
        lines += ["", "Sections kept from earlier runs (`bench.py --merge`), measured on: " +
                  ", ".join(f"{k} {v}" for k, v in kept.items()) + "."]
    if r.get("quick"): lines += ["", "**Quick mode: a smoke test with tiny sizes; these numbers mean nothing.**"]
    return lines + [""]


def goals_section(r: dict) -> list[str]:
    g = r.get("goals") or {}
    if not g: return []
    lines = ["## Goals at a glance", ""]
    lines += _table(["goal", "target", "measured", "met"],
                    [[k, v["goal"], _f(v["value"], 3), "yes" if v["met"] else "**no**"] for k, v in g.items()])
    return lines + [""]


def train_section(rows: list[dict], title="Training overhead (CPU)") -> list[str]:
    if not rows: return []
    lines = [f"## {title}", "",
             "One training step (forward, backward, optimiser steps) of Hyperflux over one step of dense training of "
             "the same model on the same batch with the same weight optimiser (SGD, momentum 0.9, weight decay 5e-4). "
             "Hyperflux's step is the engine's: masks attached, Adam on the mask logits, the pressure gradient added "
             "after backward. The peer is torch.nn.utils.prune (a fixed mask applied by a forward pre-hook, not "
             "learned). A ratio is computed per round from adjacent measurements; the table gives the median "
             "[quartiles] (min to max) over rounds.", ""]
    head = ["model", "batch", "dense ms/step", "hyperflux ms/step", "hyperflux / dense", "best rounds",
            "prune hooks / dense"]
    if any("fixed_masks_ratio" in x for x in rows): head.append("fixed masks / dense")
    if any("extra_ops_per_step" in x for x in rows): head.append("extra ops/step")
    table = []
    for x in rows:
        t = [x["model"] + (" (compiled)" if x.get("compile") else ""), x["batch"], _f(x["dense_ms"]["median"]),
             _f(x["hyperflux_ms"]["median"]), _spread(x["ratio_spread"]), _f(x.get("ratio_best_rounds"), 3),
             _spread(x["prune_hooks_ratio_spread"])]
        if "fixed masks / dense" in head:
            fixed = x.get("fixed_masks_ratio_spread")
            t.append(_spread(fixed) if fixed is not None else "-")
        if "extra ops/step" in head: t.append(x.get("extra_ops_per_step", "-"))
        table.append(t)
    lines += _table(head, table)
    lines += ["", "- *dense / hyperflux ms/step*: median time of one training step of each configuration.",
              "- *hyperflux / dense*: the training overhead of learning masks; the goal is <= 1.30 for "
              "LeNet-300-100 and <= 1.10 for the others on CPU, <= 1.10 on GPU (aim 1.05).",
              "- *best rounds*: fastest Hyperflux round over fastest dense round: other work on the machine only adds "
              "time, so this is the least disturbed estimate when the spread is wide.",
              "- *prune hooks / dense*: the same ratio for torch.nn.utils.prune's mask hooks, the usual way of "
              "masking weights in PyTorch (it does not learn masks, so it does less work than Hyperflux).",
              "- *fixed masks / dense*: masks attached but frozen with every weight present, as the engine trains "
              "the methods that do not learn masks (dense, GMP, IMP, ...).",
              "- *extra ops/step*: compute operators of one step at batch 2 (top-level aten operators, views and "
              "metadata-only operators left out), Hyperflux minus dense; the goal is <= 16 whatever the depth."]
    parts = [x for x in rows if x.get("breakdown_ms")]
    if parts:
        lines += ["", "### Where Hyperflux's extra time goes", "",
                  "Each piece timed alone (best of its rounds, ms): *mask_ste_fwd_bwd* is w*H(m) and its backward "
                  "into w and m for every masked layer (what the masks add to forward+backward); *adam_masks* is the "
                  "mask optimiser step as the engine runs it (fused Adam), *adam_masks_foreach* torch's default "
                  "multi-tensor Adam for comparison; "
                  "*sgd_weights* the weight optimiser step both configurations share; *pressure_add* the pressure "
                  "gradient; *fwd_bwd_dense/masked* (small models) a whole forward+backward without and with masks. "
                  "*ratio from parts* adds the pieces to the best dense step: an estimate less exposed to the "
                  "machine's noise than whole steps that take seconds.", ""]
        keys = sorted({k for x in parts for k in x["breakdown_ms"]})
        lines += _table(["model"] + keys + ["ratio from parts"],
                        [[x["model"]] + [_f(x["breakdown_ms"].get(k), 3) for k in keys] +
                         [_f(x.get("ratio_from_parts"), 3)] for x in parts])
        lines += [""] + [_breakdown_sentence(x) for x in parts]
    return lines + [""]


def _breakdown_sentence(x: dict) -> str:
    "What the breakdown says for one model, in words."
    b = x["breakdown_ms"]
    dense = x["dense_ms"]["min"]
    extra = {"the mask's forward+backward (w*H(m))": b["mask_ste_fwd_bwd"],
             "the mask Adam step": b["adam_masks"],
             "the pressure gradient": b["pressure_add"]}
    total = sum(extra.values())
    parts = ", ".join(f"{k} {v:.2f} ms ({100 * v / total:.0f} %)" for k, v in extra.items())
    return (f"- {x['model']}: Hyperflux adds about {total:.2f} ms to a best dense step of {dense:.2f} ms: {parts}. "
            f"(torch's default multi-tensor Adam would take {b['adam_masks_foreach']:.2f} ms.) "
            + ("The model does little arithmetic per weight (one multiply-add per weight and example), so the "
               "per-weight passes over memory that masks need (H(m), its gradient, Adam's two moments) weigh about as "
               "much as the training itself." if total > 0.3 * dense else
               "The model does much arithmetic per weight (a convolution reuses each weight at every pixel), so the "
               "per-weight work of the masks is small beside it."))


def e2e_section(rows: list[dict], title="End-to-end throughput (CPU)") -> list[str]:
    if not rows: return []
    lines = [f"## {title}", "",
             "The engine's own training loop (`hyperflux.engine.Run.train_epoch`, what `hyperflux train` runs every "
             "epoch) on CIFAR-shaped synthetic data, against the same number of bare engine steps "
             "(`hyperflux.engine.train_step(run, x, y)` on one fixed batch, no loader): *engine overhead* = epoch / "
             "(steps x bare step) - 1, per round, median (goal on GPU: dense within 15 %). *train epoch* is a warm "
             "epoch of a whole `hyperflux.engine.train` run (metrics.csv `seconds`), which adds the test-set "
             "evaluation and the method's end of epoch.", ""]
    head = ["arch", "batch", "steps/epoch", "method", "epoch images/s", "bare step ms", "bare images/s",
            "engine overhead", "train epoch images/s", "warm-up s"]
    table = []
    for x in rows:
        for m in ("dense", "hyperflux"):
            if f"{m}_epoch_s" not in x: continue
            table.append([x["arch"] + (" (compiled)" if x.get("compile") else ""), x["batch"], x["steps_per_epoch"], m,
                          _spread(x[f"{m}_images_per_s"], 0), _f(x[f"{m}_bare_step_ms"]["median"]),
                          _f(x[f"{m}_bare_images_per_s"]["median"], 0),
                          f"{100 * x[f'{m}_engine_overhead']:+.1f} %",
                          _f((x.get(f"{m}_train") or {}).get("warm_epoch_images_per_s"), 0),
                          _f(x.get(f"{m}_warmup_s"))])
    lines += _table(head, table)
    lines += ["", "- *epoch images/s*: images of one epoch over the seconds of `Run.train_epoch`, median [quartiles] "
              "(min to max) over rounds.",
              "- *bare step ms*: one engine step on a fixed batch; *bare images/s*: what an epoch would reach if the "
              "engine added nothing around its step.",
              "- *warm-up s*: the first three steps (torch.compile's compilation when compiled)."]
    return lines + [""]


def memory_section(rows: list[dict], title="Peak memory (CPU)") -> list[str]:
    if not rows: return []
    gpu = "hyperflux_ratio_above_baseline" not in rows[0]
    lines = [f"## {title}", "",
             ("Peak GPU memory allocated by torch" if gpu else "Peak resident memory (VmHWM) of a fresh process") +
             " per configuration, after a few training steps at the batch of the overhead table.", ""]
    head = ["model", "batch", "dense MiB", "hyperflux MiB", "hyperflux / dense", "prune hooks / dense"]
    if not gpu: head[2:2] = ["baseline MiB"]; head += ["hyperflux / dense above baseline"]
    table = []
    for x in rows:
        t = [x["model"], x["batch"], _f(x["dense_peak_mib"], 1), _f(x["hyperflux_peak_mib"], 1),
             _f(x["hyperflux_ratio"], 3), _f(x.get("prune_hooks_ratio"), 3)]
        if not gpu: t[2:2] = [_f(x["baseline_mib"], 1)]; t += [_f(x["hyperflux_ratio_above_baseline"], 3)]
        table.append(t)
    lines += _table(head, table)
    lines += [""]
    if not gpu: lines.append("- *baseline*: memory of the process after importing torch and hyperflux, before any "
                             "model exists (shared by every configuration).")
    lines.append("- *hyperflux / dense*: ratio of peaks; per prunable weight Hyperflux adds its logit, the logit's "
                 "gradient, Adam's two moments, H(m) and the masked weight w*H(m) the layers compute with: 6 extra "
                 "copies of the prunable weights, where the dense step keeps 3 (weights, gradients, momentum).")
    if not gpu: lines.append("- *above baseline*: the same ratio counting only what training allocates.")
    lines.append("- *prune hooks / dense*: torch.nn.utils.prune keeps weight_orig and a mask buffer.")
    return lines + [""]


def inference_section(rows: list[dict]) -> list[str]:
    if not rows: return []
    lines = ["## Sparse inference (CPU)", "",
             "A 99 %-sparse model turned into its inference form by `hyperflux.sparse.sparsify` (each conv/linear "
             "layer gets the fastest of dense, compact, CSR and embedding-bag forms on this machine, timed at that "
             "batch size) against the same baked model run densely. Outputs are checked equal (max abs difference "
             "in the table). Speedup = dense time / sparse time per round: median [quartiles] (min to max).", ""]
    head = ["model", "masks", "batch", "FLOPs left %", "dense ms", "sparse ms", "speedup", "layer forms chosen",
            "max abs diff"]
    lines += _table(head,
                    [[x["model"], x["masks"], x["batch"], _f(x["flops_remaining_pct"], 2),
                      _f(x["dense_ms"]["median"], 3), _f(x["sparse_ms"]["median"], 3), _spread(x["speedup_spread"]),
                      ", ".join(f"{k}: {v}" for k, v in x["choices"].items()), f"{x['max_abs_diff']:.1e}"]
                     for x in rows])
    lines += ["", "- *FLOPs left*: sparse over dense FLOPs of one forward (PAPER A.12 counting, masked layers only).",
              "- *dense / sparse ms*: median latency of one forward of the whole batch.",
              "- *speedup*: how many times faster the sparse form is; below 1 the sparse model is slower.",
              "- *layer forms chosen*: how many layers run dense, compacted (dead inputs/outputs dropped), as CSR "
              "or as an embedding bag.", ""]
    lines += ["Where sparse loses or barely wins, and why:", ""]
    for x in rows:
        verdict = "faster" if x["speedup"] >= 1.1 else ("no faster" if x["speedup"] >= 0.9 else "slower")
        lines.append(f"- {x['model']}, batch {x['batch']}: sparse is {verdict} ({x['speedup']:.2f}x) with "
                     f"{x['flops_remaining_pct']:.2f} % of the FLOPs left.")
    lines += ["", _why_sparse_is_slow(rows)]
    return lines + [""]


def _why_sparse_is_slow(rows: list[dict]) -> str:
    "Why the speedups stay far below what 1 % of the FLOPs suggests, with this run's numbers."
    lenet1 = next((x for x in rows if x["model"] == "lenet300" and x["batch"] == 1), None)
    conv = next((x for x in rows if x["model"] != "lenet300" and x["batch"] > 1), None)
    text = ("Why the speedups stay far below the 100x that 1 % of the FLOPs suggests: (1) every operator call has a "
            "fixed cost of microseconds to tens of microseconds here, which a sparse form cannot remove and to which "
            "it adds its own (index lists, layout changes)")
    if lenet1:
        text += (f"; LeNet-300-100's whole dense forward at batch 1 takes only {lenet1['dense_ms']['median']:.3f} ms, "
                 "mostly such costs")
    text += ("; (2) the sparse linear forms need the input with features first, and transposing the first layer's "
             "input costs memory traffic proportional to the input, not to the kept weights, about as much as the "
             "sparse product itself at batch 64 to 256 on this machine; (3) convolutions over large maps are "
             "compute-dense and oneDNN runs them efficiently, while a gathered sparse convolution moves more memory "
             "than the dense one computes, so those layers stay dense")
    if conv:
        n = sum(conv["choices"].values())
        text += (f" ({conv['choices'].get('dense', 0)} of {conv['model']}'s {n} layers stay dense "
                 f"at batch {conv['batch']}; its 1x1 convolutions and deep layers on small maps run as CSR "
                 "products)")
    return text + (". Masks from real Hyperflux runs kill whole channels and units, which the compact form turns into "
                   "plainly smaller dense layers; the uniform masks used for ResNet-50 here are the worst case.")


def reach_section(r: dict) -> list[str]:
    if not r: return []
    lines = ["## Compute to reach a sparsity (lenet300)", "",
             "Training runs of the engine (`hyperflux.engine.train`, as `hyperflux train`); for each method and target "
             "sparsity: the first epoch at which the model is at least that sparse, the wall time spent until then "
             "(metrics.csv `seconds`, cumulative), the test accuracy at that epoch, and the accuracy and sparsity at "
             "the end of the run (after regrowth or fine-tuning).", ""]
    table = []
    for x in r["rows"]:
        reached = x.get("reached")
        table.append([x["dataset"], x["method"], _f(x["target_sparsity_pct"], 0), x["epochs_budget"],
                      reached["epoch"] if reached else "not reached", _f(reached["seconds"]) if reached else "-",
                      _f(reached["test_acc_pct"]) if reached else "-", _f(x["final_test_acc_pct"]),
                      _f(x["final_sparsity_pct"], 2), _f(x["run_seconds"])])
    lines += _table(["data", "method", "target %", "epoch budget", "first epoch at target", "seconds to target",
                     "accuracy then %", "final accuracy %", "final sparsity %", "run seconds"], table)
    lines += ["", "- *epoch budget*: epochs of the run (pruning + regrowth/fine-tuning); every method gets the same.",
              "- *first epoch at target* and *seconds to target*: the compute a method spends to first reach the "
              "sparsity; *accuracy then* is the test accuracy at that moment, before any fine-tuning.",
              "- *final accuracy / sparsity*: at the end of the run (final.json); *run seconds*: its whole wall time. "
              "For Hyperflux the final accuracy is measured after the budgeted landing projects the masks onto "
              "exactly the target count, while metrics.csv's accuracy of each epoch is measured before that epoch's "
              "projection."]
    lines += [f"- Note: {n}" for n in r.get("notes", [])]
    return lines + [""]


def data_section(d: dict, title="Data pipeline (CPU)") -> list[str]:
    if not d: return []
    names = [k[:-len("_images_per_s")] for k in d if k.endswith("_images_per_s")]
    lines = [f"## {title}", "",
             f"Images per second delivered to the training loop (on {d['device']}) over a CIFAR-10-format training set "
             f"of {d['images_per_epoch']} images, batch {d['batch']}, with {d['augmentation']}; median [quartiles] "
             f"(min to max) over {d['rounds']} interleaved epochs.", ""]
    lines += _table(["pipeline", "images/s", "hyperflux speedup"],
                    [[n, _spread(d[f"{n}_images_per_s"], 0), _f(d.get(f"speedup_vs_{n}"))] for n in names])
    lines += ["", "- *hyperflux_device_loader*: `hyperflux.data` keeps the uint8 images on the device and crops, flips "
              "and normalises whole batches there.",
              "- *torchvision_workersN*: torchvision's per-image PIL transforms (RandomCrop(32, padding=4), "
              "RandomHorizontalFlip, ToTensor, Normalize) in a DataLoader with N worker processes.",
              "- *hyperflux speedup*: the device loader's images/s over that pipeline's."]
    return lines + [""]


def gpu_section(g: dict) -> list[str]:
    if g and g.get("dry_run"):
        return (["## GPU", "", f"**A dry run ({g.get('reason')}): every step of the GPU check ran with tiny sizes; "
                 "these numbers mean nothing.**", ""] + train_section(g.get("train_overhead", []), "Training overhead")
                + e2e_section(g.get("e2e", []), "End-to-end throughput") + compile_section(g.get("compile", []),
                                                                                          "torch.compile"))
    if not g or not g.get("measured"):
        reason = (g or {}).get("reason", "no GPU")
        return ["## GPU", "", f"Not measured: {reason}. `bash benchmarks/gpu_check.sh` on one CUDA GPU fills this "
                "section in under 6 minutes (training overhead of LeNet-300-100, LeNet-5, ResNet-50 and VGG-19 at "
                "batch 128, bf16 autocast, channels_last; the engine's end-to-end throughput on ResNet-50; "
                "torch.compile on and off; goals: Hyperflux / dense <= 1.10, the engine's dense epoch within 15 % of "
                "steps x step time).", ""]
    m = g.get("machine", {})
    lines = ["## GPU", "",
             f"Measured on {m.get('gpu', 'a GPU')} ({m.get('date_utc', '')}, commit `{m.get('git_commit')}`), "
             f"batch {g['batch']}, {g['amp']} autocast, channels_last={g['channels_last']}.", ""]
    lines += train_section(g.get("train_overhead", []), "Training overhead (GPU)")
    lines += e2e_section(g.get("e2e", []), "End-to-end throughput (GPU)")
    lines += compile_section(g.get("compile", []))
    lines += memory_section(g.get("memory", []), "Peak memory (GPU)")
    lines += data_section(g.get("data_pipeline"), "Data pipeline (GPU)")
    return lines


def compile_section(rows: list[dict], title="torch.compile (GPU)") -> list[str]:
    if not rows: return []
    lines = [f"## {title}", "",
             "Dense and Hyperflux training steps (the engine's own step for Hyperflux) eager and under torch.compile, "
             "interleaved: *compile s* is the first compiled step (tracing and code generation), *graphs* the graphs "
             "it compiled, *recompiles* the graphs compiled by the two steps after it (0: traced once), *speed-up* "
             "eager step time over compiled step time, median of per-round ratios.", ""]
    table = []
    for x in rows:
        if "error" in x:
            table.append([x["model"], x["mode"], "failed", "-", "-", "-", "-", x["error"][:120]])
            continue
        for m in ("dense", "hyperflux"):
            table.append([x["model"], x["mode"], m, _f(x[f"{m}_compile_s"]), x[f"{m}_graphs"], x[f"{m}_recompiles"],
                          f"{_f(x[f'{m}_eager_ms']['median'], 3)} / {_f(x[f'{m}_compiled_ms']['median'], 3)}",
                          _spread(x[f"{m}_speedup"])])
    lines += _table(["model", "mode", "method", "compile s", "graphs", "recompiles", "eager / compiled ms",
                     "speed-up"], table)
    done = [x for x in rows if "error" not in x]
    lines += [""] + [f"- {x['model']} ({x['mode']}): Hyperflux / dense compiled "
                     f"{x['hyperflux_over_dense_compiled']['median']:.3f}, eager "
                     f"{x['hyperflux_over_dense_eager']['median']:.3f}." for x in done]
    return lines + [""]


def render(r: dict) -> str:
    "The whole RESULTS.md."
    lines = ["# Benchmark results", "",
             "Written by `make bench` (`python benchmarks/bench.py`) from `benchmarks/results.json`; "
             "do not edit by hand. How each figure is measured is said beside it; the scripts are in "
             "`benchmarks/`.", ""]
    if "machine" in r: lines += machine_section(r)
    lines += goals_section(r)
    lines += train_section(r.get("train_overhead", []))
    lines += e2e_section(r.get("e2e", []))
    lines += memory_section(r.get("memory", []))
    lines += inference_section(r.get("sparse_inference", []))
    lines += reach_section(r.get("reach"))
    lines += data_section(r.get("data_pipeline"))
    lines += gpu_section(r.get("gpu"))
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    results = json.loads((HERE / "results.json").read_text())
    (HERE / "RESULTS.md").write_text(render(results))
    print(f"wrote {HERE / 'RESULTS.md'}")
