"""`hyperflux info` as a user runs it: a subprocess of the installed console command."""
import json
import subprocess


def _info(venv_bin, *args):
    return subprocess.run([venv_bin / "hyperflux", "info", *args], capture_output=True, text=True, timeout=120)


def test_info_json_gives_the_paper_count(venv_bin):
    res = _info(venv_bin, "--arch", "resnet50", "--dataset", "cifar10", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["prunable"] == 23_467_712
    assert info["total"] > info["prunable"] and info["layers"]


def test_info_unknown_arch_lists_the_choices(venv_bin):
    res = _info(venv_bin, "--arch", "resnet18", "--dataset", "cifar10")
    assert res.returncode == 2
    assert "unknown architecture 'resnet18'; choose one of:" in res.stderr
    for arch in ("lenet300", "lenet5", "resnet50", "vgg19", "deit_tiny", "deit_small"): assert arch in res.stderr
    assert "Traceback" not in res.stderr
