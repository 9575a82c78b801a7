"""`make paper EXECUTOR=slurm` against a real Slurm (slurm-wlm 22.05 and munge on this machine, started by
tests/slurm/start.sh): the smoke profile equals a local run number for number, a cancelled run is submitted again,
a run whose dependency is cancelled is cancelled by Slurm (not left pending) and recovered by a rerun, and a run
requeued at its time limit resumes exactly.

These tests run only when HYPERFLUX_SLURM_TEST=1 (.ci/run sets it once start.sh has the daemons up); without it they
are skipped with the reason. They take 5 to 7.5 minutes on a 2-core machine under load 4 to 6, most of it training.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, metric_rows, numbers

pytestmark = pytest.mark.skipif(
    os.environ.get("HYPERFLUX_SLURM_TEST") != "1",
    reason="no real Slurm: start one with `bash tests/slurm/start.sh` (root; .ci/run does) and set "
           "HYPERFLUX_SLURM_TEST=1; stop it with `bash tests/slurm/stop.sh`")

CLI = str(Path(sys.executable).parent / "hyperflux")
SUBMITTED: list[str] = []   # every Slurm job these tests submitted, cancelled at the end if still queued

# A run that starts from another (depends_on), and one that needs longer than its 1-minute time limit.
SWEEP = """
profiles:
  deps:
    defaults: {arch: lenet300, dataset: digits, epochs_prune: 6, epochs_regrow: 2, seed: 11}
    resources: {time_min: 5}
    runs:
      - {study: accuracy, method: dense}
      - {study: accuracy, method: hyperflux, mask_lr: 0.01, sparsity_pct: 90, init: {run: {method: dense}}}
  requeue:
    resources: {time_min: 1}
    runs:
      - {study: accuracy, arch: lenet300, dataset: digits, method: hyperflux, mask_lr: 0.003, sparsity_pct: 98,
         epochs_prune: 1200, epochs_regrow: 300, seed: 12}
"""


@pytest.fixture(scope="module", autouse=True)
def cancel_leftovers():
    """After the tests: cancel, by id, any job of theirs still in the queue (a failed test must not leave work)."""
    yield
    ids = sorted({j.split("_")[0] for j in SUBMITTED})
    if ids: subprocess.run(["scancel", *ids], capture_output=True)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "slurm-test.yaml"
    path.write_text(SWEEP)
    return path


def run(*cmd, check: bool = True, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, **kw)
    if check: assert out.returncode == 0, f"{cmd}: {out.stderr}\n{out.stdout}"
    return out


def job_ids(stdout: str) -> dict[str, str]:
    """The Slurm jobs a `make paper EXECUTOR=slurm` printed: wave N -> job id, and 'report' -> job id."""
    jobs = {f"wave {w}": j for w, j in re.findall(r"wave (\d+): Slurm job (\d+)", stdout)}
    if m := re.search(r"is Slurm job (\d+)", stdout): jobs["report"] = m.group(1)
    SUBMITTED.extend(jobs.values())
    return jobs


def slurm_state(job: str) -> tuple[str, str]:
    """(state, reason) of a job or array task, from squeue (which keeps ended jobs for MinJobAge, 300 s)."""
    out = run("squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", job.split("_")[0]).stdout
    rows = dict((p[0], (p[1], p[2])) for p in (line.split("|") for line in out.splitlines()))
    return rows.get(job, ("GONE", ""))


def wait_until(predicate, timeout: float, what: str, poll: float = 1.0):
    start = time.time()
    while not (value := predicate()):
        assert time.time() - start < timeout, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(poll)
    return value


def wait_for_jobs(ids, timeout: float = 420):
    """Until none of these jobs (arrays included) is pending, running or completing."""
    alive = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "SUSPENDED")
    def ended():
        out = run("squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(sorted(ids))).stdout
        return not [line for line in out.splitlines() if line.split("|")[1] in alive]
    wait_until(ended, timeout, f"Slurm jobs {sorted(ids)} to end", poll=2)


def status(*args) -> str:
    return run(CLI, "paper", *args, "--status").stdout


def make_paper(profile: str, flags: str, check: bool = True) -> subprocess.CompletedProcess:
    return run("make", "paper", f"PROFILE={profile}", "EXECUTOR=slurm", f"FLAGS={flags}", check=check)


def test_smoke_on_slurm_equals_local_and_a_cancelled_run_is_submitted_again(tmp_path):
    start = time.time()
    runs, ref, figures = tmp_path / "runs", tmp_path / "ref", tmp_path / "figures"
    local = subprocess.Popen([CLI, "paper", "--profile", "smoke", "--runs-dir", ref, "--no-report", "--no-progress"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # the README's command, as it is: the smoke profile asks for CPUs only and fits a 2-CPU node
        first = make_paper("smoke", f"--runs-dir {runs} --figures-dir {figures}")
        jobs = job_ids(first.stdout)
        assert "9 run(s) of 1 node(s) x 0 GPU(s) x 1 CPU(s)" in first.stdout and "report" in jobs, first.stdout
        running, pending = f"{jobs['wave 1']}_0", f"{jobs['wave 1']}_8"   # two run at a time: the last one waits
        wait_until(lambda: slurm_state(running)[0] == "RUNNING", 60, f"{running} to start", poll=0.2)
        run("scancel", running, pending)   # mid-run (Python is still starting) and before it started
        wait_until(lambda: slurm_state(running)[0] == "CANCELLED", 30, f"{running} to be cancelled")
        listed = status("--profile", "smoke", "--runs-dir", runs)
        for job in (running, pending):
            line = next(x for x in listed.splitlines() if f"slurm job {job} " in x)
            assert line.startswith("cancelled "), listed
        again = make_paper("smoke", f"--runs-dir {runs} --figures-dir {figures}")
        jobs2 = job_ids(again.stdout)
        assert ", 2 to submit in 1 job(s)" in again.stdout, again.stdout
        assert (f"cancelled the earlier report job {jobs['report']}" in again.stdout
                or slurm_state(jobs["report"])[0] != "CANCELLED"), again.stdout
        wait_for_jobs([jobs["wave 1"], jobs2["wave 1"], jobs2["report"]])
        assert slurm_state(jobs2["report"])[0] == "COMPLETED", slurm_state(jobs2["report"])
        slurm_done = time.time() - start
        assert local.wait(timeout=600) == 0, local.stdout.read()
    finally:
        if local.poll() is None: local.kill()
    names = sorted(p.parent.name for p in ref.glob("*/final.json"))
    assert len(names) == 9
    for name in names:   # every number of every run, bit for bit
        (final, metrics), (final_ref, metrics_ref) = numbers(runs / name), numbers(ref / name)
        assert final == final_ref, name
        pd.testing.assert_frame_equal(metrics, metrics_ref, check_exact=True)
    manifest = json.loads((figures / "manifest.json").read_text())
    assert manifest["counts"]["skipped"] == 9 and manifest["figures"], manifest["counts"]
    listed = status("--profile", "smoke", "--runs-dir", runs)
    assert listed.startswith("9 runs: 9 finished\n") and f"report: Slurm job {jobs2['report']}" in listed, listed
    print(f"\nsmoke on Slurm with one scancel and a rerun: {slurm_done:.0f} s to the report; "
          f"with the local reference: {time.time() - start:.0f} s")


def test_a_cancelled_dependency_cancels_its_dependent_and_a_rerun_recovers_both(tmp_path, sweep_file):
    runs = tmp_path / "runs"
    flags = f"--sweep {sweep_file} --runs-dir {runs} --no-report"
    first = make_paper("deps", flags)
    jobs = job_ids(first.stdout)
    assert set(jobs) == {"wave 1", "wave 2"}, first.stdout
    run("scancel", jobs["wave 1"])
    # Slurm cancels the dependent job itself (--kill-on-invalid-dep=yes) instead of leaving it pending for ever
    wait_until(lambda: slurm_state(jobs["wave 2"])[0] == "CANCELLED", 60, "the dependent job to be cancelled")
    assert slurm_state(jobs["wave 2"])[1] == "DependencyNeverSatisfied"
    listed = status("--sweep", sweep_file, "--profile", "deps", "--runs-dir", runs)
    assert listed.startswith("2 runs: 2 cancelled\n"), listed
    again = make_paper("deps", flags)
    jobs2 = job_ids(again.stdout)
    assert ", 2 to submit in 2 job(s)" in again.stdout, again.stdout
    wait_for_jobs(jobs2.values(), timeout=240)
    assert status("--sweep", sweep_file, "--profile", "deps", "--runs-dir", runs).startswith("2 runs: 2 finished\n")
    # a partition that does not exist: one line, before anything is submitted
    bad = make_paper("deps", f"--sweep {sweep_file} --runs-dir {tmp_path / 'bad'} --slurm-partition nope", check=False)
    errors = [x for x in bad.stderr.splitlines() if "error" in x and not x.startswith("make")]
    assert bad.returncode != 0 and len(errors) == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert errors[0].startswith("hyperflux paper: error: Slurm has no partition 'nope'"), bad.stderr


def test_a_run_requeued_at_its_time_limit_resumes_exactly(tmp_path, sweep_file):
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    local = subprocess.Popen([CLI, "paper", "--sweep", sweep_file, "--profile", "requeue", "--runs-dir", ref,
                              "--no-report", "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        first = make_paper("requeue", f"--sweep {sweep_file} --runs-dir {runs} --no-report")
        assert "note: a time limit of 1 min is short" in first.stdout, first.stdout
        job = job_ids(first.stdout)["wave 1"]
        (folder,) = [p for p in runs.iterdir() if not p.name.startswith(".")]
        def job_record(): return json.loads((folder / "job.json").read_text())
        started = wait_until(lambda: job_record().get("started"), 120, "the first slice to start")
        # Slurm warns at its 1-minute limit (USR2); submitit checkpoints and requeues the job
        wait_until(lambda: job_record()["state"] == "requeued", 150, "the time-limit requeue", poll=0.5)
        requeued_at, epochs = time.time(), metric_rows(folder)
        total = 1200 + 300
        assert 0 < epochs < total, epochs
        # let the resumed slice finish (each further 1-minute slice would cost another requeue)
        run("scontrol", "update", f"JobId={job}", "TimeLimit=10")
        restarted = wait_until(lambda: job_record()["state"] == "running" and job_record()["started"] != started
                               and time.time(), 120, "the resumed slice to start", poll=0.5)
        wait_for_jobs([job], timeout=420)
        assert local.wait(timeout=600) == 0, local.stdout.read()
    finally:
        if local.poll() is None: local.kill()
    (final, metrics), (final_ref, metrics_ref) = numbers(folder), numbers(ref / folder.name)
    assert final == final_ref
    assert list(metrics["epoch"]) == list(range(1, total + 1))   # every epoch once: resumed where it stopped
    pd.testing.assert_frame_equal(metrics, metrics_ref, check_exact=True)
    log = next((runs / ".submitit").glob(f"{job}_0_log.out")).read_text()
    assert "Requeued job" in log and log.count("Starting with JobEnvironment") == 2, log
    print(f"\nrequeue at its 1-min limit after {epochs} of {total} epochs; {restarted - requeued_at:.0f} s from the "
          f"requeue to the resumed slice's start (Slurm's hold, cred_expire=15 here, plus scheduling)")
