"""bgpgen verify against labs: the whole fabric, four kinds of fault, --wait, the route server."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from bgpgen import lab, load_fabric

from .conftest import EXAMPLES, Run, SECRET, require_lab_environment
from .lab_helpers import wait_for


@pytest.fixture(autouse=True)
def _needs_root(secret_env: str) -> None:
    require_lab_environment("verify tests")




def _verify(cli: Callable[..., Run], name: str, *extra: str) -> tuple[int, dict[str, Any]]:
    r = cli("verify", "--lab", name, "--format", "json", *extra)
    assert SECRET not in r.out + r.err and "Traceback" not in r.err
    return r.code, json.loads(r.out)


def _in_lab(name: str, device: str, *argv: str) -> None:
    e = lab.overlay(name)["devices"][device]
    r = lab.run_on(e, list(argv))
    assert r.returncode == 0, r.stderr


def test_verify_after_deploy_lists_every_session(lab_name: str, cli: Callable[..., Run]) -> None:
    fabric = load_fabric(EXAMPLES["dc1"])
    lab.up(fabric, lab_name)
    r = cli("deploy", "--lab", lab_name, "--yes")
    assert r.code == 0, r.out
    t0 = time.monotonic()
    code, report = _verify(cli, lab_name, "--wait", "30")
    assert code == 0 and report["ok"], report["problems"]
    # Counts computed here, independently, from the model.
    assert len(report["sessions"]) == len(fabric.sessions) == 28
    rows = {r["id"]: r for r in report["sessions"]}
    for s in fabric.sessions:
        row = rows[s.id]
        assert row["switch_state"] == row["node_state"] == "Established"
        node = fabric.device(s.node)
        expected = len(node.prefixes(s.family))  # type: ignore[attr-defined]
        assert row["expected"] == row["received"] == expected, s.id
    assert time.monotonic() - t0 < 30
    text = cli("verify", "--lab", lab_name)
    assert text.code == 0 and "28/28 sessions Established on both ends" in text.out
    assert "36/36 expected routes in place" in text.out


def test_verify_wait_returns_right_after_convergence(lab_name: str,
                                                    cli: Callable[..., Run]) -> None:
    fabric = load_fabric(EXAMPLES["dc1"])
    lab.up(fabric, lab_name)
    r = cli("deploy", "--lab", lab_name, "--yes")
    assert r.code == 0, r.out
    # Kick every session on the switches, then race verify --wait against the daemons.
    for sw in ("tor-r1-a", "tor-r1-b", "tor-r2-a", "tor-r2-b"):
        _in_lab(lab_name, sw, "vtysh", "-c", "clear bgp *")
    established_at: list[float] = []
    switches = [lab.overlay(lab_name)["devices"][sw] for sw in
                ("tor-r1-a", "tor-r1-b", "tor-r2-a", "tor-r2-b")]

    def watch() -> None:
        # What the daemons report: every switch sees every session (its own end), read
        # straight from FRR, lightly, so that the watcher does not slow verify down.
        nodes = {str(s.node_address) for s in fabric.sessions}  # not the spine uplinks
        states = [s for e in switches for p, s in lab.read_sessions(e).items() if p in nodes]
        if len(states) == len(fabric.sessions) and all(s == "Established" for s in states):
            established_at.append(time.monotonic())
    import threading
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set() and not established_at:
            watch()
            time.sleep(0.1)
    t = threading.Thread(target=poll)
    t.start()
    code, _ = _verify(cli, lab_name, "--wait", "30")
    done = time.monotonic()
    stop.set()
    t.join()
    if not established_at:  # verify saw it before the watcher's next look: look once more
        watch()
    assert code == 0 and established_at
    assert done - established_at[0] < 1.5, f"verify returned {done - established_at[0]:.2f} s late"


def _fault_withdraw(name: str) -> None:
    _in_lab(name, "node-r1-01", "gobgp", "global", "rib", "del", "-a", "ipv4", "10.244.1.0/24")


def _fault_bird_down(name: str) -> None:
    hold = lab.lab_dir(name) / "hold"
    hold.mkdir()
    (hold / "node-r1-02.bird").touch()  # the supervisor leaves it down
    bird = next(p for p in lab.status(name)["devices"]["node-r1-02"]["processes"]
                if p["name"] == "bird")
    os.kill(bird["pid"], signal.SIGTERM)


def _fault_unexpected(name: str) -> None:
    _in_lab(name, "tor-r2-a", "vtysh", "-c", "conf t", "-c",
            "router bgp 65201", "-c", "no bgp network import-check", "-c",
            "address-family ipv4 unicast", "-c", "network 198.18.250.0/24")


def _fault_next_hop(name: str) -> None:
    _in_lab(name, "tor-r1-a", "vtysh", "-c", "conf t", "-c",
            "route-map BGPGEN-node-r1-03-IN-V4 permit 10", "-c", "set ip next-hop 198.18.11.250",
            "-c", "end", "-c", "clear bgp ipv4 unicast 198.18.11.103 soft in")


def _fault_drift(name: str) -> None:
    """The file changes and nobody reloads: the daemon runs the old settings."""
    _in_lab(name, "node-r1-01", "sed", "-i", "0,/hold-time = 9/s//hold-time = 13/",
            "/etc/gobgpd.conf")


FAULTS: dict[str, tuple[Callable[[str], None], list[str]]] = {
    "file-and-daemon-apart": (_fault_drift, [
        "drift: node-r1-01's BGP daemon runs other settings than its config file for "
        "198.18.11.1"]),
    "pod-cidr-withdrawn": (_fault_withdraw, [
        "missing: 10.244.1.0/24 from node-r1-01 on tor-r1-a",
        "missing: 10.244.1.0/24 from node-r1-01 on tor-r1-b"]),
    "bird-daemon-stopped": (_fault_bird_down, [
        "node-r1-02: BGP daemon not answering",
        "session tor-r1-a:node-r1-02:ipv4 is", "session tor-r1-b:node-r1-02:ipv6 is"]),
    "unexpected-prefix": (_fault_unexpected, [
        "unexpected route: 198.18.250.0/24 on tor-r2-a (originated there)"]),
    "next-hop-rewritten": (_fault_next_hop, [
        "wrong next hop: 10.244.3.0/24 on tor-r1-a: next hop 198.18.11.250, expected "
        "198.18.11.103"]),
}


#: per fault, a finding object verify's JSON must hold: kind, device, peer, family
FINDINGS = {
    "file-and-daemon-apart": ("drift", "node-r1-01", "198.18.11.1", "ipv4"),
    "pod-cidr-withdrawn": ("missing", "tor-r1-a", "198.18.11.101", "ipv4"),
    "bird-daemon-stopped": ("daemon_down", "node-r1-02", "", ""),
    "unexpected-prefix": ("unexpected", "tor-r2-a", "", "ipv4"),
    "next-hop-rewritten": ("wrong_next_hop", "tor-r1-a", "198.18.11.103", "ipv4"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_negative_case(fault: str, lab_name: str, cli: Callable[..., Run]) -> None:
    fabric = load_fabric(EXAMPLES["dc1"])
    lab.up(fabric, lab_name, render_configs=True)
    code, report = _verify(cli, lab_name, "--wait", "30")
    assert code == 0, report["problems"]
    make, expected = FAULTS[fault]
    make(lab_name)

    def reported() -> dict[str, Any] | None:
        code, rep = _verify(cli, lab_name)
        text = "\n".join(rep["problems"])
        return rep if code == 3 and all(e in text for e in expected) else None
    rep = wait_for(reported, 30, f"{fault} reported")
    if fault == "bird-daemon-stopped":  # down on the switches, read from the switches
        rows = [r for r in rep["sessions"] if r["node"] == "node-r1-02"]
        assert rows and all(r["switch_state"] != "Established" for r in rows)
    kind, device, peer, family = FINDINGS[fault]
    assert all(set(f) == {"kind", "device", "peer", "family", "session", "message"}
               for f in rep["findings"]), rep["findings"]
    assert any(f["kind"] == kind and f["device"] == device and f["peer"] == peer
               and f["family"] == family for f in rep["findings"]), rep["findings"]
    others = [p for p in rep["problems"] if not any(e in p for e in expected)
              and "node-r1-02" not in p]
    if fault != "bird-daemon-stopped":
        assert others == [], others  # only the fault is reported


def test_route_server_example_verifies(lab_name: str, cli: Callable[..., Run]) -> None:
    lab.up(load_fabric(EXAMPLES["local-rs"]), lab_name, "203.0.113.0/28", render_configs=True)
    r = cli("verify", "-i", str(EXAMPLES["local-rs"]), "--lab", lab_name, "--wait", "30",
            "--format", "json")
    report = json.loads(r.out)
    assert r.code == 0, report["problems"]
    (row,) = report["sessions"]
    assert (row["switch"], row["node"], row["expected"], row["received"]) == \
        ("rs", "speaker", 1, 1)


def test_unreachable_device_is_an_error(lab_name: str, cli: Callable[..., Run]) -> None:
    lab.up(load_fabric(EXAMPLES["local-rs"]), lab_name, "203.0.113.16/28", render_configs=True)
    kh = lab.overlay(lab_name)["devices"]["rs"]["known_hosts"]
    with open(kh, "w") as fh:
        fh.write("")
    r = cli("verify", "-i", str(EXAMPLES["local-rs"]), "--lab", lab_name)
    assert r.code == 1 and "host key verification failed" in r.out


def test_deploy_verify_confirms_or_rolls_back(lab_name: str, cli: Callable[..., Run],
                                              tmp_path: Any) -> None:
    import shutil
    from pathlib import Path

    from .conftest import ROOT
    fabric = load_fabric(EXAMPLES["dc1"])
    lab.up(fabric, lab_name, render_configs=True)
    assert _verify(cli, lab_name, "--wait", "30")[0] == 0
    inv = Path(tmp_path) / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    nodes = inv / "nodes.yaml"
    nodes.write_text(nodes.read_text().replace("[10.244.2.0/24,", "[10.244.32.0/24,"))
    # A push that every device accepts but that breaks the fabric: the switches rewrite the
    # next hop of what the nodes announce. Only the fabric's verify can see it.
    tpl = Path(tmp_path) / "t" / "frr"
    tpl.mkdir(parents=True)
    text = (ROOT / "templates" / "frr" / "frr.conf.j2").read_text()
    old = ' match {{ "ip" if fam == "ipv4" else "ipv6" }} address prefix-list ' \
          '{{ n.prefix_list[fam] }}\n'
    assert old in text
    (tpl / "frr.conf.j2").write_text(text.replace(
        old, old + '{% if fam == "ipv4" %}\n set ip next-hop 198.18.99.99\n{% endif %}\n'))
    r = cli("deploy", "-i", str(inv), "--lab", lab_name, "--yes", "--verify", "--timeout", "8",
            "--templates", str(tpl.parent), "--format", "json")
    assert r.code == 1 and SECRET not in r.out
    res = {x["device"]: x for x in json.loads(r.out[r.out.index("{"):])["results"]}
    assert res["tor-r1-a"]["status"] == "rolled_back" and res["node-r1-02"]["status"] == \
        "rolled_back", res
    assert "wrong next hop" in res["tor-r1-a"]["message"]
    code, rep = _verify(cli, lab_name, "--wait", "30")  # back as it was
    assert code == 0, rep["problems"]
    # The same change without the breakage verifies and is kept.
    r = cli("deploy", "-i", str(inv), "--lab", lab_name, "--yes", "--verify", "--timeout", "30")
    assert r.code == 0, r.out
    assert "36/36 expected routes in place" in r.out
    code, rep = _verify(cli, lab_name, "-i", str(inv))
    assert code == 0, rep["problems"]
