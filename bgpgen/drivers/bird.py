"""BIRD nodes: configure check, configure timeout, confirm or undo."""

from __future__ import annotations

from collections.abc import Mapping

from ..collect import shell
from ..errors import Problem
from ..plan import DevicePlan, classify, unified
from ..remote import Remote, RemoteError
from ..render import Artifact
from ..secrets import fill, redact
from .base import PREV, DeployFailed, Outcome, _need, _shown, sessions, wait_sessions


def _birdc(r: Remote, *args: str, what: str = "birdc") -> str:
    out = r.check(shell(["birdc", "-s", r.target.bird_socket, *args]), what)
    bad = [ln for ln in out.splitlines() if "rror" in ln or ln.startswith(("8", "9"))]
    if bad:
        raise DeployFailed(Problem("", r.target.name, f"{what}: {bad[-1].strip()}", ""))
    return out


class BirdDriver:
    def plan(self, r: Remote, arts: list[Artifact], values: Mapping[str, str]) -> DevicePlan:
        t = r.target
        conf = _need(arts, "bird.conf")
        p = DevicePlan(t.name, t.platform.value)
        current = r.read(t.config) or ""
        if current != fill(conf.text, values):
            shown = _shown(t.platform, current, values)
            p.diff = unified(shown, conf.text, "bird.conf")
            classify(t.platform, shown, conf.text, p)
            p.action = "update"
        return p

    def apply(self, r: Remote, p: DevicePlan, arts: list[Artifact], values: Mapping[str, str],
              timeout: float) -> Outcome:
        t = r.target
        conf = _need(arts, "bird.conf")
        defer = bool(p.extra.get("defer_confirm"))
        before = sessions(r)
        new = f"{t.config}.bgpgen-new"
        r.write(new, fill(conf.text, values), 0o600)
        try:
            _birdc(r, "configure", "check", f'"{new}"', what="birdc configure check")
        except RemoteError as exc:
            r.run(f"rm -f {new}")
            raise DeployFailed(Problem("", t.name, redact(exc.problems[0].message, values),
                                       "")) from None
        r.copy(t.config, t.config + PREV)
        r.rename(new, t.config)
        try:
            # Unconfirmed, BIRD reverts by itself: a push cannot outlive a lost controller.
            undo_after = int(timeout) * (4 if defer else 1) + 30
            _birdc(r, "configure", f'"{t.config}"', "timeout", str(undo_after),
                   what="birdc configure timeout")
            wait_sessions(r, before, timeout)
            if not defer:
                _birdc(r, "configure", "confirm", what="birdc configure confirm")
        except RemoteError as exc:
            r.run(shell(["birdc", "-s", t.bird_socket, "configure", "undo"]))
            r.rename(t.config + PREV, t.config)
            raise DeployFailed(Problem("", t.name, f"{exc.problems[0].message}; configure undo "
                                       "restored the previous config", "")) from None
        return Outcome("changed", p.cost_detail)

    def confirm(self, r: Remote, p: DevicePlan) -> None:
        if p.extra.get("defer_confirm"):
            _birdc(r, "configure", "confirm", what="birdc configure confirm")

    def rollback(self, r: Remote, p: DevicePlan, timeout: float) -> None:
        t = r.target
        r.run(shell(["birdc", "-s", t.bird_socket, "configure", "undo"]))
        if r.read(t.config + PREV) is not None:
            r.rename(t.config + PREV, t.config)
