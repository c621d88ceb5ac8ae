"""Kernel limits a lab needs, raised for the lab's lifetime and put back by ``lab down``.

A lab of a few hundred devices outgrows the kernel's defaults that every namespace shares: the
neighbour tables (``gc_thresh3`` = 1024 entries for all namespaces together: each link end and
each management address holds one per family, so 250 nodes overflow it and sessions flap) and
the inotify instances one user may hold (128 by default; daemons and sshd take them). A lab
computes what it needs from its layout and raises each limit that is lower, never lowers one.

Several labs may run at once: ``$BGPGEN_LAB_ROOT/kernel.json`` (under a lock) holds each value as
it was before the first lab raised it and what every running lab needs; a lab going down takes
its needs out, and each limit goes back to the highest need left, or to its value from before
the labs once none is left.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import Problem
from .layout import LabError, LabLayout

PROC = Path("/proc/sys")
NEIGH = ("net/ipv4/neigh/default/gc_thresh{}", "net/ipv6/neigh/default/gc_thresh{}")
INOTIFY = "fs/inotify/max_user_instances"


def needs(p: LabLayout, processes: int) -> dict[str, int]:
    """What a lab of this layout running ``processes`` daemons needs, per sysctl (the values are
    the limit a lab may reach, with room for the host's own entries)."""
    devices = len(p.devices) + (1 if p.bastion else 0)
    # one entry per end of each link and each management address, per family (IPv6 also keeps
    # link-local neighbours: twice as many), doubled for room
    v4 = 2 * (2 * len(p.links) + 2 * devices)
    v6 = 2 * (4 * len(p.links) + 2 * devices)
    out = {}
    for template, entries in zip(NEIGH, (v4, v6), strict=True):
        out[template.format(1)] = entries // 4
        out[template.format(2)] = entries // 2
        out[template.format(3)] = entries
    out[INOTIFY] = 128 + 2 * processes
    return out


def _read(key: str) -> int:
    return int((PROC / key).read_text().split()[0])


def _set(key: str, value: int) -> None:
    try:
        (PROC / key).write_text(f"{value}\n")
    except OSError as exc:
        raise LabError(Problem(str(PROC / key), "kernel limit", f"cannot set it to {value} "
                               f"({exc.strerror or exc}); the lab needs it",
                               f"set it yourself (sysctl -w {key.replace('/', '.')}={value}) "
                               "or run a smaller lab")) from None


@contextmanager
def _locked(root: Path) -> Iterator[dict[str, Any]]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "kernel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = root / "kernel.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = {}
        state.setdefault("before", {})
        state.setdefault("labs", {})
        yield state
        if state["labs"]:
            tmp = path.with_suffix(".new")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, path)
        else:
            path.unlink(missing_ok=True)


def _apply(state: dict[str, Any]) -> None:
    """Every limit at the highest need of the running labs (and never under its old value)."""
    for key, before in sorted(state["before"].items()):
        want = max([before, *(n.get(key, 0) for n in state["labs"].values())])
        if _read(key) != want:
            _set(key, want)


def acquire(root: Path, lab: str, wanted: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Raise what ``lab`` needs. Returns what changed: key -> (before, now)."""
    changed = {}
    with _locked(root) as state:
        for key, value in wanted.items():
            now = _read(key)
            if key not in state["before"]:
                if now >= value:
                    continue  # enough already, and no lab raised it: left alone
                state["before"][key] = now
            if now < value:
                changed[key] = (now, value)
        state["labs"][lab] = {k: v for k, v in wanted.items() if k in state["before"]}
        try:
            _apply(state)
        except LabError:
            del state["labs"][lab]
            _apply(state)
            _forget_unused(state)
            raise
    return changed


def release(root: Path, lab: str) -> dict[str, int]:
    """Take ``lab``'s needs out; limits go back down. Returns key -> value it went back to."""
    if not (root / "kernel.json").exists():
        return {}
    with _locked(root) as state:
        if state["labs"].pop(lab, None) is None:
            return {}
        old = {k: _read(k) for k in state["before"]}
        _apply(state)
        back = {k: _read(k) for k in state["before"] if _read(k) != old[k]}
        _forget_unused(state)
    return back


def _forget_unused(state: dict[str, Any]) -> None:
    """A value no running lab needs raised any more is back at its old value: forget it."""
    used = {k for n in state["labs"].values() for k in n}
    for key in [k for k in state["before"] if k not in used]:
        del state["before"][key]


__all__ = ["acquire", "needs", "release"]
