"""verify and lab status when something is wrong, per platform: a daemon that prints garbage,
one that does not answer (stopped), a session that is down, a daemon that is gone. verify
exits 3 with the right finding on the right device, lab status still prints every device,
and nothing prints a traceback or an exception's name."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bgpgen import lab, load_fabric

from .conftest import EXAMPLES, Run, require_lab_environment, unique_lab_name
from .lab_helpers import wait_for

#: platform -> (example, device, its daemon, the CLI bgpgen reads it with, how to take one
#: session down on it, the peer of that session, the session's id)
PLATFORMS: dict[str, tuple[str, str, str, str, list[str], str, str]] = {
    "gobgp": ("dc1", "node-r1-01", "gobgpd", "gobgp",
              ["gobgp", "neighbor", "198.18.11.1", "disable"], "198.18.11.1",
              "tor-r1-a:node-r1-01:ipv4"),
    "bird": ("dc1", "node-r1-02", "bird", "birdc", ["birdc", "disable", "tor_r1_a_ipv4"],
             "198.18.11.1", "tor-r1-a:node-r1-02:ipv4"),
    "frr": ("dc1", "tor-r2-a", "bgpd", "vtysh",
            ["vtysh", "-c", "conf t", "-c", "router bgp 65201", "-c",
             "neighbor 198.18.21.101 shutdown"], "198.18.21.101", "tor-r2-a:node-r2-01:ipv4"),
    "gobgp-rs": ("local-rs", "rs", "gobgpd", "gobgp",
                 ["gobgp", "-p", "50051", "neighbor", "127.0.0.1", "disable"], "127.0.0.1",
                 "rs:speaker:ipv4"),
}


@pytest.fixture(params=sorted(PLATFORMS))
def faulty(request: pytest.FixtureRequest, secret_env: str) -> Iterator[tuple[str, str]]:
    require_lab_environment("fault tests")
    name = unique_lab_name("x", request)
    lab.up(load_fabric(EXAMPLES[PLATFORMS[request.param][0]]), name, render_configs=True)
    try:
        yield request.param, name
    finally:
        lab.down(name)


def _verify(cli: Callable[..., Run], name: str, example: str) -> tuple[int, dict[str, Any]]:
    r = cli("verify", "-i", str(EXAMPLES[example]), "--lab", name, "--format", "json")
    assert "Traceback" not in r.err and "Error:" not in r.err and "internal error" not in r.err
    return r.code, json.loads(r.out)


def _status(cli: Callable[..., Run], name: str, device: str) -> str:
    r = cli("lab", "status", "--name", name)
    assert r.code == 0 and "Traceback" not in r.err and "internal error" not in r.err, r.err
    lines = r.out.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith(device + " "))
    return "\n".join(lines[at:at + 2])  # the device's line and its sessions' line


def _pid(name: str, device: str, daemon: str) -> int:
    procs = lab.status(name)["devices"][device]["processes"]
    return int(next(p["pid"] for p in procs if p["name"] == daemon))


def test_faults(faulty: tuple[str, str], cli: Callable[..., Run]) -> None:
    platform, name = faulty
    example, device, daemon, tool, disable, peer, session = PLATFORMS[platform]
    e = lab.overlay(name)["devices"][device]
    wait_for(lambda: _verify(cli, name, example)[0] == 0, 45, "the lab verifies")

    def finding(kind: str) -> dict[str, Any] | None:
        code, rep = _verify(cli, name, example)
        hits = [f for f in rep["findings"] if f["kind"] == kind and f["device"] == device]
        return rep if code == 3 and hits else None

    # 1. garbage: the CLI prints something that is not its output
    shim = f"/usr/local/bin/{tool}"
    lab.run_on(e, ["sh", "-c", f"printf '#!/bin/sh\\necho \"%%garbage{{\"\\n' > {shim}; "
                   f"chmod 755 {shim}"])
    rep = wait_for(lambda: finding("daemon_down"), 20, "garbage reported")
    assert any("could not be read" in f["message"] for f in rep["findings"]), rep["findings"]
    _status(cli, name, device)
    lab.run_on(e, ["rm", "-f", shim])
    wait_for(lambda: _verify(cli, name, example)[0] == 0, 45, "back to healthy")

    # 2. not answering: the daemon is stopped (SIGSTOP), its sockets still there
    pid = _pid(name, device, daemon)
    os.kill(pid, signal.SIGSTOP)
    try:
        rep = wait_for(lambda: finding("daemon_down"), 60, "a stopped daemon reported")
        _status(cli, name, device)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: _verify(cli, name, example)[0] == 0, 60, "back to healthy")

    # 3. one session down, from this device's side
    r = lab.run_on(e, disable)
    assert r.returncode == 0, r.stderr
    rep = wait_for(lambda: finding("session_down") or finding("missing") and
                   any(f["kind"] == "session_down" for f in finding("missing")["findings"]),
                   30, "the session reported down")
    down = [f for f in rep["findings"] if f["kind"] == "session_down"]
    assert any(f["session"] == session for f in down), down
    assert rep["exit"] == 3
    shown = _status(cli, name, device)
    assert peer in shown and "Established" not in shown.split(peer + "=")[1].split()[0], shown

    # 4. the daemon is gone (and its service manager leaves it down)
    hold = lab.lab_dir(name) / "hold"
    hold.mkdir(exist_ok=True)
    (hold / f"{device}.{daemon}").touch()
    os.kill(_pid(name, device, daemon), signal.SIGTERM)
    rep = wait_for(lambda: finding("daemon_down"), 30, "a daemon that is gone reported")
    assert all(f["kind"] != "unreadable" for f in rep["findings"]), rep["findings"]
    shown = _status(cli, name, device)
    assert f"{daemon}:" not in shown or "(dead)" in shown, shown  # no longer among its processes
    assert "sessions: -" in shown, shown
