"""Cisco NX-OS: no NX-OS runs here, so its pieces are tested against what is known of it.

- passwords: NX-OS shows them back as type 3, which bgpgen cannot decrypt; the keyed digest in
  the template's description keeps an unchanged password from being a change;
- circular remediation (hier_config's NX-OS model): commands applied give the intended config,
  the rollback gives the running one back, never a line bgpgen does not own;
- the push protocol over real SSH against a stand-in NX-OS CLI (tests/fake_cli.py): checkpoint,
  configure session, verify, commit, read back, confirm within bgpgen's deadline; a refused
  command, a failed verify, a late confirm, a failed gate, a connection lost after the commit;
- the state parsers on recorded output (tests/recorded/nxos/README.md names the sources).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hier_config import HConfig
from hier_config import Platform as HcPlatform
from hier_config import WorkflowRemediation, get_hconfig

from bgpgen import load_fabric, render
from bgpgen.changes import DevicePlan
from bgpgen.netos import CliTransport
from bgpgen.platforms import nxos
from bgpgen.platforms.base import DeployFailed
from bgpgen.targets import Target

from .conftest import EXAMPLES, SECRET, Run
from .fake_cli import Nxos, cli_push, deploy_over, failed_gate, flat, lost_after, serving

RECORDED = Path(__file__).parent / "recorded" / "nxos"
INV = EXAMPLES["multi-vendor"]
TOR = "tor-nxos"
OWN = """hostname tor-nxos
feature bgp
ip prefix-list SITE seq 5 permit 198.18.0.0/15 le 32
router bgp 65306
  router-id 198.18.0.36
  neighbor 198.18.254.1
    remote-as 65000
    description uplink to spine-1
    address-family ipv4 unicast
"""


def _paths(h: HConfig) -> set[tuple[str, ...]]:
    return {tuple(c.text for c in child.lineage()) for child in h.all_children()}


THEIRS = _paths(get_hconfig(HcPlatform.CISCO_NXOS, OWN))


# --- passwords ---------------------------------------------------------------------------------

def test_an_unchanged_password_is_no_change() -> None:
    aim = ("router bgp 65306\n  template peer G\n    description bgpgen peer group\n"
           "    password 0 Zq7\n    timers 3 9\n")
    digest = nxos.key_digest(TOR, "G", "Zq7")
    assert digest != nxos.key_digest(TOR, "G", "other") != nxos.key_digest("sw2", "G", "Zq7")
    running = ("router bgp 65306\n  template peer G\n"
               f"    description bgpgen peer group key:{digest}\n"
               "    password 3 9125d59c18a9b015\n    timers 3 9\n")
    assert nxos.remediation(running, nxos.keyed(TOR, aim, running)) == []
    rotated = running.replace(digest, nxos.key_digest(TOR, "G", "old"))
    commands = nxos.remediation(rotated, nxos.keyed(TOR, aim, rotated))
    assert "    password 0 Zq7" in commands
    assert [nxos.masked(c, {"tor-md5": "Zq7"}) for c in commands if "password" in c] == [
        "    no password 3 <secret:changed>", "    password 0 <secret:tor-md5>"]


# --- circular remediation ----------------------------------------------------------------------

TPL = ("  template peer K8S-NODES-V4\n    description bgpgen peer group\n    timers 3 9\n"
       "    address-family ipv4 unicast\n      route-map BGPGEN-NODES-OUT out\n")
N1 = ("  neighbor 198.18.36.11\n    inherit peer K8S-NODES-V4\n    remote-as 65041\n"
      "    address-family ipv4 unicast\n      route-map BGPGEN-node-nxos-1-IN-V4 in\n")
N2 = ("  neighbor 198.18.36.12\n    inherit peer K8S-NODES-V4\n    remote-as 65042\n"
      "    address-family ipv4 unicast\n      route-map BGPGEN-node-nxos-2-IN-V4 in\n")
PL = "ip prefix-list BGPGEN-node-nxos-1-V4 seq 5 permit 10.244.81.0/24\n"
RM = ("route-map BGPGEN-node-nxos-1-IN-V4 permit 10\n"
      "  match ip address prefix-list BGPGEN-node-nxos-1-V4\n")

CASES = {
    "first push": (OWN, PL + RM + OWN + TPL + N1),
    "nothing to do": (PL + RM + OWN + TPL + N1, PL + RM + OWN + TPL + N1),
    "a node added": (OWN + TPL + N1, OWN + TPL + N1 + N2),
    "a node removed": (OWN + TPL + N1 + N2, OWN + TPL + N1),
    "a pod CIDR moved": (PL + OWN + TPL + N1, PL.replace("10.244.81.0", "10.244.181.0")
                         + OWN + TPL + N1),
    "timers changed": (OWN + TPL + N1, OWN + TPL.replace("timers 3 9", "timers 4 12") + N1),
    "a password set": (OWN + TPL + N1, OWN + TPL + "    password 0 Zq7\n" + N1),
    "max-prefix": (OWN + TPL + N1, OWN + TPL + "      maximum-prefix 100\n" + N1),
    "BFD on": (OWN + TPL + N1, OWN + TPL.replace("    timers 3 9\n", "    timers 3 9\n    bfd\n")
               + N1),
    "ECMP for a VIP": (OWN + TPL + N1, OWN + "  bestpath as-path multipath-relax\n"
                       + "  address-family ipv4 unicast\n    maximum-paths 64\n" + TPL + N1),
    "every node gone": (PL + RM + OWN + TPL + N1 + N2, OWN),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_remediation_is_circular(case: str) -> None:
    running, intended = CASES[case]
    run_h = get_hconfig(HcPlatform.CISCO_NXOS, running)
    want_h = get_hconfig(HcPlatform.CISCO_NXOS, intended)
    wf = WorkflowRemediation(run_h, want_h)
    assert _paths(run_h.future(wf.remediation_config)) == _paths(want_h)
    assert _paths(want_h.future(wf.rollback_config)) == _paths(run_h)
    commands = nxos.remediation(running, intended)
    assert (commands == []) == (case == "nothing to do")
    assert not [c for c in commands if "198.18.254.1" in c or "SITE" in c], commands


def test_a_pushed_part_keeps_the_switch_own_lines() -> None:
    stale = OWN + TPL + N1.replace("198.18.36.11", "198.18.36.99")
    build = render(load_fabric(INV))
    rendered = next(a.text for a in build.artifacts if a.device == TOR)
    paths = _paths(get_hconfig(HcPlatform.CISCO_NXOS, nxos.aim_of(TOR, rendered, stale)))
    assert THEIRS <= paths
    assert not [p for p in paths if "198.18.36.99" in p[-1]]
    assert ("router bgp 65306", "neighbor 198.18.36.11", "remote-as 65041") in paths


# --- the push, over SSH ------------------------------------------------------------------------

def _recorded() -> dict[str, str]:
    summary = (RECORDED / "show_ip_bgp_summary.txt").read_text()
    table = (RECORDED / "show_ip_bgp.txt").read_text()
    return {"show ip bgp summary": summary, "show bgp ipv6 unicast summary": "",
            "show ip bgp": table, "show bgp ipv6 unicast": ""}


@pytest.fixture
def switch(tmp_path: Path, secret_env: str) -> Iterator[tuple[Nxos, Path]]:
    dev = Nxos(TOR, OWN, _recorded())
    with serving(dev, tmp_path) as (_, cfg):
        yield dev, cfg


def _changes(log: list[str]) -> list[str]:
    return [c for c in log if not c.startswith(("terminal ", "show ", "exit"))]


def test_push_sends_the_checkpoint_protocol(switch: tuple[Nxos, Path],
                                            cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 0, r.out + r.err
    assert SECRET not in r.out + r.err
    sent = _changes(dev.log)
    name = sent[0].split()[-1]
    assert sent[:2] == [f"checkpoint {name}", f"configure session {name}"]
    verify = sent.index("verify")
    assert sent[verify:] == ["verify", "commit", "copy running-config startup-config",
                             f"no checkpoint {name}"]
    after = dev.log[dev.log.index("commit") + 1:]
    assert after[:2] == ["show running-config", "show ip bgp summary"]
    paths = _paths(get_hconfig(HcPlatform.CISCO_NXOS, dev.running))
    assert THEIRS <= paths
    assert ("router bgp 65306", "neighbor 2001:db8:36::12", "remote-as 65042") in paths
    assert f"password 0 {SECRET}" not in dev.running  # NX-OS shows type 3
    assert dev.saved == dev.running and not dev.checkpoints
    # the password is back as type 3: the digest in the description says it is unchanged
    dev.log.clear()
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 0 and "No changes" in r.out, r.out
    assert _changes(dev.log) == []


def test_a_refused_command_aborts_the_session(switch: tuple[Nxos, Path],
                                              cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    dev.refuse = r"maximum-prefix"
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 1 and "Invalid command" in flat(r) and "nothing changed" in flat(r)
    assert _changes(dev.log)[-2:] == ["abort", f"no checkpoint {_changes(dev.log)[0].split()[-1]}"]
    assert dev.running == OWN and not dev.checkpoints


def test_a_failed_verify_changes_nothing(switch: tuple[Nxos, Path],
                                         cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    dev.refuse_verify = r"bestpath"
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 1 and "Failed to verify" in flat(r), r.out
    assert "commit" not in dev.log and dev.running == OWN and not dev.checkpoints


def _push_deferred(dev: Nxos, cfg: Path) -> tuple[CliTransport, DevicePlan]:
    t, p = cli_push(nxos.SPEC, INV, TOR, cfg)
    assert dev.running != OWN and dev.checkpoints
    return t, p


def test_a_confirm_past_the_deadline_rolls_back(switch: tuple[Nxos, Path]) -> None:
    dev, cfg = switch
    t, p = _push_deferred(dev, cfg)
    p.extra["committed_at"] = float(p.extra["committed_at"]) - nxos.CONFIRM_DEADLINE - 1
    with pytest.raises(DeployFailed, match="past bgpgen's deadline .* rolled back"):
        nxos.SPEC.driver.confirm(t, p)
    assert dev.running == OWN and not dev.checkpoints


def test_a_failed_gate_rolls_back_to_the_checkpoint(switch: tuple[Nxos, Path]) -> None:
    dev, cfg = switch
    t, p = _push_deferred(dev, cfg)
    nxos.SPEC.driver.rollback(t, p, 5.0)
    assert dev.running == OWN and not dev.checkpoints
    assert f"rollback running-config checkpoint {p.extra['checkpoint']}" in dev.log


def test_a_connection_lost_after_the_commit(switch: tuple[Nxos, Path],
                                            cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    lost_after(cli, INV, cfg, dev, r"^commit$")
    assert dev.running == OWN and not dev.checkpoints


def test_a_failed_gate_through_deploy(switch: tuple[Nxos, Path],
                                      cli: Callable[..., Run]) -> None:
    """``deploy --verify``: the push goes in unconfirmed, the fabric's verify fails (the nodes
    are not there), and the switch is rolled back to exactly what it ran."""
    dev, cfg = switch
    failed_gate(cli, INV, cfg, dev)
    assert dev.running == OWN
    assert [c for c in dev.log if c.startswith("rollback running-config checkpoint")]
    assert not dev.checkpoints


def test_a_checkpoint_left_by_a_dead_run_is_reported_and_removed(
        switch: tuple[Nxos, Path], cli: Callable[..., Run]) -> None:
    """NX-OS has no commit timer: a run that died after its commit left its checkpoint. The
    next plan says so, and its deploy removes it."""
    dev, cfg = switch
    dev.checkpoints["bgpgen-4242-dead00"] = OWN
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 0, r.out
    assert "checkpoint bgpgen-4242-dead00: left by an earlier run" in flat(r)
    assert "no checkpoint bgpgen-4242-dead00" in dev.log and not dev.checkpoints
    dev.log.clear()
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 0 and "No changes" in r.out, r.out

# --- state -------------------------------------------------------------------------------------

def test_state_from_recorded_output() -> None:
    rec = _recorded()
    t = Target(TOR, nxos.SPEC.platform, None, (), False, "", "", "", 0)  # type: ignore[arg-type]
    view = nxos.parse_state(t, rec["show ip bgp summary"] + "\n" + rec["show ip bgp"], 0.0)
    assert view.peers["10.0.0.1"].state == "Established"
    assert view.peers["10.0.0.1"].received == 558720
    assert view.peers["10.0.0.100"].state == "Idle"
    assert view.peers["10.0.0.10"].state == "Idle"  # "Idle (Admin)"
    assert len(view.rib) == 8
    best = [(r.prefix, r.next_hop) for r in view.rib if r.selected]
    assert ("0.0.0.0/0", "1.1.1.1") in best and ("3.126.20.182/32", "2.2.2.2") in best
    assert nxos.parse_sessions(rec["show ip bgp summary"])["10.0.0.3"] == "Established"
