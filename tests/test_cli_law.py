"""End to end: `hyperflux law` as the installed console command, on a shipped authors' file and on a bad file."""
import json
import subprocess

from conftest import ROOT

SHIPPED = ROOT / "hyperflux" / "reference" / "authors-nplh" / "R50C10_IMP.csv"


def _law(venv_bin, *args):
    return subprocess.run([venv_bin / "hyperflux", "law", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_law_json_on_shipped_file(venv_bin):
    assert SHIPPED.exists()
    res = _law(venv_bin, SHIPPED, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {"alpha", "c", "r2", "n", "alpha_ci", "c_ci", "region", "quadratic", "detected_regions"} <= set(out)
    assert out["n"] == 44 and out["region"] == [0.5, 50.0]
    assert 1.3 < out["alpha"] < 1.7 and out["r2"] > 0.98 and out["alpha_ci"][0] < out["alpha"] < out["alpha_ci"][1]


def test_law_bad_file_is_one_line_exit_2(venv_bin, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("step,tau,kept\n1,0.1,90\n")
    res = _law(venv_bin, bad, "--json")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith("hyperflux law: error: ") and "--saliency-col" in res.stderr
    res = _law(venv_bin, tmp_path / "absent.csv")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no such file" in res.stderr
