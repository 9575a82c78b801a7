"""Baselines end to end: under DDP (2 CPU processes, gloo) a data-dependent saliency (Taylor) averages its gradients
over the ranks, so every rank prunes the same weights and the run lands on the target."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

CLI = str(Path(sys.executable).parent / "hyperflux")


@pytest.mark.slow   # ~20 s on 2 cores; `make test-slow`
def test_taylor_under_ddp_keeps_identical_masks(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(30500 + os.getpid() % 1000),
           "--no-python", CLI, "train", "--method", "taylor", "--arch", "lenet300", "--dataset", "digits",
           "--sparsity", "95", "--epochs-prune", "3", "--epochs-regrow", "1", "--max-batches", "4", "--no-progress",
           "--law", "--out", str(tmp_path / "ddp")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    final = json.loads((tmp_path / "ddp" / "final.json").read_text())
    assert final["world_size"] == 2 and final["masks_agree_across_ranks"] is True
    assert round(final["density_pct"] * final["prunable"] / 100) == round(final["prunable"] * 0.05)
    assert (tmp_path / "ddp" / "law.csv").exists()
