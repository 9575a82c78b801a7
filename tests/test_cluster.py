"""The sweep on a cluster without one: submitit's local executor runs, kills and resumes runs as separate processes;
two processes on one run folder; the Slurm submission rendered through fake sbatch/srun/squeue commands."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, metric_rows, numbers

submitit = pytest.importorskip("submitit")

from hyperflux.cluster import TrainJob, plan_submissions, run_resources, submit_plan  # noqa: E402
from hyperflux.executor import folder_state  # noqa: E402
from hyperflux.runfolder import JOB  # noqa: E402
from hyperflux.runlock import OWNER, is_locked, lock_owner  # noqa: E402
from hyperflux.sweep import RunSpec, canonical_config, load_profile, read_sweep  # noqa: E402

CLI = str(Path(sys.executable).parent / "hyperflux")


def _wait_for(predicate, timeout: float = 300, what: str = "") -> None:
    start = time.time()
    while not predicate():
        if time.time() - start > timeout: raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ---- submitit's local executor: separate processes, one killed and resubmitted, then timed out and requeued -----

def _sweep_specs() -> list[RunSpec]:
    """Two runs of the smoke profile, the first made long enough to be killed mid-run."""
    smoke = load_profile("smoke")
    first = smoke[0]
    long = RunSpec(first.notebook, canonical_config({**first.config, "epochs_prune": 20, "epochs_regrow": 4}),
                   first.studies)
    return [long, smoke[2]]


def _submit(specs, runs_dir: Path, logs: Path):
    executor = submitit.LocalExecutor(folder=str(logs))
    executor.update_parameters(timeout_min=20)
    return executor.submit_array([TrainJob(s, runs_dir / s.folder_name, lock_wait=60) for s in specs])


def test_local_submitit_kill_and_resubmit_equals_uninterrupted(tmp_path):
    specs = _sweep_specs()
    ref_jobs = _submit(specs, tmp_path / "ref", tmp_path / "logs")
    for job in ref_jobs: job.result()
    long = tmp_path / "runs" / specs[0].folder_name
    jobs = _submit(specs, tmp_path / "runs", tmp_path / "logs")
    _wait_for(lambda: (long / "checkpoint.pt").exists() and (long / OWNER).exists() and is_locked(long),
              what="the first checkpoint")
    owner = lock_owner(long)
    assert owner["pid"] != os.getpid()           # the run trains in its own process
    os.kill(owner["pid"], signal.SIGKILL)        # killed mid-run: no clean-up, the lock file and owner record stay
    with pytest.raises(Exception): jobs[0].result()
    jobs[1].result()
    assert not (long / "final.json").exists(), "the run finished before it could be killed: make it longer"
    assert (long / OWNER).exists() and not is_locked(long)   # a stale owner record, but no lock
    assert folder_state(long) == "partial"   # interrupted: resumes from its checkpoint
    killed_at = metric_rows(long)
    (job,) = _submit(specs[:1], tmp_path / "runs", tmp_path / "logs")   # resubmit: takes the folder over, resumes
    _wait_for(lambda: metric_rows(long) > killed_at and (lock_owner(long) or {}).get("pid") not in (None, owner["pid"])
              and is_locked(long), what="the resumed run's next checkpoint")
    os.kill(lock_owner(long)["pid"], signal.SIGUSR2)   # Slurm's time-limit warning: checkpoint(), requeue, resume
    job.result()
    job_record = json.loads((long / JOB).read_text())
    assert job_record["state"] == "finished" and job_record["requeues"] == 1, job_record
    for spec in specs:
        (final_ref, metrics_ref), (final, metrics) = (numbers(tmp_path / "ref" / spec.folder_name),
                                                      numbers(tmp_path / "runs" / spec.folder_name))
        assert final == final_ref, spec.folder_name
        pd.testing.assert_frame_equal(metrics, metrics_ref)
    assert folder_state(long) == "finished"
    mtime = (long / "final.json").stat().st_mtime
    (job,) = _submit(specs[:1], tmp_path / "runs", tmp_path / "logs")   # nothing finished is ever retrained
    job.result()
    assert (long / "final.json").stat().st_mtime == mtime


# ---- two processes on one run folder -------------------------------------------------------------------------

TRAIN = ["train", "--arch", "lenet300", "--dataset", "digits", "--method", "hyperflux", "--sparsity", "90",
         "--epochs-prune", "40", "--epochs-regrow", "0", "--seed", "3", "--no-progress"]


def test_second_train_on_a_busy_folder_names_the_owner_or_waits(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([CLI, *TRAIN, "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: (out / OWNER).exists() or first.poll() is not None, what="the first owner")
        assert first.poll() is None, first.stderr.read()
        second = subprocess.run([CLI, *TRAIN, "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                                env=dict(os.environ, HYPERFLUX_LOCK_WAIT="0"))
        assert second.returncode == 2, second.stderr
        owner = json.loads((out / OWNER).read_text())
        assert "is busy" in second.stderr and f"pid {first.pid}" in second.stderr, second.stderr
        assert owner["host"] in second.stderr and owner["since"] in second.stderr
        waiting = subprocess.run([CLI, *TRAIN, "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                                 env=dict(os.environ, HYPERFLUX_LOCK_WAIT="-1"))
        assert waiting.returncode == 0, waiting.stderr
        assert first.wait(timeout=300) == 0
    finally:
        if first.poll() is None: first.kill()
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(1, 41))    # trained once, by the first process only
    assert not is_locked(out) and not (out / OWNER).exists()


# ---- the Slurm path, through fake sbatch, srun and squeue ----------------------------------------------------

FAKE_SBATCH = """#!/bin/sh
if [ -f "{bin}/fail" ]; then cat "{bin}/fail" >&2; exit 1; fi
n=$(cat "{bin}/count" 2>/dev/null || echo 100)
n=$((n + 1))
echo $n > "{bin}/count"
cp "$1" "{bin}/sbatch-$n.sh"
echo "Submitted batch job $n"
"""

SWEEP = """
profiles:
  c:
    resources: {time_min: 30, cpus: 4}
    runs:
      - {study: accuracy, method: dense, epochs_prune: 2, epochs_regrow: 0}
      - {study: accuracy, method: magnitude, epochs_prune: 2, epochs_regrow: 1, grid: {sparsity_pct: [90, 98]},
         resources: {gpus: 2, partition: big, mem_gb: 64}}
"""


NODES = "debug*|8|64000|(null)|infinite|cpu1\nbig|64|512000|gpu:h100:8(S:0-1)|1-00:00:00|gpu1\n"   # sinfo -N


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """A bin folder with sbatch (records each script), srun, squeue (prints bin/queue: id|state|reason lines),
    scancel (records its arguments in bin/cancelled), sinfo (prints bin/nodes, else one 2-CPU node) and sacct
    (accounting is off) first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {"sbatch": FAKE_SBATCH.format(bin=bin_dir), "srun": "#!/bin/sh\nexit 0\n",
               "squeue": f"#!/bin/sh\ncat '{bin_dir}/queue' 2>/dev/null\nexit 0\n",
               "scancel": f"#!/bin/sh\necho \"$@\" >> '{bin_dir}/cancelled'\n",
               "sinfo": f"#!/bin/sh\ncat '{bin_dir}/nodes' 2>/dev/null || echo 'debug*|2|20000|(null)|infinite|vm'\n",
               "sacct": "#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n"}
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def _scripts(bin_dir: Path) -> dict[int, str]:
    return {int(re.search(r"(\d+)", p.name).group(1)): p.read_text() for p in bin_dir.glob("sbatch-*.sh")}


def _flags(script: str) -> dict[str, str]:
    return dict(re.findall(r"#SBATCH --([\w-]+)=(\S+)", script))


def test_slurm_submission_arrays_resources_report_and_no_double_submission(tmp_path, fake_slurm):
    sweep_file = tmp_path / "paper.yaml"
    sweep_file.write_text(SWEEP)
    env = dict(os.environ, HYPERFLUX_RUNS=str(tmp_path / "runs"), HYPERFLUX_FIGURES=str(tmp_path / "figures"))
    cmd = [CLI, "paper", "--profile", "c", "--sweep", str(sweep_file), "--executor", "slurm", "--slurm-account", "lab"]
    (fake_slurm / "nodes").write_text(NODES)
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    scripts = _scripts(fake_slurm)
    assert sorted(scripts) == [101, 102, 103], first.stdout          # two arrays (by resources) and the report
    flags = {n: _flags(s) for n, s in scripts.items()}
    dense, pruned, report = flags[101], flags[102], flags[103]
    assert "array" not in dense and dense["time"] == "30" and dense["cpus-per-task"] == "4"
    assert "gpus-per-node" not in dense and dense["account"] == "lab"     # a LeNet on digits asks for no GPU
    assert dense["signal"] == "USR2@120" and dense["mem"] == "4GB"         # warned 2 min (+ up to 30 s) before 30 min
    assert pruned["array"] == "0-1%2" and pruned["partition"] == "big" and pruned["gpus-per-node"] == "2"
    assert pruned["ntasks-per-node"] == "2" and pruned["cpus-per-task"] == "2" and pruned["mem"] == "64GB"
    assert report["dependency"] == "afterany:101:102_0:102_1" and "gpus-per-node" not in report
    assert report["kill-on-invalid-dep"] == "yes" and report["cpus-per-task"] == "2" and report["mem"] == "8GB"
    specs = load_profile("c", sweep_file)
    jobs = {json.loads((tmp_path / "runs" / s.folder_name / JOB).read_text())["job_id"] for s in specs}
    assert jobs == {"101", "102_0", "102_1"}
    (fake_slurm / "queue").write_text("101|RUNNING|None\n102_0|PENDING|Priority\n102_1|PENDING|Priority\n103|PENDING|"
                                      "Dependency\n")
    status = subprocess.run([CLI, "paper", "--profile", "c", "--sweep", str(sweep_file), "--status"], cwd=ROOT,
                            capture_output=True, text=True, env=env)
    assert status.stdout.startswith("3 runs: 1 running, 2 queued\n"), status.stdout + status.stderr
    assert "slurm job 102_1 PENDING (Priority)" in status.stdout
    assert f"report: Slurm job 103 for {tmp_path / 'figures' / 'studies' / 'c'}: PENDING (Dependency)" in status.stdout
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    assert sorted(_scripts(fake_slurm)) == [101, 102, 103], again.stdout   # nothing submitted twice
    assert again.stdout.count("in the Slurm queue as job") == 3


def test_slurm_waves_follow_depends_on(tmp_path, fake_slurm):
    sweep_file = tmp_path / "paper.yaml"
    sweep_file.write_text(SWEEP)
    specs = load_profile("c", sweep_file)
    dense, pruned = specs[0], specs[1:]
    for s in pruned: s.depends_on = (dense.folder_name,)   # the field issue 16 adds to RunSpec
    arrays, left_out = plan_submissions(specs, tmp_path / "runs", run_resources(read_sweep(sweep_file), "c"),
                                        dict(slurm_time=90))
    assert left_out == {} and [a.wave for a in arrays] == [0, 1]
    assert arrays[1].after == [dense.folder_name] and all(a.parameters["time"] == 90 for a in arrays)
    submit_plan(arrays, tmp_path / "runs", tmp_path / "logs")
    flags = {n: _flags(s) for n, s in _scripts(fake_slurm).items()}
    assert "dependency" not in flags[101] and flags[102]["dependency"] == "afterok:101"
    assert flags[102]["kill-on-invalid-dep"] == "yes"   # Slurm cancels it if job 101 fails: no job pending for ever


def test_slurm_rerun_resubmits_what_is_not_truly_queued_and_refuses_bad_requests(tmp_path, fake_slurm):
    sweep_file = tmp_path / "paper.yaml"
    sweep_file.write_text(SWEEP)
    (fake_slurm / "nodes").write_text(NODES)
    env = dict(os.environ, HYPERFLUX_RUNS=str(tmp_path / "runs"), HYPERFLUX_FIGURES=str(tmp_path / "figures"))
    cmd = [CLI, "paper", "--profile", "c", "--sweep", str(sweep_file), "--executor", "slurm"]
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env).returncode == 0
    # the dense job was cancelled; one pruning task waits on a dependency that died; the report waits
    (fake_slurm / "queue").write_text("101|CANCELLED|None\n102_0|PENDING|DependencyNeverSatisfied\n"
                                      "102_1|RUNNING|None\n103|PENDING|Dependency\n")
    status = subprocess.run([*cmd[:6], "--status"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert status.stdout.startswith("3 runs: 1 running, 2 cancelled\n"), status.stdout + status.stderr
    assert "slurm job 101 CANCELLED; make paper submits it again, from the start" in status.stdout
    assert "slurm job 102_0 can never start" in status.stdout
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr + again.stdout
    assert (fake_slurm / "cancelled").read_text().split() == ["102_0", "103"], again.stdout   # stuck, old report
    assert "1 running or queued already, 2 to submit" in again.stdout
    flags = {n: _flags(t) for n, t in _scripts(fake_slurm).items()}
    assert sorted(flags) == [101, 102, 103, 104, 105, 106] and flags[106]["dependency"] == "afterany:104:105:102_1"
    # a request the partition cannot meet: one line before anything is submitted
    bad = subprocess.run([*cmd, "--slurm-cpus", "16"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(env, HYPERFLUX_RUNS=str(tmp_path / "runs2")))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "nothing submitted: 1 run(s) of wave 1 on partition debug ask(s) for 16 CPUs, its largest node has 8: " \
           "lower --slurm-cpus" in bad.stderr
    assert sorted(_scripts(fake_slurm)) == [101, 102, 103, 104, 105, 106]
    bad = subprocess.run([*cmd, "--slurm-partition", "nope"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(env, HYPERFLUX_RUNS=str(tmp_path / "runs2")))
    assert bad.returncode == 2 and "Slurm has no partition 'nope' (sinfo lists: big, debug)" in bad.stderr
    # sbatch itself refuses: one line with its message and the option to change, nothing left behind
    (fake_slurm / "fail").write_text("sbatch: error: Invalid generic resource (gres) specification\n")
    env3 = dict(env, HYPERFLUX_RUNS=str(tmp_path / "r3"))
    bad = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env3)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert bad.stderr.startswith("hyperflux paper: error: sbatch refused 1 run(s) of wave 1: Invalid generic resource "
                                 "(gres) specification: change --slurm-gpus"), bad.stderr
    assert not list((tmp_path / "r3" / ".submitit").glob("*.pkl"))


def test_bad_executor_input_is_a_clear_error(tmp_path):
    def paper(*args, **kw):
        return subprocess.run([CLI, "paper", "--profile", "smoke", *args], cwd=ROOT, capture_output=True, text=True,
                              **kw)
    bad = paper("--executor", "pbs")
    assert bad.returncode == 2 and "unknown executor 'pbs'" in bad.stderr
    bad = paper("--slurm-partition", "gpu", "--slurm-time", "60")
    assert bad.returncode == 2, bad.stderr
    assert "--slurm-partition, --slurm-time: Slurm options, only for --executor slurm" in bad.stderr
    sweep_file = tmp_path / "paper.yaml"
    sweep_file.write_text(SWEEP.replace("partition: big", "partition: 3"))
    bad = paper("--sweep", str(sweep_file), "--profile", "c", "--executor", "slurm")
    assert bad.returncode == 2 and "profile c, run 2: resources: partition must be a name" in bad.stderr, bad.stderr
    sweep_file.write_text(SWEEP)
    bad = paper("--sweep", str(sweep_file), "--profile", "c", "--executor", "slurm",   # no Slurm command on PATH
                env=dict(os.environ, HYPERFLUX_RUNS=str(tmp_path / "runs"), PATH=str(tmp_path / "no-bin")))
    assert bad.returncode == 2 and "needs Slurm's sbatch, which is not on PATH" in bad.stderr, bad.stderr
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "submitit.py").write_text("raise ImportError('hidden for the test')\n")
    env = dict(os.environ, PYTHONPATH=f"{hide}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    bad = paper("--executor", "slurm", env=env)
    assert bad.returncode == 2 and "needs the submitit package" in bad.stderr, bad.stderr


# ---- DDP through the same executor; the local executor and runs owned elsewhere -----------------------------

def test_ddp_run_is_one_submitit_job_with_a_task_per_gpu(tmp_path):
    """Two tasks of one local submitit job train one run with DDP (gloo on CPU), as a 2-GPU Slurm run would."""
    spec = _sweep_specs()[1]
    executor = submitit.LocalExecutor(folder=str(tmp_path / "logs"))
    executor.update_parameters(timeout_min=20, tasks_per_node=2)
    job = executor.submit(TrainJob(spec, tmp_path / spec.folder_name))
    finals = job.results()
    assert len(finals) == 2 and all(f["world_size"] == 2 and f["masks_agree_across_ranks"] for f in finals)
    assert finals[0]["test_acc_pct"] == finals[1]["test_acc_pct"]
    assert folder_state(tmp_path / spec.folder_name) == "finished"


def test_local_executor_leaves_runs_owned_elsewhere_alone(tmp_path):
    import io
    from hyperflux.paper import PaperPaths, run_profile
    from hyperflux.runlock import run_lock
    sweep_file = tmp_path / "paper.yaml"
    sweep_file.write_text(SWEEP)
    paths = PaperPaths.of("c", sweep_file, tmp_path / "runs", tmp_path / "figures")
    specs = load_profile("c", sweep_file)
    for s in specs[1:]: (paths.runs_dir / s.folder_name).mkdir(parents=True)
    for s in specs[1:]: (paths.runs_dir / s.folder_name / "final.json").write_text("{}")   # finished before
    out = io.StringIO()
    with run_lock(paths.runs_dir / specs[0].folder_name) as owner:
        results, _ = run_profile("c", paths, out=out, progress=False)
    assert [r.status for r in results] == ["missing", "skipped", "skipped"], out.getvalue()
    assert "running elsewhere" in results[0].error and f"pid {owner['pid']}" in results[0].error
    assert "1 run(s) left alone, another process trains them" in out.getvalue()
