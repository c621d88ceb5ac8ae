"""The kernel limits a lab raises (bgpgen.lab.limits): raised to what each running lab needs,
back to the value from before the labs when the last one goes. Unit tests on a stand-in /proc/sys
(the real one is exercised by test_lab.py::test_a_lab_raises_the_limits_it_needs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bgpgen.lab import limits
from bgpgen.lab.layout import LabError

KEY = "net/ipv4/neigh/default/gc_thresh3"
OTHER = "fs/inotify/max_user_instances"


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "sys"
    for key, value in ((KEY, 1024), (OTHER, 128)):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(f"{value}\n")
    monkeypatch.setattr(limits, "PROC", root)
    return root


def _value(proc: Path, key: str) -> int:
    return int((proc / key).read_text())


def test_raised_for_a_lab_and_back_when_it_goes(proc: Path, tmp_path: Path) -> None:
    labs = tmp_path / "labs"
    changed = limits.acquire(labs, "a", {KEY: 3000, OTHER: 100})
    assert changed == {KEY: (1024, 3000)}  # inotify was high enough: left alone
    assert _value(proc, KEY) == 3000 and _value(proc, OTHER) == 128
    assert limits.release(labs, "a") == {KEY: 1024}
    assert _value(proc, KEY) == 1024
    assert not (labs / "kernel.json").exists()
    assert limits.release(labs, "a") == {}  # idempotent


def test_two_labs_the_limit_follows_the_highest_need(proc: Path, tmp_path: Path) -> None:
    labs = tmp_path / "labs"
    limits.acquire(labs, "big", {KEY: 5000})
    limits.acquire(labs, "small", {KEY: 2000})
    assert _value(proc, KEY) == 5000
    limits.release(labs, "big")
    assert _value(proc, KEY) == 2000  # what the lab still running needs
    limits.release(labs, "small")
    assert _value(proc, KEY) == 1024  # the value from before any lab


def test_a_limit_that_cannot_be_raised_is_a_one_line_error(proc: Path, tmp_path: Path) -> None:
    (proc / KEY).unlink()  # a sysctl even root may not write (0444): EACCES
    (proc / KEY).symlink_to("/proc/sys/kernel/ngroups_max")
    with pytest.raises(LabError) as exc:
        try:
            limits.acquire(tmp_path / "labs", "a", {OTHER: 4096, KEY: 10 ** 7})
        except (OSError, ValueError):
            pytest.fail("a raw OS error, not a one-line LabError")
    (problem,) = exc.value.problems
    assert "gc_thresh3" in problem.file and "sysctl -w" in problem.hint
    assert _value(proc, OTHER) == 128  # what was raised first is back


def test_needs_grow_with_the_lab() -> None:
    from bgpgen import load_fabric
    from bgpgen.lab.layout import layout

    from .conftest import EXAMPLES
    small = limits.needs(layout(load_fabric(EXAMPLES["dc1"]), "t", "198.51.100.0/24"), 30)
    assert small[KEY] < 1024  # the example fits the kernel's defaults
    assert small[OTHER] == 128 + 60
