"""Per platform: read what runs on a device (plan) and push the desired config (apply), the
safest way the platform has. Every apply checks the candidate on the target with the daemon's
own checker, keeps the previous config, activates, verifies that no session which was up went
down, and restores the previous config when any step fails.

| platform | check | activate | undo |
|---|---|---|---|
| gobgp, gobgp-rs | ``gobgpd -d`` | SIGHUP, or a restart when ``[global]`` changed; then originated routes reconciled | previous file back, SIGHUP / restart, routes reconciled |
| bird | ``birdc configure check`` | ``configure timeout``; ``configure confirm`` after verification | ``configure undo``, previous file back |
| frr | ``frr-reload.py --test`` | ``frr-reload.py --reload`` | reload of the saved running config |
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .collect import ESTABLISHED, parse_sessions, sessions_command, shell
from .errors import Problem
from .model import Platform
from .plan import DevicePlan, classify, classify_frr_delta, mask, unified
from .remote import Remote, RemoteError
from .render import Artifact
from .secrets import fill, redact
from .targets import Target

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


# --- gobgp -------------------------------------------------------------------------------------

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


# --- BIRD --------------------------------------------------------------------------------------

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


# --- FRR ---------------------------------------------------------------------------------------

def _reload_argv(t: Target, mode: str, path: str) -> list[str]:
    return [FRR_RELOAD, mode, "--stdout", "--bindir", "/usr/bin", "--confdir", t.confdir,
            "--rundir", t.run, "--vty_socket", t.run, path]


def _soft_in(r: Remote) -> None:
    """Ask every peer to resend its routes (route refresh: hitless), so that routes an older
    inbound policy rejected are judged again by the policy now in place."""
    t = r.target
    r.run(shell(["vtysh", "--vty_socket", t.run, "-c", "clear bgp ipv4 unicast * soft in",
                 "-c", "clear bgp ipv6 unicast * soft in"]))


def _delta(text: str) -> tuple[list[str], list[str]]:
    """frr-reload --test output -> (lines to delete, lines to add)."""
    delete: list[str] = []
    add: list[str] = []
    into: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("Lines To Delete"):
            into = delete
        elif line.startswith("Lines To Add"):
            into = add
        elif into is not None and line.strip() and not line.startswith("==="):
            if " INFO: " in line or " WARNING: " in line or " ERROR: " in line:
                continue
            if not into or into[-1] != line:  # frr-reload repeats context lines
                into.append(line)
    return delete, add


class FrrDriver:
    def candidate(self, t: Target) -> str:
        return f"{t.run}/bgpgen-candidate.conf"

    def plan(self, r: Remote, arts: list[Artifact], values: Mapping[str, str]) -> DevicePlan:
        t = r.target
        conf = _need(arts, "frr.conf")
        p = DevicePlan(t.name, t.platform.value)
        # The candidate goes in on stdin, into a private temporary file that frr-reload reads
        # and that is removed at once: planning leaves nothing on the device.
        test = shell(_reload_argv(t, "--test", "__CAND__")).replace("__CAND__", '"$f"')
        rc, out = r.run(f'f=$(mktemp) && cat > "$f" && {test}; rc=$?; rm -f "$f"; exit $rc',
                        timeout=120, stdin=fill(conf.text, values))
        if rc != 0:
            raise DeployFailed(Problem("", t.name, "frr-reload.py --test failed: "
                                       + _last_error(redact(out, values)), ""))
        delete, add = _delta(out)
        # FRR does not print defaults: "ip forwarding" is shown only as "no ip forwarding" when
        # off, so frr-reload always offers to add it. It is a change only if "no" is deleted.
        for fwd in ("ip forwarding", "ipv6 forwarding"):
            if fwd in add and f"no {fwd}" not in delete:
                add.remove(fwd)
        delete = [_shown(t.platform, ln, values) for ln in delete]
        add = [_shown(t.platform, ln, values) for ln in add]
        if delete or add:
            p.diff = [f"-{ln}" for ln in delete] + [f"+{ln}" for ln in add]
            classify_frr_delta(delete, add, p)
            p.action = "update"
        return p

    def apply(self, r: Remote, p: DevicePlan, arts: list[Artifact], values: Mapping[str, str],
              timeout: float) -> Outcome:
        t = r.target
        conf = _need(arts, "frr.conf")
        before = sessions(r)
        r.write(self.candidate(t), fill(conf.text, values), 0o600)
        saved = f"{t.run}/bgpgen-previous.conf"
        running = r.check(shell(["vtysh", "--vty_socket", t.run, "-c", "show running-config"]),
                          "show running-config")
        r.write(saved, "\n".join(ln for ln in running.splitlines()
                                 if not ln.startswith(("Building configuration",
                                                       "Current configuration"))) + "\n", 0o600)
        try:
            r.check(shell(_reload_argv(t, "--reload", self.candidate(t))), "frr-reload.py "
                    "--reload", timeout=120)
            _soft_in(r)
            wait_sessions(r, before, timeout)
        except RemoteError as exc:
            r.run(shell(_reload_argv(t, "--reload", saved)), timeout=120)
            _soft_in(r)
            message = redact(exc.problems[0].message, values)
            raise DeployFailed(Problem("", t.name, f"{message}; the previous running config "
                                       "was reloaded", "")) from None
        return Outcome("changed", p.cost_detail)

    def confirm(self, r: Remote, p: DevicePlan) -> None:
        return None  # the saved running config stays in the run directory

    def rollback(self, r: Remote, p: DevicePlan, timeout: float) -> None:
        t = r.target
        r.check(shell(_reload_argv(t, "--reload", f"{t.run}/bgpgen-previous.conf")),
                "frr-reload.py --reload of the previous config", timeout=120)
        _soft_in(r)


DRIVERS: dict[Platform, Driver] = {Platform.GOBGP: GobgpDriver(),
                                   Platform.GOBGP_RS: GobgpDriver(),
                                   Platform.BIRD: BirdDriver(), Platform.FRR: FrrDriver()}
