"""End-to-end checks of `hyperflux train`: kill-and-resume gives the same numbers, DDP on 2 CPU processes, bad input."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, metric_rows, numbers

SETTINGS = {"--arch": "lenet300", "--dataset": "digits", "--method": "hyperflux", "--sparsity": "90",
            "--epochs-prune": "6", "--epochs-regrow": "2", "--mask-lr": "0.01", "--seed": "1"}
ARGS = [x for kv in SETTINGS.items() for x in kv] + ["--no-progress"]
CLI = str(Path(sys.executable).parent / "hyperflux")


def hyperflux(*args, **kw):
    return subprocess.run([CLI, *args], capture_output=True, text=True, cwd=ROOT, **kw)


def _start_and_kill(out: Path, when) -> None:
    """Start a run and SIGKILL it as soon as `when(out, seconds_since_start)` is true (or it ends by itself)."""
    proc = subprocess.Popen([CLI, "train", *ARGS, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.time()
    while proc.poll() is None and not when(out, time.time() - start): time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_and_rerun_gives_identical_results(tmp_path):
    ref = hyperflux("train", *ARGS, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    out, delay = tmp_path / "killed", random.Random(0).uniform(0.2, 1.5)
    _start_and_kill(out, lambda o, t: t > delay)           # at a random moment, likely during start-up
    _start_and_kill(out, lambda o, t: metric_rows(o) >= 3)       # mid-training, right after a checkpoint
    _start_and_kill(out, lambda o, t: metric_rows(o) >= 7)       # in the regrowth stage
    assert not (out / "final.json").exists(), "the run finished before it could be killed: make it longer"
    rerun = hyperflux("train", *ARGS, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    (final_ref, metrics_ref), (final, metrics) = numbers(tmp_path / "ref"), numbers(out)
    assert final == final_ref
    pd.testing.assert_frame_equal(metrics, metrics_ref)
    assert not list(out.glob(".*.tmp")) and not (out / "checkpoint.pt").exists()
    again = hyperflux("train", *ARGS, "--out", str(out))   # finished: nothing is redone
    assert again.returncode == 0 and numbers(out)[0] == final


def test_ddp_two_cpu_processes_keep_identical_masks(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(29500 + os.getpid() % 1000),
           "--no-python", CLI, "train", *ARGS, "--out", str(tmp_path / "ddp")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    final = json.loads((tmp_path / "ddp" / "final.json").read_text())
    assert final["world_size"] == 2 and final["masks_agree_across_ranks"] is True
    assert abs(final["achieved_sparsity_pct"] - 90) < 0.1


@pytest.mark.parametrize("args,message", [
    (["--arch", "alexnet"], "unknown architecture 'alexnet'"),
    (["--dataset", "mnist-c"], "unknown dataset 'mnist-c'"),
    (["--arch", "vgg19"], "vgg19"),
    (["--method", "magic"], "unknown method 'magic'"),
    (["--sparsity", "100"], "--sparsity must be in (0, 100)"),
    (["--sparsity", "-5"], "--sparsity must be in (0, 100)"),
    (["--epochs-prune", "0"], "--epochs-prune must be a positive"),
    (["--init", "/nonexistent/dense.pt"], "no such file"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message, capsys):
    """In-process (no interpreter start-up per case): exit status 2, one line on stderr, nothing written."""
    from hyperflux.cli import main
    settings = {**SETTINGS, **dict(zip(args[::2], args[1::2]))}
    code = main(["train", *[x for kv in settings.items() for x in kv], "--no-progress", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad" / "final.json").exists()


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    out = tmp_path / "run"
    _start_and_kill(out, lambda o, t: metric_rows(o) >= 2)
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    res = hyperflux("train", *ARGS, "--out", str(out))
    assert res.returncode == 2 and "corrupt" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (out / "final.json").exists()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    res = hyperflux("train", *ARGS, "--lr", "1e12", "--out", str(out))
    assert res.returncode == 2 and "training loss became" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (out / "final.json").exists()
