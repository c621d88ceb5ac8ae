from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bgpgen.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {"dc1": ROOT / "inventory", "local-rs": ROOT / "inventory" / "examples" / "local-rs",
            "local-rs-external": ROOT / "inventory" / "examples" / "local-rs-external",
            "k8s-speakers": ROOT / "inventory" / "examples" / "k8s-speakers",
            "multi-vendor": ROOT / "inventory" / "examples" / "multi-vendor"}
SECRET = "Zq7-not-in-output"


@pytest.fixture(scope="session", autouse=True)
def _parse_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """bgpgen's parse cache in a directory of the test session's own, not in ~/.cache."""
    old = os.environ.get("BGPGEN_CACHE_DIR")
    os.environ["BGPGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("parse-cache"))
    yield
    if old is None:
        os.environ.pop("BGPGEN_CACHE_DIR", None)
    else:
        os.environ["BGPGEN_CACHE_DIR"] = old


@pytest.fixture(scope="session", autouse=True)
def _lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fabric locks in a directory of the test session's own: a deploy on this machine (or
    another test session) never holds a lock a test needs, nor the other way round."""
    old = os.environ.get("BGPGEN_LOCK_DIR")
    os.environ["BGPGEN_LOCK_DIR"] = str(tmp_path_factory.mktemp("locks"))
    yield
    if old is None:
        os.environ.pop("BGPGEN_LOCK_DIR", None)
    else:
        os.environ["BGPGEN_LOCK_DIR"] = old


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden from the current templates")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli() -> Callable[..., Run]:
    def run(*argv: str) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), stdout=out, stderr=err)
        return Run(code, out.getvalue(), err.getvalue())
    return run


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BGPGEN_TOR_MD5", SECRET)
    return SECRET


def require(binary: str) -> None:
    """Daemon binaries are part of the test environment: missing in CI is a failure, not a skip."""
    if shutil.which(binary) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; scripts/setup installs it")
        pytest.skip(f"{binary} not installed (run scripts/setup)")


def require_lab_environment(what: str) -> None:
    """Lab-backed tests need root and the daemons; in CI (root) they must run, never skip."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail(f"{what} need root; CI runs as root")
        pytest.skip(f"{what} need root")
    for binary in ("gobgpd", "bird", "vtysh", "sshd", "ssh-keygen"):
        require(binary)


def unique_lab_name(prefix: str, request: pytest.FixtureRequest) -> str:
    """A lab name of at most 15 characters, unique per test and per run."""
    return f"{prefix}{os.getpid() % 10000}{abs(hash(request.node.name)) % 1000}"[:15]


@pytest.fixture
def lab_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique lab name for this test, whose lab is torn down even when the test fails."""
    from bgpgen import lab
    name = unique_lab_name(request.module.__name__.rsplit("_", 1)[-1][:1], request)
    yield name
    lab.down(name)
