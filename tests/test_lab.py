"""bgpgen lab on the real daemons, in namespaces the tests create and remove."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bgpgen import lab, load_fabric
from bgpgen.lab.layout import LabError

from .conftest import EXAMPLES, ROOT, Run, require_lab_environment
from .lab_helpers import assert_clean, gobgp_json, snapshot, vtysh_json, wait_for


@pytest.fixture(autouse=True)
def _needs_root_and_daemons() -> None:
    require_lab_environment("lab tests")




def _all_established(name: str) -> dict[str, dict[str, str]] | None:
    states = lab.sessions(name)
    ok = all(s == "Established" for peers in states.values() for s in peers.values())
    return states if ok and all(states.values()) else None


def _host_etc() -> dict[str, str | None]:
    """The host's own copies of what lab devices have at the same paths."""
    out: dict[str, str | None] = {}
    for path in ("/etc/frr/frr.conf", "/etc/frr/vtysh.conf", "/etc/bird/bird.conf",
                 "/etc/gobgpd.conf", "/etc/hostname", "/etc/hosts", "/etc/passwd",
                 "/etc/ssh/sshd_config", "/usr/local/sbin/systemctl"):
        try:
            out[path] = Path(path).read_text()
        except OSError:
            out[path] = None
    return out


def test_example_lab_sessions_routes_and_clean_teardown(lab_name: str, secret_env: str) -> None:
    before = snapshot()
    host_etc = _host_etc()
    fabric = load_fabric(EXAMPLES["dc1"])
    info = lab.up(fabric, lab_name, "198.51.100.0/24", render_configs=True)
    states = wait_for(lambda: _all_established(lab_name), 30, "all sessions Established")
    # Every session of the model, Established on both ends, as each daemon reports it.
    for s in fabric.sessions:
        assert states[s.switch][str(s.node_address)] == "Established", s.id
        assert states[s.node][str(s.switch_address)] == "Established", s.id
    # Every node prefix is in each of its switches' RIBs, with the node as next hop.
    devices = info["devices"]
    for sw in fabric.switches:
        expected = {(str(r.prefix), str(r.next_hop)) for r in fabric.routes_seen_by(sw.name)}

        def rib() -> set[tuple[str, str]] | None:
            got = set()
            for af in ("ipv4", "ipv6"):
                data = vtysh_json(devices[sw.name], f"show bgp {af} unicast json")
                for prefix, paths in data.get("routes", {}).items():
                    for path in paths:
                        got |= {(prefix, nh["ip"]) for nh in path.get("nexthops", [])
                                if nh.get("afi") == af or af == "ipv4"}
            return got if expected <= got else None
        got = wait_for(rib, 15, f"routes in {sw.name}'s RIB")
        assert expected <= got
    # Hostnames are the device names, as the daemons see them.
    r = subprocess.run(lab.ssh_argv(lab_name, "node-r1-02") + ["hostname"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0 and r.stdout.strip() == "node-r1-02", r.stderr
    r = subprocess.run(lab.ssh_argv(lab_name, "tor-r1-a", cli=True) + ["show bgp summary json"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and json.loads(r.stdout)["ipv4Unicast"]["routerId"] == "198.18.0.11"
    # Each device sees its own config at the real path; the host's files are untouched.
    for dev in ("tor-r1-a", "tor-r2-b"):
        r = subprocess.run(lab.ssh_argv(lab_name, dev) + ["cat /etc/frr/frr.conf; hostname"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        sw = fabric.device(dev)
        assert f"hostname {dev}\n" in r.stdout and f"router bgp {sw.asn}" in r.stdout
        assert r.stdout.rstrip().endswith(dev)
    assert _host_etc() == host_etc, "lab up changed the host's own files"
    # No lab namespace has a default route.
    for ns in {d["netns"] for d in devices.values()}:
        routes = subprocess.run(["ip", "-n", ns, "route"], capture_output=True, text=True).stdout
        assert "default" not in routes
    lab.down(lab_name)
    assert_clean(before, lab.lab_dir(lab_name))
    assert _host_etc() == host_etc
    assert lab.down(lab_name) == []  # idempotent


def test_local_route_server_example(lab_name: str) -> None:
    before = snapshot()
    fabric = load_fabric(EXAMPLES["local-rs"])
    info = lab.up(fabric, lab_name, "203.0.113.0/28", render_configs=True)
    rs = info["devices"]["rs"]
    assert rs["netns"] == info["devices"]["speaker"]["netns"]  # one namespace, as on one host

    def adj_in() -> list[Any] | None:
        data = gobgp_json(rs, "neighbor", "127.0.0.1", "adj-in", "-a", "ipv4")
        return (data or {}).get("10.20.30.0/24")
    paths = wait_for(adj_in, 30, "10.20.30.0/24 in the route server's adj-in")
    next_hops = [a["nexthop"] for p in paths for a in p["attrs"] if a.get("type") == 3]
    assert next_hops == ["30.30.30.30"]
    # The same, the way a user reads it: the gobgp CLI inside the lab, through bgpgen lab exec.
    r = subprocess.run([sys.executable, "-m", "bgpgen.cli", "lab", "exec", "--name", lab_name,
                        "rs", "--", "gobgp", "-p", "50051", "neighbor", "127.0.0.1", "adj-in"],
                       cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and "10.20.30.0/24" in r.stdout and "30.30.30.30" in r.stdout
    r = subprocess.run([sys.executable, "-m", "bgpgen.cli", "lab", "exec", "--name", lab_name,
                        "speaker", "--", "hostname"], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.strip() == "speaker"
    st = json.loads(subprocess.run([sys.executable, "-m", "bgpgen.cli", "lab", "status",
                                    "--name", lab_name, "--format", "json"], cwd=ROOT,
                                   capture_output=True, text=True).stdout)
    assert st["supervisor_alive"] and st["devices"]["rs"]["sessions"] == {"127.0.0.1": "Established"}
    assert all(p["alive"] for d in st["devices"].values() for p in d["processes"])
    lab.down(lab_name)
    assert_clean(before, lab.lab_dir(lab_name))


def test_killed_lab_up_then_down_leaves_nothing(lab_name: str, secret_env: str) -> None:
    before = snapshot()
    proc = subprocess.Popen([sys.executable, "-m", "bgpgen.cli", "lab", "up", "--render",
                             "--name", lab_name, "-i", str(EXAMPLES["dc1"])],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = lab.lab_dir(lab_name)
    # Kill it halfway: once the supervisor has started some daemons, before it is ready.
    wait_for(lambda: (d / "supervisor.json").exists() or proc.poll() is not None, 30,
             "daemons starting")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert d.exists()
    lab.down(lab_name)
    assert_clean(before, d)


def test_daemon_dying_at_start_is_reported_and_rolled_back(lab_name: str, tmp_path: Path,
                                                           secret_env: str) -> None:
    before = snapshot()
    over = tmp_path / "gobgp"
    over.mkdir()
    good = (ROOT / "templates" / "gobgp" / "gobgpd.toml.j2").read_text()
    (over / "gobgpd.toml.j2").write_text(good.replace("port = {{ device.bgp_port }}",
                                                      "port = {{ device.bgp_port }}\n  bogus = 1"))
    with pytest.raises(LabError) as info:
        lab.up(load_fabric(EXAMPLES["dc1"]), lab_name, render_configs=True, templates=tmp_path)
    text = str(info.value)
    assert "node-r1-01: gobgpd exited" in text and "bogus" in text
    assert_clean(before, lab.lab_dir(lab_name))


def test_two_labs_side_by_side(lab_name: str) -> None:
    fabric = load_fabric(EXAMPLES["local-rs"])
    other = lab_name[:-1] + "z"
    try:
        lab.up(fabric, lab_name, "203.0.113.0/28", render_configs=True)
        lab.up(fabric, other, "203.0.113.16/28", render_configs=True)
        for name in (lab_name, other):
            wait_for(lambda: _all_established(name), 30, f"{name} established")
    finally:
        lab.down(other)


def test_bad_input_one_line_errors(cli: Callable[..., Run], lab_name: str) -> None:
    r = cli("lab", "up", "--name", lab_name, "--mgmt-range", "127.0.0.0/24")
    assert r.code == 1 and r.err.count("\n") == 1 and "overlaps 127.0.0.0/8" in r.err
    r = cli("lab", "up", "--name", lab_name, "--mgmt-range", "10.244.0.0/24")
    assert r.code == 1 and "of the inventory" in r.err and "pod CIDR" in r.err
    r = cli("lab", "up", "--name", "Bad_Name")
    assert r.code == 1 and "lab name 'Bad_Name' is not valid" in r.err
    r = cli("lab", "status", "--name", lab_name)
    assert r.code == 1 and f"lab {lab_name} is not up" in r.err
    r = cli("lab", "down", "--name", lab_name)
    assert r.code == 0
    env = {**os.environ, "PATH": "/nonexistent"}
    p = subprocess.run([sys.executable, "-m", "bgpgen.cli", "lab", "up", "--name", lab_name],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "is not installed" in p.stderr and "apt-get install" in p.stderr
    assert "Traceback" not in p.stderr


def test_not_root_is_a_one_line_error(cli: Callable[..., Run],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    for action in ("up", "down"):
        r = cli("lab", action, "--name", "nobody")
        assert r.code == 1 and r.err.count("\n") == 1 and "needs root" in r.err


def test_a_lab_remembers_its_inventory_and_exec_takes_its_name(lab_name: str,
                                                               cli: Callable[..., Run]) -> None:
    """verify --lab without -i reads the inventory the lab was started from; lab exec DEV
    --name NAME -- CMD runs CMD on that lab's device."""
    r = cli("lab", "up", "--name", lab_name, "-i", str(EXAMPLES["local-rs"]), "--render")
    assert r.code == 0, r.err
    r = cli("verify", "--lab", lab_name, "--wait", "30")
    assert r.code == 0 and "1/1 sessions Established" in r.out, r.out + r.err
    done = subprocess.run([sys.executable, "-m", "bgpgen.cli", "lab", "exec", "speaker",
                           "--name", lab_name, "--", "hostname"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "speaker", done.stderr


def test_a_lab_raises_the_limits_it_needs(lab_name: str, secret_env: str) -> None:
    """With the neighbour tables' thresholds set below what the example lab needs, lab up raises
    them to its needs (sessions come up), and lab down puts back exactly what was there."""
    from bgpgen.lab import limits
    from bgpgen.lab.layout import layout

    from .lab_helpers import kernel_limits
    fabric = load_fabric(EXAMPLES["dc1"])
    needs = limits.needs(layout(fabric, lab_name, "198.51.100.0/24"), 0)
    keys = [t.format(i) for t in limits.NEIGH for i in (1, 2, 3)]
    original = kernel_limits()
    try:
        for k in keys:  # low, as on a host tuned for few neighbours (thresh1 <= 2 <= 3)
            (limits.PROC / k).write_text(f"{needs[k] // 2}\n")
        before = snapshot()
        lab.up(fabric, lab_name, "198.51.100.0/24", render_configs=True)
        try:
            now = kernel_limits()
            for k in keys:
                assert int(now[k]) == needs[k], k
            wait_for(lambda: _all_established(lab_name), 30, "all sessions Established")
            state = json.loads((lab.lab_dir(lab_name) / "state.json").read_text())
            assert set(keys) <= set(state["kernel"])  # (inotify too: 128 + 2 per daemon)
        finally:
            lab.down(lab_name)
        assert_clean(before, lab.lab_dir(lab_name))  # the lowered values, as they were
    finally:
        for k in keys:
            (limits.PROC / k).write_text(original[k] + "\n")
    assert kernel_limits() == original
