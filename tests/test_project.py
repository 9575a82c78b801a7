"""The repository's own contracts: packaging, environment, README, notebook/package sync, CLI, torchvision."""
import os
import shutil
import subprocess
import sys
import tomllib

import yaml

from conftest import ROOT


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_torch_pair_is_pinned():
    deps = _pyproject()["project"]["dependencies"]
    assert "torch==2.13.0" in deps and "torchvision==0.28.0" in deps


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    py = next(d for d in conda if d.startswith("python"))
    minimum = _pyproject()["project"]["requires-python"].removeprefix(">=")
    assert py.split("=")[-1].startswith(minimum), f"environment.yml has {py}, pyproject.toml requires {minimum}"
    assert "pip" in conda
    assert pip == ["-e .[dev]"], "environment.yml must install the package with pip, pyproject.toml is the source"
    assert set(conda) == {py, "pip"}, f"dependencies belong in pyproject.toml, not environment.yml: {conda}"
    assert "dev" in _pyproject()["project"]["optional-dependencies"]


def test_no_settings_ini_and_tags_survive_cleaning():
    assert not (ROOT / "settings.ini").exists(), "nbdev 3 refuses settings.ini"
    nbdev = _pyproject()["tool"]["nbdev"]
    assert "tags" in nbdev["allowed_cell_metadata_keys"] and "slow" in nbdev["tst_flags"].split()


def test_readme_is_current():
    from hyperflux.dev.readme import render_readme
    assert (ROOT / "README.md").read_text() == render_readme(ROOT / "nbs" / "index.ipynb"), \
        "README.md is stale: run `make readme` (or `make check`) and commit it"


def test_readme_cost_table_is_current():
    """The cost table the README shows is the one `hyperflux.cluster.cost_table()` computes from paper.yaml today."""
    from hyperflux.cluster import cost_table
    assert cost_table() in (ROOT / "README.md").read_text(), \
        "README's cost table is stale: paste hyperflux.cluster.cost_table() into nbs/index.ipynb, then `make readme`"


def _copy_project(tmp_path):
    for name in ("pyproject.toml", "nbs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    (tmp_path / "hyperflux").mkdir()
    shutil.copy(ROOT / "hyperflux" / "__init__.py", tmp_path / "hyperflux" / "__init__.py")


def test_package_matches_notebooks(tmp_path, venv_bin):
    """nbdev-export of the notebooks must reproduce hyperflux/ exactly (no hand edits, nothing stale)."""
    _copy_project(tmp_path)
    subprocess.run([venv_bin / "nbdev-export"], cwd=tmp_path, check=True, capture_output=True)
    fresh = {p.relative_to(tmp_path / "hyperflux"): p.read_text() for p in (tmp_path / "hyperflux").rglob("*.py")}
    ours = {p.relative_to(ROOT / "hyperflux"): p.read_text() for p in (ROOT / "hyperflux").rglob("*.py")}
    assert sorted(fresh) == sorted(ours), "run nbdev-export: modules differ from the notebooks"
    stale = [str(p) for p in fresh if fresh[p] != ours[p]]
    assert not stale, f"hyperflux/ differs from nbs/ in {stale}: edit the notebooks, then run nbdev-export"


def test_notebooks_are_clean(tmp_path, venv_bin):
    """nbdev-clean must change nothing: notebooks are committed clean (cell tags kept)."""
    _copy_project(tmp_path)
    subprocess.run([venv_bin / "nbdev-clean"], cwd=tmp_path, check=True, capture_output=True)
    dirty = [str(p.relative_to(tmp_path)) for p in (tmp_path / "nbs").rglob("*.ipynb")
             if p.read_bytes() != (ROOT / p.relative_to(tmp_path)).read_bytes()]
    assert not dirty, f"run nbdev-clean: {dirty} are not clean"


def test_cli_version_and_help(venv_bin):
    import hyperflux
    out = subprocess.run([venv_bin / "hyperflux", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"hyperflux {hyperflux.__version__}"
    out = subprocess.run([venv_bin / "hyperflux", "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: hyperflux" in out


def test_torchvision_works_after_import_hyperflux():
    """In a fresh interpreter: models, transforms.v2 and datasets of torchvision after `import hyperflux`."""
    code = ("import hyperflux, torch, torchvision; from torchvision.transforms import v2; "
            "m = torchvision.models.resnet18(); assert m(torch.zeros(1, 3, 64, 64)).shape == (1, 1000); "
            "v2.RandomResizedCrop(8)(torch.zeros(3, 16, 16)); torchvision.datasets.CIFAR10; "
            "print(hyperflux.TORCHVISION_OPS)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() in {"native", "stubbed"}


def test_make_lab_allows_root_only_for_root():
    """`make lab` adds --allow-root exactly when run as root (Jupyter refuses root without it)."""
    out = subprocess.run(["make", "-n", "lab", "VENV=.venv"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    command = next(line for line in out.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in command) == (os.getuid() == 0), command
    assert "--ip 127.0.0.1" in command
