"""What every platform driver shares: the contract, results, session checks, helpers."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..collect import ESTABLISHED, parse_sessions, sessions_command, shell
from ..errors import Problem
from ..model import Platform
from ..plan import DevicePlan, mask
from ..remote import Remote, RemoteError
from ..render import Artifact
from ..secrets import redact

FRR_RELOAD = "/usr/lib/frr/frr-reload.py"
PREV = ".bgpgen-prev"


class DeployFailed(RemoteError):
    """A push failed on one device; the device was restored (or left untouched)."""


@dataclass(slots=True)
class Outcome:
    status: str          #: changed | unchanged | failed | rolled_back
    message: str = ""


class Driver(Protocol):
    def plan(self, r: Remote, arts: list[Artifact], values: Mapping[str, str]) -> DevicePlan: ...

    def apply(self, r: Remote, p: DevicePlan, arts: list[Artifact], values: Mapping[str, str],
              timeout: float) -> Outcome: ...

    def confirm(self, r: Remote, p: DevicePlan) -> None:
        """Make a push final (BIRD: configure confirm). After a verified fabric only."""

    def rollback(self, r: Remote, p: DevicePlan, timeout: float) -> None:
        """Put the previous config back after a push that the fabric's verify rejected."""


def sessions(r: Remote) -> dict[str, str]:
    t = r.target
    rc, out, _ = r.run3(shell(sessions_command(t.platform, t.api_port, t.run)), timeout=20)
    try:
        return parse_sessions(t.platform, out) if rc == 0 else {}
    except ValueError:
        return {}


def wait_sessions(r: Remote, before: dict[str, str], timeout: float) -> None:
    """Every session that was Established before the push is Established again in time."""
    needed = {peer for peer, state in before.items() if state == ESTABLISHED}
    if not needed:
        return
    deadline = time.monotonic() + timeout
    while True:
        now = sessions(r)
        down = sorted(p for p in needed if p in now and now[p] != ESTABLISHED)
        if not down:
            return
        if time.monotonic() > deadline:
            raise DeployFailed(Problem("", r.target.name, f"sessions did not re-establish within "
                                       f"{timeout:.0f} s: {', '.join(down)}", ""))
        time.sleep(0.5)


def _text(arts: list[Artifact], name: str) -> Artifact | None:
    return next((a for a in arts if a.name == name), None)


def _need(arts: list[Artifact], name: str) -> Artifact:
    art = _text(arts, name)
    if art is None:  # pragma: no cover - the platform registry guarantees the file
        raise KeyError(name)
    return art


def _shown(platform: Platform, text: str, values: Mapping[str, str]) -> str:
    """Device text fit to show: known secret values as tokens, any other password masked."""
    return mask(platform, redact(text, values), dict(values))



def _last_error(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        try:
            entry = json.loads(ln)
        except ValueError:
            return ln.strip()[:300]
        if isinstance(entry, dict) and entry.get("level") in ("fatal", "error"):
            return " ".join(str(entry.get("Error") or entry.get("msg")).split())[:300]
    return (lines or ["no output"])[-1][:300]
