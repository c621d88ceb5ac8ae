"""The wheel works outside the repository: it ships the templates, renders, and a user's
template override can extend a shipped template and replace one block."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import EXAMPLES, ROOT

OVERRIDE = """{% extends "bgpgen/frr/frr.conf.j2" %}
{% block header %}
! Site header from our own template override
{{ super() }}{% endblock %}
"""


def _run(argv: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                          **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{argv}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv outside the repository with bgpgen installed from its wheel. Only the
    dependencies come from the project's venv (a .pth line), so no package index is needed."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    files = _run(["git", "ls-files", "-co", "--exclude-standard"], ROOT).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(tmp / "dist"), str(src)], tmp)
    wheel = next((tmp / "dist").glob("bgpgen-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
          str(wheel)], tmp)
    yield venv


def test_wheel_renders_outside_the_repo(installed: Path, tmp_path: Path,
                                        secret_env: str) -> None:
    py = installed / "bin" / "python"
    where = _run([str(py), "-c", "import importlib; r = importlib.import_module('bgpgen.render'); "
                  "print(r.__file__); print(r.PACKAGE_TEMPLATES)"], tmp_path).stdout.split()
    assert not where[0].startswith(str(ROOT)), "the installed wheel, not the checkout"
    assert where[1].startswith(str(installed)), "templates shipped inside the wheel"
    _run([str(py), "-m", "bgpgen.cli", "render", "-i", str(EXAMPLES["dc1"]), "-o",
          str(tmp_path / "out"), "--secrets", "placeholder"], tmp_path)
    golden = ROOT / "tests" / "golden" / "dc1"
    for device in ("tor-r1-a", "node-r1-01", "node-r1-02"):
        for f in (golden / device).iterdir():
            assert (tmp_path / "out" / device / f.name).read_text() == f.read_text(), f


def test_override_extends_a_shipped_template(installed: Path, tmp_path: Path,
                                             secret_env: str) -> None:
    py = installed / "bin" / "python"
    (tmp_path / "mine" / "frr").mkdir(parents=True)
    (tmp_path / "mine" / "frr" / "frr.conf.j2").write_text(OVERRIDE)
    _run([str(py), "-m", "bgpgen.cli", "render", "-i", str(EXAMPLES["dc1"]), "-o",
          str(tmp_path / "out"), "--secrets", "placeholder", "--templates",
          str(tmp_path / "mine")], tmp_path, env={**os.environ})
    for device in ("tor-r1-a", "tor-r2-b"):
        text = (tmp_path / "out" / device / "frr.conf").read_text()
        shipped = (ROOT / "tests" / "golden" / "dc1" / device / "frr.conf").read_text()
        manage, rest = shipped.split("\n", 1)  # the manage line is outside every block
        assert text == f"{manage}\n! Site header from our own template override\n{rest}"
    node = ROOT / "tests" / "golden" / "dc1" / "node-r1-01" / "gobgpd.toml"
    assert (tmp_path / "out" / "node-r1-01" / "gobgpd.toml").read_text() == node.read_text()
