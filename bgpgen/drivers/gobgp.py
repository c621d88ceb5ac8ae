"""gobgpd nodes and route servers: gobgpd -d, SIGHUP or restart, originated routes reconciled."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from ..collect import shell
from ..errors import Problem
from ..plan import DevicePlan, classify, unified
from ..remote import Remote, RemoteError
from ..render import Artifact
from ..secrets import fill, redact
from .base import (
    PREV,
    DeployFailed,
    Outcome,
    _last_error,
    _need,
    _shown,
    _text,
    sessions,
    wait_sessions,
)


def _gobgp(r: Remote, *args: str) -> str:
    return r.check(shell(["gobgp", "-p", str(r.target.api_port), *args]), f"gobgp {args[0]}")


def _local_routes(r: Remote) -> dict[tuple[str, str], str]:
    """Originated routes in gobgpd's global RIB: (family, prefix) -> next hop ('' for self)."""
    out: dict[tuple[str, str], str] = {}
    for fam in ("ipv4", "ipv6"):
        data = json.loads(_gobgp(r, "-j", "global", "rib", "-a", fam) or "{}") or {}
        for prefix, paths in data.items():
            for path in paths:
                if path.get("neighbor-ip") not in (None, "<nil>", ""):
                    continue
                nh = next((a.get("nexthop", "") for a in path.get("attrs", [])
                           if a.get("type") in (3, 14)), "")
                out[(fam, prefix)] = "" if nh in ("0.0.0.0", "::") else nh
    return out


def _wanted_routes(originate: str | None) -> dict[tuple[str, str], str]:
    entries = json.loads(originate)["originate"] if originate else []
    return {(e["family"], e["prefix"]): e.get("next_hop", "") for e in entries}


def _reconcile(r: Remote, wanted: dict[tuple[str, str], str]) -> list[str]:
    have = _local_routes(r)
    done = []
    for (fam, prefix), nh in sorted(have.items()):
        if wanted.get((fam, prefix)) != nh:
            _gobgp(r, "global", "rib", "del", "-a", fam, prefix)
            done.append(f"- {prefix}")
    for (fam, prefix), nh in sorted(wanted.items()):
        if have.get((fam, prefix)) != nh:
            _gobgp(r, "global", "rib", "add", "-a", fam, prefix,
                   *(["nexthop", nh] if nh else []), "origin", "igp")
            done.append(f"+ {prefix}")
    return done


def _gobgpd_pid(r: Remote) -> str:
    pattern = f"^(/usr/s?bin/)?gobgpd .*-f {r.target.config}( |$)"
    rc, out = r.run(f"pgrep -f {shell([pattern])}")
    pids = out.split()
    if rc != 0 or len(pids) != 1:
        raise DeployFailed(Problem("", r.target.name, f"gobgpd for {r.target.config} is not "
                                   "running (or more than one is)", ""))
    return pids[0]


def _gobgp_restart(r: Remote, timeout: float) -> None:
    old = _gobgpd_pid(r)
    if r.target.lab:
        r.check(f"kill {old}", "stop gobgpd")  # the lab supervisor starts it again
    else:
        r.check("systemctl restart gobgpd", "restart gobgpd")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _gobgpd_pid(r) != old and r.run(shell(["gobgp", "-p", str(r.target.api_port),
                                                      "global"]))[0] == 0:
                return
        except DeployFailed:
            pass
        time.sleep(0.1)
    raise DeployFailed(Problem("", r.target.name, "gobgpd did not come back after a restart",
                               ""))


class GobgpDriver:
    def plan(self, r: Remote, arts: list[Artifact], values: Mapping[str, str]) -> DevicePlan:
        t = r.target
        conf, orig = _need(arts, "gobgpd.toml"), _text(arts, "originate.json")
        p = DevicePlan(t.name, t.platform.value)
        current = r.read(t.config) or ""
        shown = _shown(t.platform, current, values)
        p.extra.update(config_same=current == fill(conf.text, values), current=shown)
        if not p.extra["config_same"]:
            p.diff += unified(shown, conf.text, "gobgpd.toml")
            classify(t.platform, shown, conf.text, p)
        wanted = _wanted_routes(orig.text if orig else None)
        have = _local_routes(r)
        for (fam, prefix), nh in sorted(have.items()):
            if wanted.get((fam, prefix)) != nh:
                p.diff.append(f"-originate {prefix}" + (f" nexthop {nh}" if nh else ""))
        for (fam, prefix), nh in sorted(wanted.items()):
            if have.get((fam, prefix)) != nh:
                p.diff.append(f"+originate {prefix}" + (f" nexthop {nh}" if nh else ""))
        if p.diff and p.cost == 0:
            p.cost, p.cost_detail = 1, "hitless: originated routes added / withdrawn"
        p.action = "update" if p.diff else "none"
        return p

    def apply(self, r: Remote, p: DevicePlan, arts: list[Artifact], values: Mapping[str, str],
              timeout: float) -> Outcome:
        t = r.target
        conf, orig = _need(arts, "gobgpd.toml"), _text(arts, "originate.json")
        wanted = _wanted_routes(orig.text if orig else None)
        before = sessions(r)
        if p.extra["config_same"]:
            _reconcile(r, wanted)
            return Outcome("changed", "originated routes reconciled")
        new = f"{t.config}.bgpgen-new"
        r.write(new, fill(conf.text, values), 0o600)
        rc, out = r.run(shell(["gobgpd", "-d", "-t", "toml", "-f", new]))
        if rc != 0:
            r.run(f"rm -f {new}")
            raise DeployFailed(Problem("", t.name, "gobgpd -d rejects the config: "
                                       + _last_error(redact(out, values)), ""))
        had_file = r.read(t.config) is not None
        if had_file:
            r.copy(t.config, t.config + PREV)
        if orig:
            old_orig = r.read(t.originate)
            if old_orig is not None:
                r.copy(t.originate, t.originate + PREV)
        restart = p.cost == 4
        p.extra.update(had_file=had_file, restart=restart, pushed=True)
        try:
            r.rename(new, t.config)
            if orig:
                r.write(t.originate, orig.text, 0o644)
            if restart:
                _gobgp_restart(r, timeout)
            else:
                r.check(f"kill -HUP {_gobgpd_pid(r)}", "SIGHUP gobgpd")
                time.sleep(0.3)  # gobgpd applies a SIGHUP asynchronously
            _reconcile(r, wanted)
            wait_sessions(r, before, timeout)
        except RemoteError as exc:
            self._restore(r, had_file, restart, timeout)
            raise DeployFailed(Problem("", t.name, f"{exc.problems[0].message}; previous "
                                       "config restored", "")) from None
        return Outcome("changed", p.cost_detail)

    def confirm(self, r: Remote, p: DevicePlan) -> None:
        return None  # the previous file stays beside the new one as *.bgpgen-prev

    def rollback(self, r: Remote, p: DevicePlan, timeout: float) -> None:
        if p.extra.get("pushed"):
            self._restore(r, p.extra["had_file"], p.extra["restart"], timeout)
        else:  # only routes were reconciled: put back what the previous originate.json says
            _reconcile(r, _wanted_routes(r.read(r.target.originate)))

    def _restore(self, r: Remote, had_file: bool, restart: bool, timeout: float) -> None:
        t = r.target
        if had_file:
            r.rename(t.config + PREV, t.config)
        if r.read(t.originate + PREV) is not None:
            r.rename(t.originate + PREV, t.originate)
        if restart:
            _gobgp_restart(r, timeout)
        else:
            r.run(f"kill -HUP {_gobgpd_pid(r)}")
            time.sleep(0.3)
        _reconcile(r, _wanted_routes(r.read(t.originate)))
