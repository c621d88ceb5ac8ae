"""One push at a time per fabric: a second deploy (or playbook run) refuses at once, in one line,
with who holds the lock and since when; a killed holder frees it; a dry run needs no lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgpgen.lock import fabric_lock

from .conftest import ROOT, Run

HOLD = ("import sys, time\nfrom bgpgen.lock import fabric_lock\n"
        "with fabric_lock('dc1', 'bgpgen deploy --yes --limit rack:r2'):\n"
        "    print('held', flush=True)\n    time.sleep(60)\n")


@pytest.fixture
def holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen[str]]:
    monkeypatch.setenv("BGPGEN_LOCK_DIR", str(tmp_path / "locks"))
    proc = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_push_refuses_and_names_the_holder(holder: subprocess.Popen[str],
                                                    cli: Callable[..., Run],
                                                    secret_env: str) -> None:
    for argv in (("deploy", "--yes"), ("run", str(ROOT / "playbooks" / "rollout.yaml"))):
        r = cli(*argv, "--ssh-config", "/dev/null")
        lines = r.err.splitlines()
        assert r.code == 1 and len(lines) == 1, r.err
        assert f"(PID {holder.pid}) holds this fabric's lock since 20" in lines[0]
        assert "bgpgen deploy --yes --limit rack:r2 by " in lines[0]
        assert "dc1.lock" in lines[0] and "nothing was planned or pushed" in lines[0]
        assert r.out == ""


def test_a_killed_holder_frees_the_lock(holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with fabric_lock("dc1", "test"):  # the kernel released the dead holder's flock
        pass
