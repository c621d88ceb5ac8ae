"""FRR switches: frr-reload.py --test to plan, --reload to apply, the saved running config to undo."""

from __future__ import annotations

from collections.abc import Mapping

from ..collect import shell
from ..errors import Problem
from ..plan import DevicePlan, classify_frr_delta
from ..remote import Remote, RemoteError
from ..render import Artifact
from ..secrets import fill, redact
from ..targets import Target
from .base import (
    FRR_RELOAD,
    DeployFailed,
    Outcome,
    _last_error,
    _need,
    _shown,
    sessions,
    wait_sessions,
)


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
