"""End to end: `hyperflux paper` (what `make paper` runs) on the sweep file paper.yaml.

- every run of every profile builds a valid TrainConfig (no data is touched);
- the smoke profile runs end to end into temporary folders and builds every figure family and table; a second
  invocation runs nothing and redraws nothing;
- killing the sweep midway (SIGKILL to its process group) and running it again finishes it without redoing the
  runs that had finished;
- a failing run is reported with its executed notebook, the others finish, and the exit status is non-zero;
- a profile draws into its own folder (a side study such as smoke: figures/studies/<profile>/), writes the
  figures index figures/README.md, and leaves the rest of the repository (the results page included) as it was;
  run folders of another engine version are named and not used;
- the folder name of one run is pinned (it changes only with a setting that changes results or ENGINE_VERSION).
The repository's runs/ and figures/ are never touched (run folders and figures go under tmp_path).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

from hyperflux.config import ENGINE_VERSION, TrainConfig
from hyperflux.sweep import RunSpec, canonical_config, load_profile, published_profiles, read_sweep

SWEEP = ROOT / "paper.yaml"
FAMILIES = ["accuracy_vs_sparsity", "two_stages", "scheduler_tracking", "layerwise_density", "implicit_regrowth",
            "convergence", "pressure_law", "pruning_law", "bottleneck"]
TABLES = ["accuracy", "accuracy_by_sparsity", "law_fits"]


def _paper(venv_bin, tmp_path, *args, **kw):
    "Run `hyperflux paper` with run folders and figures under tmp_path."
    cmd = [str(venv_bin / "hyperflux"), "paper",
           "--runs-dir", str(tmp_path / "runs"), "--figures-dir", str(tmp_path / "figures"),
           "--no-progress", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, **kw)


def _paper_default_dirs(venv_bin, tmp_path, *args):
    "Run `hyperflux paper` with its default folder layout, rooted in tmp_path ($HYPERFLUX_RUNS, $HYPERFLUX_FIGURES)."
    env = dict(os.environ, HYPERFLUX_RUNS=str(tmp_path / "runs"), HYPERFLUX_FIGURES=str(tmp_path / "figures"))
    cmd = [str(venv_bin / "hyperflux"), "paper", "--no-progress", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


def _finished(runs_dir: Path) -> dict[str, float]:
    "Run folder name -> mtime of its final.json."
    return {p.parent.name: p.stat().st_mtime_ns for p in runs_dir.glob("*/final.json")}


def test_every_profile_expands_to_valid_configs():
    profiles = read_sweep(SWEEP)["profiles"]
    assert {"smoke", "cpu", "fmnist", "full"} <= set(profiles)
    for profile in profiles:
        specs = load_profile(profile, SWEEP)
        assert specs, profile
        for spec in specs: TrainConfig(**spec.config).validate()   # the canonical config builds a valid TrainConfig
        assert len({s.folder_name for s in specs}) == len(specs), profile


def test_cpu_profile_covers_the_study():
    specs = load_profile("cpu", SWEEP)
    acc = [s for s in specs if "accuracy" in s.studies]
    methods = {s.config["method"] for s in acc}
    # the methods hyperflux ships, asked of a fresh interpreter: notebooks run earlier in this process may have
    # registered their own (the tutorial's fisher)
    code = "import json; from hyperflux.methods import available_methods; print(json.dumps(available_methods()))"
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the iterative variants of the prune-at-init saliencies serve the law study (law-fmnist), not this one
    shipped = {m for m in json.loads(fresh.stdout) if not m.endswith("_iterative")}
    assert methods == shipped, methods   # every method (dense as the reference)
    for m in methods - {"dense"}:
        cells = {(s.config["sparsity_pct"], s.config["seed"]) for s in acc if s.config["method"] == m}
        assert cells == {(sp, seed) for sp in (90.0, 95.0, 98.0, 99.0, 99.5) for seed in (0, 1, 2)}, m
    pressures = {s.settings["pressure"] for s in specs if "convergence" in s.studies}   # Hyperflux's own, flat
    assert {0.25, 0.5, 1.0, 2.0, 4.0} <= pressures
    law = {s.config["method"] for s in specs if "law" in s.studies and s.config["law"]}
    assert {"imp", "magnitude", "taylor", "hyperflux"} <= law
    bottleneck = [s for s in specs if "bottleneck" in s.studies]
    assert bottleneck and all(s.settings["pressure_layers"] == ["^fc3$"] and s.config["log_layers"] for s in bottleneck)


def test_run_folder_name_is_pinned():
    "One cpu-profile run: its folder changes only with a setting that changes results, or with ENGINE_VERSION."
    settings = dict(method="hyperflux", sparsity_pct=99.5, seed=1, epochs_prune=25, epochs_regrow=5, law=True)
    assert ENGINE_VERSION == 2   # a bump renames every folder: update the name below in the same commit
    # (so does a bump of the method's version: Hyperflux version 3, start pressure 1)
    assert RunSpec("train_run.ipynb", canonical_config(settings)).folder_name == "hyperflux-lenet300-digits-1a940fde"
    logged = RunSpec("train_run.ipynb", canonical_config(dict(settings, log_layers=True, progress=True)))
    assert logged.folder_name == "hyperflux-lenet300-digits-1a940fde"
    cpu = {s.folder_name for s in load_profile("cpu", SWEEP)}
    assert "hyperflux-lenet300-digits-1a940fde" in cpu


def test_published_profiles_have_their_own_folders():
    assert published_profiles(read_sweep(SWEEP)) == ["cpu", "law-fmnist", "fmnist", "robust"]
    for profile in published_profiles(read_sweep(SWEEP)):
        manifest = ROOT / "figures" / profile / "manifest.json"
        if not manifest.exists(): continue
        m = json.loads(manifest.read_text())
        assert m["profile"] == profile
        if "publishable" in m:   # manifests from before the publication check carry no verdict
            assert m["publishable"], (profile, m["not_publishable_because"])


def test_smoke_end_to_end_then_nothing_to_do(venv_bin, tmp_path):
    status_before = _git_status()
    res = _paper_default_dirs(venv_bin, tmp_path, "--profile", "smoke", "--jobs", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    n = len(load_profile("smoke", SWEEP))
    assert f"{n} runs: {n} done, 0 skipped" in res.stdout, res.stdout
    figures = tmp_path / "figures" / "studies" / "smoke"   # each profile draws into its own folder
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["README.md", "reference", "studies"]
    index = (tmp_path / "figures" / "README.md").read_text()   # the figures index names the side study
    assert "| [studies/smoke/](studies/smoke/README.md) | side study |" in index, index
    assert "| [reference/](reference/README.md) | reference |" in index, index
    reference = tmp_path / "figures" / "reference"   # the authors' law figure: drawn once, not in every profile
    assert [e["name"] for e in json.loads((reference / "manifest.json").read_text())["figures"]] == \
        ["authors_pruning_laws"]
    assert (reference / "authors_pruning_laws.png").stat().st_size > 1000
    assert _git_status() == status_before   # the results page and the published figures are untouched
    manifest = json.loads((figures / "manifest.json").read_text())
    made = {e["name"] for e in manifest["figures"] if e["status"] == "made"}
    for family in FAMILIES:
        assert any(name == family or name.startswith(family + "-") for name in made), (family, made)
    for e in manifest["figures"]:
        assert e["status"] == "made", e
        assert {Path(f).suffix for f in e["files"]} == {".png", ".pdf"}, e
        assert all((figures / f).stat().st_size > 1000 for f in e["files"]), e
    for t in TABLES:
        for suffix in (".md", ".tex", ".csv"): assert (figures / "tables" / f"{t}{suffix}").exists(), t
    assert manifest["profile"] == "smoke" and manifest["counts"] == {"done": n, "skipped": 0, "failed": 0, "missing": 0}
    assert manifest["engine_version"] == ENGINE_VERSION and all("engine_version" in r for r in manifest["runs"])
    assert isinstance(manifest["publishable"], bool) and isinstance(manifest["not_publishable_because"], list)
    assert (figures / "README.md").exists()
    before = _finished(tmp_path / "runs")
    files = {p: p.stat().st_mtime_ns for folder in (figures, reference) for p in folder.rglob("*") if p.is_file()}
    assert len(before) == n

    old = tmp_path / "runs" / "hyperflux-lenet300-digits-0ld0ld00"   # a run folder of an earlier engine
    old.mkdir()
    (old / "params.json").write_text(json.dumps({"config": {}}))
    start = time.time()
    again = _paper_default_dirs(venv_bin, tmp_path, "--profile", "smoke", "--jobs", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{n} runs: 0 done, {n} skipped" in again.stdout and "up to date" in again.stdout, again.stdout
    assert "1 run folder(s) were written by another engine version and are not used" in again.stdout, again.stdout
    assert "hyperflux-lenet300-digits-0ld0ld00 (no engine version)" in again.stdout, again.stdout
    assert _finished(tmp_path / "runs") == before
    assert {p: p.stat().st_mtime_ns for p in files} == files   # nothing redrawn, the reference figures included
    assert time.time() - start < 60


@pytest.mark.slow
def test_killed_sweep_resumes_without_redoing_finished_runs(venv_bin, tmp_path):
    n = len(load_profile("smoke", SWEEP))
    cmd = [str(venv_bin / "hyperflux"), "paper", "--profile", "smoke", "--jobs", "1", "--no-progress",
           "--runs-dir", str(tmp_path / "runs"), "--figures-dir", str(tmp_path / "figures")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while len(_finished(tmp_path / "runs")) < 3 and time.time() < deadline and proc.poll() is None: time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(3)   # orphaned kernels notice their parent is gone and exit
    done_before = _finished(tmp_path / "runs")
    assert 3 <= len(done_before) < n, done_before
    res = _paper(venv_bin, tmp_path, "--profile", "smoke", "--jobs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    after = _finished(tmp_path / "runs")
    assert len(after) == n
    assert {k: after[k] for k in done_before} == done_before   # finished runs were not run again
    assert f"{n - len(done_before)} done, {len(done_before)} skipped" in res.stdout, res.stdout


def test_failing_run_is_reported_and_others_finish(venv_bin, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "defaults: {arch: lenet300, dataset: digits, method: magnitude, sparsity_pct: 90, "
        "epochs_prune: 2, epochs_regrow: 0}\n"
        "profiles:\n"
        "  t:\n"
        "    runs:\n"
        "      - {study: accuracy, seed: 0}\n"
        "      - {study: accuracy, seed: 1, init: /nonexistent/dense.pt}\n"
        "      - {study: accuracy, seed: 2}\n")
    # a missing init file stops the sweep before any kernel starts (the preflight check), saying what is missing
    res = _paper(venv_bin, tmp_path, "--profile", "t", "--sweep", sweep, "--jobs", "2", "--no-report")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "1 of 3 runs cannot start; nothing was run:" in res.stderr, res.stderr
    assert "init /nonexistent/dense.pt: no such file (looked for /nonexistent/dense.pt)" in res.stderr, res.stderr
    assert not (tmp_path / "runs").exists()
    # a run that fails while it runs (an init file that is no state dict) is reported; the others finish
    corrupt = tmp_path / "dense.pt"
    corrupt.write_text("not a state dict")
    sweep.write_text(sweep.read_text().replace("/nonexistent/dense.pt", str(corrupt)))
    res = _paper(venv_bin, tmp_path, "--profile", "t", "--sweep", sweep, "--jobs", "2", "--no-report")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "3 runs: 2 done, 0 skipped (finished before), 1 failed" in res.stdout, res.stdout
    failed = [line for line in res.stdout.splitlines() if line.startswith("  ") and "train_run.ipynb" in line]
    assert len(failed) == 1 and f"--init {corrupt}: cannot read" in failed[0], res.stdout
    notebook = Path(failed[0].split(": ", 1)[0].strip())
    assert notebook.exists() and "cannot read" in notebook.read_text()
    assert len(_finished(tmp_path / "runs")) == 2
    listed = _paper(venv_bin, tmp_path, "--profile", "t", "--sweep", sweep, "--list")
    listed_states = [line.split("  ")[0] for line in listed.stdout.splitlines()[1:]]
    assert listed.stdout.startswith("3 runs: 2 finished, 1 failed\n"), listed.stdout
    assert listed_states == ["finished", "failed", "finished"], listed.stdout
    # a broken sweep entry stops everything before any run, naming the entry
    sweep.write_text(sweep.read_text().replace("seed: 2}", "seed: 2, sparsity: 95}"))
    bad = _paper(venv_bin, tmp_path, "--profile", "t", "--sweep", sweep)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "sweep.yaml, profile t, run 3: unknown key 'sparsity'; did you mean 'sparsity_pct'?" in bad.stderr


def test_full_profile_starts_from_its_own_dense_runs():
    "make paper PROFILE=full needs no hand-copied checkpoint: its pruning runs depend on its dense runs."
    specs = load_profile("full", SWEEP)
    names = {s.folder_name: s for s in specs}
    assert not [s for s in specs if (s.config["init"] or "").startswith("data/")]
    deps = [s for s in specs if s.depends_on]
    assert len(deps) > 40
    for s in deps:
        (dep,) = s.depends_on
        dense = names[dep].config
        assert s.config["init"] == f"run:{dep}/model.pt"
        assert (dense["method"], dense["arch"], dense["dataset"], dense["seed"]) == \
            ("dense", s.config["arch"], s.config["dataset"], s.config["seed"])
    imagenet = [s for s in specs if s.config["dataset"] == "imagenet" and s.config["arch"] == "resnet50"]
    assert imagenet and all(s.config["init"] == "torchvision:ResNet50_Weights.IMAGENET1K_V1" for s in imagenet)


def test_torchvision_weights_come_from_torch_hub_cache(tmp_path, monkeypatch):
    "A run with init {torchvision: ...} loads the file torchvision keeps in torch.hub's cache; nothing is downloaded."
    import torch
    from hyperflux.config import coerce_settings
    from hyperflux.engine import Run
    from hyperflux.executor import check_preflight
    from hyperflux.masks import is_masked, latent_weight
    from hyperflux.models import get_model
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("profiles:\n  tv:\n    runs:\n      - {study: accuracy, epochs_prune: 1, epochs_regrow: 0,\n"
                     "         init: {torchvision: ResNet50_Weights.IMAGENET1K_V1}}\n")
    specs = load_profile("tv", sweep)
    with pytest.raises(Exception, match=r"not in torch.hub's cache .*resnet50-0676ba61.pth.*load_state_dict_from_url"):
        check_preflight(specs, tmp_path / "runs", download=False)
    weights = get_model("lenet300", "digits").state_dict()   # a small stand-in under the expected file name
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(weights, cache / "resnet50-0676ba61.pth")
    check_preflight(specs, tmp_path / "runs", download=False)
    run = Run(coerce_settings({**specs[0].config, "device": "cpu"}), tmp_path / "runs" / specs[0].folder_name)
    modules = dict(run.model.named_modules())
    for name, w in weights.items():   # a masked layer keeps its loaded weight as its latent weight
        layer_name, _, kind = name.rpartition(".")
        layer = modules[layer_name]
        loaded = latent_weight(layer) if kind == "weight" and is_masked(layer) else getattr(layer, kind)
        assert torch.equal(loaded.detach().cpu(), w), name


def test_forked_tutorial_metric_joins_a_sweep(venv_bin, tmp_path):
    "A fork of the saliency tutorial, named as a plugin, runs in a two-run sweep after the dense run it starts from."
    fork = tmp_path / "my_metric.ipynb"
    text = (ROOT / "nbs" / "tutorials" / "add_a_saliency.ipynb").read_text()
    for old, new in (('saliency_name = \\"fisher\\"', 'saliency_name = \\"fisher_fork\\"'),
                     ('label = \\"Fisher\\"', 'label = \\"Fisher (fork)\\"'),
                     ('color = \\"#bcbd22\\"', 'color = \\"#123456\\"')):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    fork.write_text(text)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("plugins: [my_metric.ipynb]\n"
                     "defaults: {arch: lenet300, dataset: digits, epochs_prune: 2, epochs_regrow: 0}\n"
                     "profiles:\n"
                     "  fork:\n"
                     "    runs:\n"
                     "      - {study: [accuracy, law], method: fisher_fork, sparsity_pct: 90, law: true, "
                     "init: {run: dense}}\n"
                     "      - {study: accuracy, method: dense}\n")
    specs = load_profile("fork", sweep)
    from hyperflux.report import color_of, method_label
    assert (method_label("fisher_fork"), color_of("fisher_fork")) == ("Fisher (fork)", "#123456")
    fisher, dense = specs
    assert fisher.depends_on == (dense.folder_name,)
    listed = _paper(venv_bin, tmp_path, "--profile", "fork", "--sweep", sweep, "--list")
    assert listed.stdout.splitlines()[1].startswith(f"waiting on {dense.folder_name}"), listed.stdout
    res = _paper(venv_bin, tmp_path, "--profile", "fork", "--sweep", sweep, "--jobs", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 runs: 2 done" in res.stdout, res.stdout
    runs = tmp_path / "runs"
    assert _finished(runs)[fisher.folder_name] > _finished(runs)[dense.folder_name]
    params = json.loads((runs / fisher.folder_name / "params.json").read_text())
    assert params["config"]["init"] == f"run:{dense.folder_name}/model.pt"
    assert params["run_key"] == fisher.results_key   # the engine hashes what the sweep hashed
    assert (runs / fisher.folder_name / "law.csv").exists()
    tables = "".join(p.read_text() for p in (tmp_path / "figures" / "tables").glob("*.csv"))
    assert "Fisher (fork)" in tables, tables
    again = _paper(venv_bin, tmp_path, "--profile", "fork", "--sweep", sweep, "--no-report")
    assert "2 runs: 0 done, 2 skipped" in again.stdout, again.stdout
