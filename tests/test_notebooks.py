"""Every notebook under nbs/ runs as one test, through nbdev's own in-process test machinery.

Cells marked `#| eval: false` never run; cells flagged `#| slow` run only with `--nb-flags slow` (`make test-slow`).
"""
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook

from conftest import ROOT

NBS = ROOT / "nbs"


def notebooks() -> list[Path]:
    """Every notebook under nbs/, skipping checkpoints and folders starting with '.' or '_'."""
    found = []
    for nb in sorted(NBS.rglob("*.ipynb")):
        rel = nb.relative_to(NBS)
        if any(part.startswith((".", "_")) for part in rel.parts[:-1]) or rel.name.startswith("_"): continue
        found.append(nb)
    return found


def test_notebooks_are_found():
    assert {"00_core.ipynb", "index.ipynb"} <= {nb.name for nb in notebooks()}


@pytest.mark.parametrize("nb", notebooks(), ids=lambda nb: str(nb.relative_to(NBS)))
def test_notebook(nb: Path, request):
    skip_flags = get_config(ROOT).tst_flags.split()
    force_flags = request.config.getoption("--nb-flags").split()
    ok, seconds = run_notebook(nb, skip_flags=skip_flags, force_flags=force_flags, basepath=ROOT, showerr=True)
    assert ok, f"notebook {nb.relative_to(ROOT)} failed (its error is printed above)"
