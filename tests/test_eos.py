"""Arista EOS: no EOS runs here, so its pieces are tested against what is known of it.

- type 7 passwords against EOS configs published by Arista's AVD (their clear text is known);
- circular remediation: for each case, hier_config's commands applied to the running config give
  the intended one, and its rollback gives the running one back, never touching a line bgpgen
  does not own;
- the push protocol over real SSH against a stand-in switch (tests/fake_cli.py: EOS's prompts,
  config sessions and commit timers; config changes computed with hier_config's EOS model):
  the exact command sequence, a refused command, a commit timer that ran out before the confirm,
  a rollback after a failed gate, a connection lost after the commit;
- the state parser on recorded output (tests/recorded/eos/README.md names the sources).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hier_config import HConfig
from hier_config import Platform as HcPlatform
from hier_config import WorkflowRemediation, get_hconfig

from bgpgen import load_fabric, render
from bgpgen.changes import DevicePlan
from bgpgen.netos import CliTransport
from bgpgen.errors import BgpgenError
from bgpgen.platforms import eos, lab_of
from bgpgen.platforms.base import DeployFailed

from .conftest import EXAMPLES, SECRET, Run
from .fake_cli import Eos, cli_push, deploy_over, failed_gate, lost_after, serving

RECORDED = Path(__file__).parent / "recorded" / "eos"
INV = EXAMPLES["multi-vendor"]
TOR = "tor-eos"
#: the switch as provisioned: its own BGP, an uplink, a prefix-list of its own
OWN = """hostname tor-eos
!
ip prefix-list SITE
   seq 10 permit 198.18.0.0/15 le 32
!
router bgp 65304
   router-id 198.18.0.34
   no bgp default ipv4-unicast
   neighbor 198.18.254.1 remote-as 65000
   neighbor 198.18.254.1 description uplink to spine-1
   !
   address-family ipv4
      neighbor 198.18.254.1 activate
!
"""
THEIRS = {("ip prefix-list SITE", "seq 10 permit 198.18.0.0/15 le 32"),
          ("router bgp 65304", "neighbor 198.18.254.1 remote-as 65000"),
          ("router bgp 65304", "address-family ipv4", "neighbor 198.18.254.1 activate")}


# --- type 7 ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("group", "text"), [
    # Arista AVD's example EOS configs (aristanetworks/avd, e.g. the single-DC L3LS example's
    # intended configs), whose peer-group passwords are "arista123"
    ("IPv4-UNDERLAY-PEERS", "AQQvKeimxJu+uGQ/yYvv9w=="),
    ("EVPN-OVERLAY-PEERS", "q+VNViP5i4rVjW1cxFv2wA=="),
    ("MLAG-IPv4-UNDERLAY-PEER", "vnEaG8gMeQf3d3cN6PktXQ=="),
])
def test_type7_matches_eos(group: str, text: str) -> None:
    assert eos.type7_clear(group, text) == "arista123"
    assert eos.type7(group, "arista123") == text
    assert eos.type7_clear("ANOTHER-GROUP", text) is None  # keyed by the group


def test_a_password_is_compared_and_shown_in_type7_only() -> None:
    rendered = " neighbor K8S-NODES-V4 password 0 Zq7\n"
    text = eos.encrypted(rendered)
    assert "Zq7" not in text and eos.type7("K8S-NODES-V4", "Zq7") in text
    assert eos.masked(text, {"tor-md5": "Zq7"}) == \
        " neighbor K8S-NODES-V4 password 7 <secret:tor-md5>\n"
    other = eos.encrypted(" neighbor K8S-NODES-V4 password 0 someone-elses\n")
    assert eos.masked(other, {"tor-md5": "Zq7"}) == \
        " neighbor K8S-NODES-V4 password 7 <secret:changed>\n"


# --- circular remediation ----------------------------------------------------------------------

def _paths(h: HConfig) -> set[tuple[str, ...]]:
    return {tuple(c.text for c in child.lineage()) for child in h.all_children()}


BGP = "router bgp 65304\n   router-id 198.18.0.34\n   no bgp default ipv4-unicast\n"
UPLINK = ("   neighbor 198.18.254.1 remote-as 65000\n"
          "   neighbor 198.18.254.1 description uplink to spine-1\n")
GROUP = ("   neighbor K8S-NODES-V4 peer group\n   neighbor K8S-NODES-V4 timers 3 9\n"
         "   neighbor K8S-NODES-V4 description bgpgen peer group\n")
N1 = ("   neighbor 198.18.34.11 peer group K8S-NODES-V4\n"
      "   neighbor 198.18.34.11 remote-as 65037\n"
      "   neighbor 198.18.34.11 route-map BGPGEN-node-eos-1-IN-V4 in\n")
N2 = ("   neighbor 198.18.34.12 peer group K8S-NODES-V4\n"
      "   neighbor 198.18.34.12 remote-as 65038\n"
      "   neighbor 198.18.34.12 route-map BGPGEN-node-eos-2-IN-V4 in\n")
AF4 = "   !\n   address-family ipv4\n      neighbor 198.18.254.1 activate\n"
AF4G = AF4 + "      neighbor K8S-NODES-V4 activate\n"
PL1 = "ip prefix-list BGPGEN-node-eos-1-V4\n   seq 10 permit 10.244.61.0/24\n!\n"
PL1B = "ip prefix-list BGPGEN-node-eos-1-V4\n   seq 10 permit 10.244.161.0/24\n!\n"
RM1 = ("route-map BGPGEN-node-eos-1-IN-V4 permit 10\n"
       "   match ip address prefix-list BGPGEN-node-eos-1-V4\n!\n")
SITE = "ip prefix-list SITE\n   seq 10 permit 198.18.0.0/15 le 32\n!\n"

CASES = {
    "first push": (SITE + BGP + UPLINK + AF4, SITE + PL1 + RM1 + BGP + UPLINK + GROUP + N1 + AF4G),
    "nothing to do": (SITE + PL1 + RM1 + BGP + UPLINK + GROUP + N1 + AF4G,
                      SITE + PL1 + RM1 + BGP + UPLINK + GROUP + N1 + AF4G),
    "a node added": (PL1 + RM1 + BGP + UPLINK + GROUP + N1 + AF4G,
                     PL1 + RM1 + BGP + UPLINK + GROUP + N1 + N2 + AF4G),
    "a node removed": (PL1 + RM1 + BGP + UPLINK + GROUP + N1 + N2 + AF4G,
                       PL1 + RM1 + BGP + UPLINK + GROUP + N1 + AF4G),
    "a pod CIDR moved": (SITE + PL1 + RM1 + BGP + GROUP + N1 + AF4G,
                         SITE + PL1B + RM1 + BGP + GROUP + N1 + AF4G),
    "timers changed": (BGP + UPLINK + GROUP + N1 + AF4G,
                       BGP + UPLINK + GROUP.replace("timers 3 9", "timers 4 12") + N1 + AF4G),
    "a password set": (BGP + GROUP + N1 + AF4G, BGP + GROUP + "   neighbor K8S-NODES-V4 password 7 "
                       + eos.type7("K8S-NODES-V4", "Zq7") + "\n" + N1 + AF4G),
    "a password rotated": (
        BGP + GROUP + f"   neighbor K8S-NODES-V4 password 7 {eos.type7('K8S-NODES-V4', 'old')}\n"
        + N1 + AF4G,
        BGP + GROUP + f"   neighbor K8S-NODES-V4 password 7 {eos.type7('K8S-NODES-V4', 'new')}\n"
        + N1 + AF4G),
    "max-prefix added": (BGP + GROUP + N1 + AF4G, BGP + GROUP
                         + "   neighbor K8S-NODES-V4 maximum-accepted-routes 100\n" + N1 + AF4G),
    "BFD on": (BGP + GROUP + N1 + AF4G, BGP + GROUP + "   neighbor K8S-NODES-V4 bfd\n" + N1 + AF4G),
    "IPv6 family added": (
        BGP + UPLINK + GROUP + N1 + AF4G,
        "ipv6 prefix-list BGPGEN-node-eos-1-V6\n   seq 10 permit 2001:db8:244:61::/64\n!\n"
        + BGP + UPLINK + GROUP + N1 + "   neighbor K8S-NODES-V6 peer group\n"
        + "   neighbor 2001:db8:34::11 peer group K8S-NODES-V6\n"
        + "   neighbor 2001:db8:34::11 remote-as 65037\n" + AF4G
        + "   !\n   address-family ipv6\n      neighbor K8S-NODES-V6 activate\n"),
    "ECMP for a VIP": (BGP + UPLINK + GROUP + N1 + AF4G,
                       BGP + UPLINK + "   maximum-paths 64 ecmp 64\n"
                       + "   bgp bestpath as-path multipath-relax\n" + GROUP + N1 + AF4G),
    "every node gone": (SITE + PL1 + RM1 + BGP + UPLINK + GROUP + N1 + AF4G,
                        SITE + BGP + UPLINK + AF4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_remediation_is_circular(case: str) -> None:
    running, intended = CASES[case]
    run_h = get_hconfig(HcPlatform.ARISTA_EOS, running)
    want_h = get_hconfig(HcPlatform.ARISTA_EOS, intended)
    wf = WorkflowRemediation(run_h, want_h)
    assert _paths(run_h.future(wf.remediation_config)) == _paths(want_h)
    assert _paths(want_h.future(wf.rollback_config)) == _paths(run_h)
    commands = eos.remediation(running, intended)
    assert (commands == []) == (case == "nothing to do")
    # never a line of the switch's own (its uplink, its prefix-list) in the commands
    assert not [c for c in commands if "198.18.254.1" in c or "SITE" in c], commands


def test_a_pushed_part_keeps_the_switch_own_lines() -> None:
    """The aimed config is the running one with bgpgen's part replaced: the switch's uplink and
    its own prefix-list stay, and a node bgpgen no longer renders goes."""
    stale = OWN.replace("!\nrouter bgp", PL1 + RM1 + "router bgp").replace(
        "   neighbor 198.18.254.1 remote-as 65000\n",
        "   neighbor 198.18.254.1 remote-as 65000\n" + GROUP
        + N1.replace("198.18.34.11", "198.18.34.99"))
    build = render(load_fabric(INV))
    rendered = eos.encrypted(next(a.text for a in build.artifacts if a.device == TOR))
    aim = eos.aim_of(TOR, rendered, stale)
    paths = _paths(get_hconfig(HcPlatform.ARISTA_EOS, aim))
    assert THEIRS <= paths
    assert not [p for p in paths if "198.18.34.99" in p[-1]]
    assert ("router bgp 65304", "neighbor 198.18.34.11 remote-as 65037") in paths


# --- the push, over SSH ------------------------------------------------------------------------

def _recorded() -> dict[str, str]:
    summary = (RECORDED / "show_ip_bgp_summary.json").read_text()
    return {"show ip bgp summary | json": summary,
            "show ipv6 bgp summary | json": '{"vrfs": {"default": {"peers": {}}}}',
            "show ip bgp | json": (RECORDED / "show_ip_bgp_prefix.json").read_text(),
            "show ipv6 bgp | json": '{"vrfs": {"default": {"bgpRouteEntries": {}}}}'}


@pytest.fixture
def switch(tmp_path: Path, secret_env: str) -> Iterator[tuple[Eos, Path]]:
    dev = Eos(TOR, OWN, _recorded())
    with serving(dev, tmp_path) as (_, cfg):
        yield dev, cfg


def _session_commands(log: list[str]) -> list[str]:
    return [c for c in log if not c.startswith(("terminal ", "show ", "exit"))]


def test_push_sends_the_session_protocol(switch: tuple[Eos, Path], cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 0, r.out + r.err
    assert SECRET not in r.out + r.err and SECRET not in "\n".join(dev.log)
    sent = _session_commands(dev.log)
    session = sent[0].split()[-1]
    assert sent[0] == f"configure session {session}" and session.startswith("bgpgen-")
    timer = sent.index("commit timer 00:10:00")
    assert sent[timer + 1:] == [f"configure session {session} commit",
                                "copy running-config startup-config"]
    body = sent[1:timer]
    assert "ip prefix-list BGPGEN-node-eos-1-V4" in body
    assert f"neighbor K8S-NODES-V4 password 7 {eos.type7('K8S-NODES-V4', SECRET)}" in body
    # between the commit and the confirm: the running config read back, the sessions checked
    after = dev.log[dev.log.index("commit timer 00:10:00") + 1:]
    assert after[:2] == ["show running-config", "show ip bgp summary | json"]
    paths = _paths(get_hconfig(HcPlatform.ARISTA_EOS, dev.running))
    assert THEIRS <= paths
    assert ("router bgp 65304", "neighbor 2001:db8:34::12 remote-as 65038") in paths
    assert dev.saved == dev.running and not dev.pending and not dev.sessions
    # a second deploy finds nothing to do: show commands only
    dev.log.clear()
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 0 and "No changes" in r.out, r.out
    assert _session_commands(dev.log) == []


def test_a_refused_command_aborts_the_session(switch: tuple[Eos, Path],
                                              cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    dev.refuse = r"maximum-accepted-routes"
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 1
    assert "refused 'neighbor K8S-NODES-V4 maximum-accepted-routes 100'" in r.out
    assert "Invalid input" in r.out and "nothing changed" in r.out, r.out
    sent = _session_commands(dev.log)
    assert sent[-1] == "abort" and not [c for c in sent if c.startswith("commit")]
    assert dev.running == OWN and not dev.sessions and not dev.pending


def _push_deferred(dev: Eos, cfg: Path) -> tuple[CliTransport, DevicePlan]:
    t, p = cli_push(eos.SPEC, INV, TOR, cfg)
    assert dev.pending
    return t, p


def test_a_commit_timer_that_ran_out_is_a_failed_confirm(switch: tuple[Eos, Path]) -> None:
    dev, cfg = switch
    t, p = _push_deferred(dev, cfg)
    dev.expire()  # the gate took longer than the timer: EOS put the previous config back
    with pytest.raises(DeployFailed, match="the confirm came too late: .*rolled the commit back"):
        eos.SPEC.driver.confirm(t, p)
    assert dev.running == OWN


def test_a_failed_gate_aborts_the_commit(switch: tuple[Eos, Path]) -> None:
    dev, cfg = switch
    t, p = _push_deferred(dev, cfg)
    eos.SPEC.driver.rollback(t, p, 5.0)
    assert dev.running == OWN and not dev.pending
    assert dev.log[-1] == f"configure session {p.extra['session']} abort"


def test_a_connection_lost_after_the_commit_is_rolled_back(switch: tuple[Eos, Path],
                                                           cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    lost_after(cli, INV, cfg, dev, r"^commit timer")
    assert dev.running == OWN and not dev.pending
    assert dev.log[-1].endswith(" abort") or dev.log[-2].endswith(" abort"), dev.log[-3:]


def test_a_failed_gate_through_deploy(switch: tuple[Eos, Path],
                                      cli: Callable[..., Run]) -> None:
    """``deploy --verify``: the push goes in unconfirmed, the fabric's verify fails (the nodes
    are not there), and the switch is rolled back to exactly what it ran."""
    dev, cfg = switch
    failed_gate(cli, INV, cfg, dev)
    assert dev.running == OWN
    assert [c for c in dev.log if c.endswith(" abort")] and not dev.pending

# --- state -------------------------------------------------------------------------------------

def test_state_from_recorded_output() -> None:
    from bgpgen.targets import Target
    out = "\n".join(_recorded()[c] for c in (*eos.SUMMARY, *eos.ROUTES))
    t = Target(TOR, eos.SPEC.platform, None, (), False, "", "", "", 0)  # type: ignore[arg-type]
    view = eos.parse_state(t, out, 1721080627.052693)
    assert {a: (p.state, p.received, p.accepted) for a, p in view.peers.items()} == {
        "10.0.0.1": ("Established", 3, 3), "10.0.0.3": ("Active", 0, 0)}
    assert round(view.peers["10.0.0.1"].uptime or 0) == 100
    routes = [(r.prefix, r.next_hop, r.peer, r.as_path) for r in view.rib]
    assert len(routes) == 4 and routes[0] == ("1.0.4.0/24", "169.254.232.160",
                                              "169.254.232.160", "65418 65419")
    assert all(r.selected for r in view.rib)  # every path is in the ECMP set
    assert eos.parse_sessions(out) == {"10.0.0.1": "Established", "10.0.0.3": "Active"}


def test_no_lab_runs_eos() -> None:
    with pytest.raises(BgpgenError, match="no lab can run eos here"):
        lab_of(eos.SPEC.platform)


def test_verify_reads_the_switch_through_its_cli(switch: tuple[Eos, Path],
                                                 cli: Callable[..., Run]) -> None:
    """verify sends the state commands over the CLI session and judges what the switch says:
    the recorded switch has other peers, so each of tor-eos's four sessions is reported as not
    configured there (and nodes without a lab are unread)."""
    dev, cfg = switch
    r = cli("verify", "-i", str(INV), "--ssh-config", str(cfg), "--limit", TOR,
            "--format", "json")
    assert r.code == 3, r.out + r.err
    assert [c for c in dev.log if c.startswith("show ")] == [*eos.SUMMARY, *eos.ROUTES]
    report = json.loads(r.out[r.out.index("{"):])
    down = {f["session"] for f in report["findings"] if f["device"] == TOR
            and f["kind"] == "session_down" and "is not configured on tor-eos" in f["message"]}
    assert down == {f"tor-eos:node-eos-{i}:{fam}" for i in (1, 2) for fam in ("ipv4", "ipv6")}


@pytest.mark.parametrize("platform", ["eos", "junos", "nxos"])
def test_a_node_on_another_port_is_refused(platform: str, tmp_path: Path, secret_env: str,
                                           cli: Callable[..., Run]) -> None:
    """EOS, Junos and NX-OS render no remote port: a node on another one is a one-line error
    naming the node and the fix, and nothing is written."""
    import shutil
    inv = tmp_path / "inv"
    shutil.copytree(INV, inv)
    nodes = inv / "nodes.yaml"
    old = f"{{name: node-{platform}-1, group: {platform}-gobgp,"
    assert old in nodes.read_text()
    nodes.write_text(nodes.read_text().replace(old, old + " bgp_port: 1790,"))
    r = cli("render", "-i", str(inv), "-o", str(tmp_path / "out"))
    assert r.code == 1 and r.err.strip().count("\n") == 0, r.err
    assert f"node-{platform}-1 peers on port 1790" in r.err and "bgp_port to 179" in r.err
    assert not (tmp_path / "out").exists()
