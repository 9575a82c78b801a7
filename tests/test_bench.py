"""`make bench` smoke test: the quick mode of benchmarks/bench.py writes complete results.json and RESULTS.md.

Only the structure is checked, never a timing (timings are measured as ratios by `make bench`, not tested).
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), (out / "RESULTS.md").read_text()


def test_results_have_every_section(quick_results):
    results, _ = quick_results
    sections = {"machine", "train_overhead", "e2e", "memory", "sparse_inference", "reach", "data_pipeline", "gpu",
                "goals"}
    assert sections <= set(results)
    assert {"cpu", "cores", "memory_gib", "torch", "command", "date_utc", "git_commit"} <= set(results["machine"])
    assert results["quick"] is True and results["gpu"]["measured"] is False


def test_train_overhead_rows(quick_results):
    rows = quick_results[0]["train_overhead"]
    assert {r["model"] for r in rows} >= {"lenet300", "lenet5"}
    for r in rows:
        assert {"model", "device", "ratio", "prune_hooks_ratio", "dense_ms", "hyperflux_ms", "prune_hooks_ms"} <= set(r)
        assert r["device"] == "cpu" and r["ratio"] > 0 and r["prune_hooks_ratio"] > 0
        assert r["extra_ops_per_step"] <= 16 and r["extra_ops_per_step_foreach_sgd"] <= 16   # masks: a fixed cost


def test_e2e_rows(quick_results):
    rows = quick_results[0]["e2e"]
    assert [r["arch"] for r in rows] == ["lenet5"]
    for r in rows:
        assert r["steps_per_epoch"] >= 1 and r["device"] == "cpu"
        for m in ("dense", "hyperflux"):
            assert {f"{m}_epoch_s", f"{m}_bare_step_ms", f"{m}_images_per_s", f"{m}_bare_images_per_s",
                    f"{m}_engine_overhead", f"{m}_train", f"{m}_warmup_s"} <= set(r)
            assert r[f"{m}_images_per_s"]["median"] > 0 and r[f"{m}_train"]["warm_epoch_images_per_s"] > 0


def test_memory_inference_reach_data(quick_results):
    results, _ = quick_results
    assert all({"model", "ratio", "dense_peak_mib", "hyperflux_peak_mib"} <= set(r) for r in results["memory"])
    inf = results["sparse_inference"]
    assert {r["batch"] for r in inf if r["model"] == "lenet300"} == {1, 64}
    for r in inf:
        assert r["speedup"] > 0 and r["max_abs_diff"] <= 1e-4 * max(1.0, r["max_abs_output"])
        assert 0.5 < r["flops_remaining_pct"] < 2.0          # 99 % sparse: about 1 % of the FLOPs left
    reach = results["reach"]["rows"]
    assert {r["method"] for r in reach} >= {"hyperflux", "imp", "gmp"}
    assert all(r["reached"] is not None for r in reach)        # every run ends at its target sparsity
    data = results["data_pipeline"]
    assert data["hyperflux_device_loader_images_per_s"]["median"] > 0
    assert data["torchvision_workers0_images_per_s"]["median"] > 0


def test_results_md_explains_every_section(quick_results):
    _, md = quick_results
    for heading in ("## Machine and run", "## Training overhead (CPU)", "## End-to-end throughput (CPU)",
                    "## Peak memory (CPU)",
                    "## Sparse inference (CPU)", "## Compute to reach a sparsity", "## Data pipeline (CPU)", "## GPU",
                    "Quick mode"):
        assert heading in md, heading


@pytest.fixture(scope="module")
def gpu_dry_run(tmp_path_factory):
    "benchmarks/gpu_check.py's whole check on CPU with tiny sizes (compile through aot_eager: no code generation)."
    out = tmp_path_factory.mktemp("gpu_check")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                           "--backend", "aot_eager", "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())["gpu"], (out / "RESULTS.md").read_text()


def test_gpu_check_dry_run_writes_every_step(gpu_dry_run):
    gpu, md = gpu_dry_run
    assert gpu["measured"] is False and gpu["dry_run"] is True and gpu["steps_done"] == ["overhead", "e2e", "compile"]
    assert {r["model"] for r in gpu["train_overhead"]} == {"lenet300", "lenet5"}
    assert all({"ratio", "fixed_masks_ratio", "extra_ops_per_step"} <= set(r) for r in gpu["train_overhead"])
    assert [r["arch"] for r in gpu["e2e"]] == ["lenet5"] and gpu["e2e"][0]["dense_images_per_s"]["median"] > 0
    (row,) = gpu["compile"]
    assert "error" not in row, row.get("traceback")
    for m in ("dense", "hyperflux"):
        assert row[f"{m}_graphs"] >= 1 and row[f"{m}_recompiles"] == 0 and row[f"{m}_speedup"]["median"] > 0
    for heading in ("## GPU", "A dry run", "## Training overhead", "## End-to-end throughput", "## torch.compile"):
        assert heading in md, heading


def test_gpu_check_script_is_valid_bash():
    script = ROOT / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert "gpu_check.py --device cuda" in script.read_text()
