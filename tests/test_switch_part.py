"""bgpgen's part of a ToR on a lab (manage: bgp-part, the default): the switch starts with a
config of its own (its router bgp as provisioned, its uplink to the spine, a site prefix-list,
an interface description; more added by hand), and every push (first deploy, a node removed, the node back, a pod
CIDR changed, a rollback after a failed gate) leaves those lines byte-identical and the uplink
session up (its uptime only grows) while bgpgen's part equals the render; a no-op deploy touches nothing; a switch on another ASN is
refused; a VIP announced by two nodes is forwarded over both (ECMP), and verify says when it
is not."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgpgen import lab, load_fabric, render
from bgpgen.platforms import frr, ownership

from .conftest import EXAMPLES, SECRET, Run, require_lab_environment, unique_lab_name
from .lab_helpers import changed_inventory, edited_inventory, run_on, wait_for

TOR = "tor-r1-a"
#: the switch's own lines, added before bgpgen's first push
THEIRS = ["interface lo", " description loopback, managed by netops", "exit",
          "ip prefix-list OTHER-TEAM seq 5 permit 10.99.0.0/16",
          "router bgp 65101", " neighbor 198.18.253.1 remote-as 65300",
          " neighbor 198.18.253.1 description firewall (planned)",
          " address-family ipv4 unicast", "  neighbor 198.18.253.1 activate",
          " exit-address-family", "exit"]
UPLINK = "198.18.254.1"  #: tor-r1-a's uplink to spine-1 (inventory/spines.yaml)


@pytest.fixture
def part_lab(request: pytest.FixtureRequest, secret_env: str) -> Iterator[str]:
    require_lab_environment("switch-part lab tests")
    name = unique_lab_name("s", request)
    lab.up(load_fabric(EXAMPLES["dc1"]), name)  # bootstrap configs: the switches' own
    try:
        yield name
    finally:
        lab.down(name)


def _running(e: dict[str, object]) -> str:
    r = run_on(e, ["vtysh", "-c", "show running-config"])
    assert r.returncode == 0, r.stderr
    return r.stdout


def _split(running: str, inventory: Path) -> tuple[list[ownership.Path], list[ownership.Path]]:
    """(the switch's own lines, bgpgen's part), each as paths."""
    rendered = render(load_fabric(inventory)).files_of(TOR)["frr.conf"].text
    have = ownership.parse(running, frr.SYNTAX)
    rules = frr._rules(ownership.parse(rendered, frr.SYNTAX), have)
    paths = ownership.paths(have)
    return ([p for p in paths if not ownership.owned(p, rules)],
            [p for p in paths if ownership.owned(p, rules)])


def _render_part(inventory: Path) -> list[ownership.Path]:
    from bgpgen.secrets import fill
    rendered = fill(render(load_fabric(inventory)).files_of(TOR)["frr.conf"].text,
                    {"tor-md5": SECRET})
    want = ownership.parse(rendered, frr.SYNTAX)
    return sorted(p for p in ownership.paths(want) if ownership.owned(p, frr._rules(want)))


def _check(r: Run, code: int) -> Run:
    assert r.code == code, (r.code, r.out, r.err)
    assert "Traceback" not in r.err
    return r


def test_bgpgen_keeps_what_is_not_its_own(part_lab: str, cli: Callable[..., Run],
                                          tmp_path: Path) -> None:
    name = part_lab
    e = lab.overlay(name)["devices"][TOR]
    r = run_on(e, ["vtysh", "-c", "conf t", *[x for ln in THEIRS for x in ("-c", ln.strip())]])
    assert r.returncode == 0, r.stderr
    dc1 = EXAMPLES["dc1"]
    theirs, _ = _split(_running(e), dc1)
    uplink = [wait_for(lambda: _uptimes(e).get(UPLINK), 30, "the uplink up")]

    def holds(inventory: Path) -> None:
        up = _uptimes(e).get(UPLINK)
        assert up is not None and up >= uplink[0], "the uplink session was reset"
        uplink[0] = up
        now = _running(e)
        mine_now = _split(now, inventory)
        # every line of the switch's own, unchanged (FRR prints them in its own order); a
        # block made to hold bgpgen's lines (address-family ipv6) is not a line of theirs
        kept = [p for p in mine_now[0] if p in theirs
                or not any(q[:len(p)] == p for q in mine_now[1])]
        assert sorted(kept) == sorted(theirs), "the switch's own lines changed"
        assert sorted(mine_now[1]) == _render_part(inventory), "bgpgen's part is not the render"
        _check(cli("diff", "-i", str(inventory), "--live", "--lab", name, "--limit", TOR), 0)

    r = _check(cli("diff", "-i", str(dc1), "--live", "--lab", name, "--limit", TOR,
                   "--format", "json"), 2)
    (plan,) = json.loads(r.out)["devices"]
    changed = [ln for ln in plan["diff"] if not ln[1:].startswith(("router bgp",
                                                                     " address-family"))]
    assert changed and not any(x in ln for x in ("198.18.253.1", UPLINK, "OTHER-TEAM",
                                                 "SITE-AGGREGATES", "interface")
                               for ln in plan["diff"]), plan["diff"]
    assert SECRET not in r.out
    _check(cli("deploy", "-i", str(dc1), "--lab", name, "--yes"), 0)
    holds(dc1)
    _check(cli("verify", "-i", str(dc1), "--lab", name, "--wait", "60"), 0)

    # ECMP: the VIP of node-r1-01 and node-r1-02 is forwarded over both on each ToR of rack 1
    r = _check(cli("verify", "-i", str(dc1), "--lab", name, "--format", "json"), 0)
    vip = [x for x in json.loads(r.out)["ecmp"] if x["prefix"] == "203.0.113.10/32"]
    assert {x["switch"] for x in vip} == {"tor-r1-a", "tor-r1-b"}
    assert all(x["ok"] and len(x["used"]) == 2 for x in vip), vip

    # a no-op deploy touches nothing: the saved file, bgpd, the sessions
    saved = lab.device_path(name, TOR, "/etc/frr/frr.conf").stat().st_mtime_ns
    bgpd = _pid(name, TOR, "bgpd")
    before = _uptimes(e)
    r = _check(cli("deploy", "-i", str(dc1), "--lab", name, "--yes"), 0)
    assert "No changes" in r.out
    assert lab.device_path(name, TOR, "/etc/frr/frr.conf").stat().st_mtime_ns == saved
    assert _pid(name, TOR, "bgpd") == bgpd
    assert all(_uptimes(e)[p] >= u for p, u in before.items())

    # a node removed from the inventory, then back; a pod CIDR changed
    gone = edited_inventory(tmp_path / "gone", "nodes.yaml", NODE_R1_04, "")
    _check(cli("deploy", "-i", str(gone), "--lab", name, "--limit", TOR, "--yes"), 0)
    assert "198.18.11.104" not in _running(e)
    holds(gone)
    _check(cli("deploy", "-i", str(dc1), "--lab", name, "--limit", TOR, "--yes"), 0)
    holds(dc1)
    moved = changed_inventory(tmp_path / "moved")
    _check(cli("deploy", "-i", str(moved), "--lab", name, "--limit", TOR, "--yes"), 0)
    holds(moved)

    # a failed gate: the pod CIDR on the switch alone (the node still announces the old one)
    # fails verify, and the rollback puts back exactly what ran
    _check(cli("deploy", "-i", str(dc1), "--lab", name, "--limit", TOR, "--yes"), 0)
    ran = _running(e)
    r = cli("deploy", "-i", str(moved), "--lab", name, "--limit", TOR, "--yes", "--verify",
            "--timeout", "10")
    assert r.code == 1 and "rolled_back" in r.out, r.out
    assert _running(e) == ran
    holds(dc1)

    # one node stops announcing the VIP: exactly that ECMP finding, on both of its ToRs
    n2 = lab.overlay(name)["devices"]["node-r1-02"]
    cfg = lab.device_path(name, "node-r1-02", "/etc/bird/bird.conf")
    text = cfg.read_text()
    cfg.write_text(text.replace("route 203.0.113.10/32 blackhole;", ""))
    assert run_on(n2, ["birdc", "configure"]).returncode == 0
    try:
        def ecmp() -> list[dict[str, str]] | None:
            r = cli("verify", "-i", str(dc1), "--lab", name, "--format", "json")
            found = [f for f in json.loads(r.out)["findings"] if f["kind"] == "ecmp"]
            return found if len(found) == 2 else None
        found = wait_for(ecmp, 30, "the ECMP finding")
        assert {f["device"] for f in found} == {"tor-r1-a", "tor-r1-b"}
        assert all("203.0.113.10/32" in f["message"] and "not over 198.18.1" in f["message"]
                   for f in found), found
    finally:
        cfg.write_text(text)
        run_on(n2, ["birdc", "configure"])


def test_a_switch_on_another_asn_is_refused(part_lab: str, cli: Callable[..., Run],
                                            tmp_path: Path) -> None:
    name = part_lab
    inv = edited_inventory(tmp_path, "switches.yaml", "asn: 65101", "asn: 65199")
    e = lab.overlay(name)["devices"][TOR]
    ran = _running(e)
    r = cli("deploy", "-i", str(inv), "--lab", name, "--limit", TOR, "--yes")
    assert r.code == 1, r.out + r.err
    lines = [ln for ln in (r.out + r.err).splitlines() if "router bgp 65101" in ln]
    assert any("tor-r1-a runs 'router bgp 65101', the inventory says 'router bgp 65199'" in ln
               for ln in lines), r.out + r.err
    assert _running(e) == ran


NODE_R1_04 = """  - name: node-r1-04
    group: r1-bird
    asn: 65014
    peering: [198.18.11.104/24, 198.18.12.104/24, 2001:db8:11::104/64, 2001:db8:12::104/64]
    mgmt: {host: 198.51.100.104}
    pod_cidrs: [10.244.4.0/24, 2001:db8:244:4::/64]
"""


def _pid(name: str, device: str, daemon: str) -> int:
    procs = lab.status(name)["devices"][device]["processes"]
    return int(next(p["pid"] for p in procs if p["name"] == daemon))


def _uptimes(e: dict[str, object]) -> dict[str, int]:
    r = run_on(e, ["vtysh", "-c", "show bgp summary json"])
    out: dict[str, int] = {}
    for af in json.loads(r.stdout or "{}").values():
        for peer, v in (af.get("peers") or {}).items():
            if v.get("state") == "Established":
                out[peer] = int(v.get("peerUptimeMsec", 0))
    return out



def test_manage_whole_replaces_the_whole_config(part_lab: str, cli: Callable[..., Run],
                                                tmp_path: Path) -> None:
    """manage: whole (a ToR bgpgen owns completely): the plan shows the switch's own lines
    going, and afterwards the switch runs the render and nothing else."""
    name = part_lab
    inv = edited_inventory(tmp_path, "switches.yaml", "  - name: tor-r1-b\n",
                           "  - name: tor-r1-b\n    manage: whole\n")
    e = lab.overlay(name)["devices"]["tor-r1-b"]
    r = _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--limit", "tor-r1-b",
                   "--format", "json"), 2)
    (plan,) = json.loads(r.out)["devices"]
    assert "- no neighbor 198.18.254.1 remote-as 65000" in plan["diff"], plan["diff"]
    assert "+no ip prefix-list SITE-AGGREGATES seq 5 permit 198.18.0.0/15 le 32" in plan["diff"]
    _check(cli("deploy", "-i", str(inv), "--lab", name, "--limit", "tor-r1-b", "--yes"), 0)
    running = _running(e)
    assert "SITE-AGGREGATES" not in running and "198.18.254.1" not in running
    _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--limit", "tor-r1-b"), 0)
