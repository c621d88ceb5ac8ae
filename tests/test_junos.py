"""Juniper Junos: no Junos runs here, so its pieces are tested against what is known of it.

- ``$9$`` secrets against vectors published by others (netconan's tests, a netmeld example);
- circular remediation: for each case the commands, applied as Junos applies ``set`` and
  ``delete`` in order, give the intended config, and the way back gives the running one, never
  touching a statement bgpgen does not own;
- the push protocol over real SSH against a stand-in Junos CLI (tests/fake_cli.py): the exact
  command sequence, a line the CLI refuses, a config ``commit check`` rejects, a database locked
  by another user, a commit confirmed that ran out before the confirm, a failed gate rolled back,
  a connection lost after the commit;
- the state parsers on recorded output (tests/recorded/junos/README.md names the sources).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgpgen import load_fabric, render
from bgpgen.changes import DevicePlan
from bgpgen.netos import CliTransport
from bgpgen.platforms import junos
from bgpgen.platforms.base import DeployFailed
from bgpgen.targets import Target

from .conftest import EXAMPLES, SECRET, Run
from .fake_cli import (Junos, apply_set, cli_push, deploy_over, failed_gate, flat, lost_after,
                       serving)

RECORDED = Path(__file__).parent / "recorded" / "junos"
INV = EXAMPLES["multi-vendor"]
TOR = "tor-junos"
OWN = """set system host-name tor-junos
set routing-options router-id 198.18.0.35
set routing-options autonomous-system 65305
set policy-options prefix-list SITE 198.18.0.0/15
set protocols bgp group UPLINK type external
set protocols bgp group UPLINK neighbor 198.18.254.1 peer-as 65000
"""
THEIRS = [ln for ln in OWN.splitlines() if ln]


# --- $9$ ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("clear", "text"), [
    # intentionet/netconan's tests of its Junos secret encryption (salt and padding "a")
    ("abc", "$9$aaZGiq.5F39"),
    ("123", "$9$aaZikmfT3/C"),
    ("netconan", "$9$aaGi.Qz6t0IDi/t0IrlKM8xds"),
])
def test_junos9_matches_published_vectors(clear: str, text: str) -> None:
    assert junos.encrypt9(clear, "a", "a") == text
    assert junos.decrypt9(text) == clear


def test_junos9_decrypts_another_salt() -> None:
    # netmeld's junos-type9-decode example; other salts and paddings decrypt the same way
    assert junos.decrypt9("$9$2GgZjHkPQ39.PhrvLVb.P5Tz6") == "password"
    assert junos.decrypt9(junos.encrypt9("Zq7-not-in-output", "Q", "zF3")) == "Zq7-not-in-output"
    assert junos.decrypt9("$9$") is None and junos.decrypt9("plain") is None


def test_an_unchanged_key_is_no_change_and_never_shown() -> None:
    line = 'set protocols bgp group K8S-NODES-V4 authentication-key "{}"'
    rendered = line.format("Zq7") + "\n"
    running = line.format(junos.encrypt9("Zq7", "Q", "zF3")) + "\n"
    assert junos.normalised(running, rendered) == rendered
    rotated = line.format(junos.encrypt9("old", "Q", "zF3")) + "\n"
    assert junos.normalised(rotated, rendered) == rotated
    assert junos.masked(rotated, {"tor-md5": "Zq7"}) == \
        'set protocols bgp group K8S-NODES-V4 authentication-key "<secret:changed>"\n'
    assert junos.masked(running, {"tor-md5": "Zq7"}) == \
        'set protocols bgp group K8S-NODES-V4 authentication-key "<secret:tor-md5>"\n'


# --- circular remediation ----------------------------------------------------------------------

G = "set protocols bgp group K8S-NODES-V4"
BASE = [*THEIRS, f"{G} type external", f'{G} description "bgpgen peer group"',
        f"{G} hold-time 9", f"{G} export BGPGEN-NODES-OUT",
        "set policy-options policy-statement BGPGEN-NODES-OUT then reject"]
N1 = [f"{G} neighbor 198.18.35.11 peer-as 65039",
      f"{G} neighbor 198.18.35.11 import BGPGEN-node-junos-1-IN-V4",
      "set policy-options prefix-list BGPGEN-node-junos-1-V4 10.244.71.0/24",
      "set policy-options policy-statement BGPGEN-node-junos-1-IN-V4 term own from "
      "prefix-list-filter BGPGEN-node-junos-1-V4 exact",
      "set policy-options policy-statement BGPGEN-node-junos-1-IN-V4 term own then accept",
      "set policy-options policy-statement BGPGEN-node-junos-1-IN-V4 then reject"]
N2 = [f"{G} neighbor 198.18.35.12 peer-as 65040",
      f"{G} neighbor 198.18.35.12 description node-junos-2",
      "set policy-options prefix-list BGPGEN-node-junos-2-V4 10.244.72.0/24"]


def _swap(lines: list[str], old: str, new: str) -> list[str]:
    return [ln.replace(old, new) for ln in lines]


CASES: dict[str, tuple[list[str], list[str]]] = {
    "first push": (THEIRS, BASE + N1),
    "nothing to do": (BASE + N1, BASE + N1),
    "a node added": (BASE + N1, BASE + N1 + N2),
    "a node removed": (BASE + N1 + N2, BASE + N1),
    "a pod CIDR moved": (BASE + N1, _swap(BASE + N1, "10.244.71.0/24", "10.244.171.0/24")),
    "hold time changed": (BASE + N1, _swap(BASE + N1, "hold-time 9", "hold-time 12")),
    "a key set": (BASE + N1, BASE + N1 + [f'{G} authentication-key "Zq7"']),
    "a key rotated": (BASE + N1 + [f'{G} authentication-key "old"'],
                      BASE + N1 + [f'{G} authentication-key "new"']),
    "a prefix limit": (BASE + N1, BASE + N1 + [
        f"{G} family inet unicast accepted-prefix-limit maximum 100"]),
    "BFD on": (BASE + N1, BASE + N1 + [f"{G} bfd-liveness-detection minimum-interval 300"]),
    "a passive node": (BASE + N1, BASE + N1 + [f"{G} neighbor 198.18.35.11 passive"]),
    "every node gone": (BASE + N1 + N2, THEIRS),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_remediation_is_circular(case: str) -> None:
    running, intended = CASES[case]
    run, want = "\n".join(running) + "\n", "\n".join(intended) + "\n"
    forward = junos.remediation(run, want)
    back = junos.remediation(want, run)
    assert sorted(apply_set(running, forward)) == sorted(intended)
    assert sorted(apply_set(intended, back)) == sorted(running)
    assert (forward == []) == (case == "nothing to do")
    for c in forward + back:  # never a statement of the switch's own
        assert "UPLINK" not in c and "SITE" not in c and "routing-options" not in c, c
    if case == "a node removed":  # the whole neighbor goes, not its statements one by one
        assert f"delete {G.removeprefix('set ')} neighbor 198.18.35.12" in forward


def test_a_switch_on_another_asn_is_refused() -> None:
    build = render(load_fabric(INV))
    rendered = next(a.text for a in build.artifacts if a.device == TOR)
    with pytest.raises(DeployFailed, match="autonomous-system 65999, the inventory says 65305"):
        junos.part_target(TOR, OWN.replace("65305", "65999"), rendered)


# --- the push, over SSH ------------------------------------------------------------------------

def _recorded() -> dict[str, str]:
    return {junos.SUMMARY: (RECORDED / "show_bgp_summary.txt").read_text(),
            junos.ROUTES: (RECORDED / "show_route_display_json.json").read_text()}


@pytest.fixture
def switch(tmp_path: Path, secret_env: str) -> Iterator[tuple[Junos, Path]]:
    dev = Junos(TOR, OWN, _recorded())
    with serving(dev, tmp_path) as (_, cfg):
        yield dev, cfg


def _changes(log: list[str]) -> list[str]:
    return [c for c in log if not c.startswith(("set cli ", "show ", "exit"))
            or c == "exit configuration-mode"]


def test_push_sends_the_commit_protocol(switch: tuple[Junos, Path],
                                        cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 0, r.out + r.err
    assert SECRET not in r.out + r.err
    sent = _changes(dev.log)
    assert sent[0] == "configure exclusive"
    check = sent.index("commit check")
    assert sent[check + 1:] == [f'commit confirmed 10 comment "bgpgen {TOR}"',
                                "exit configuration-mode", "configure exclusive",
                                'commit comment "bgpgen confirm"', "exit configuration-mode"]
    body = sent[1:check]
    assert all(c.startswith(("set ", "delete ")) for c in body) and len(body) > 20
    # between the commit and the confirm: the config read back, the sessions checked
    after = dev.log[dev.log.index(f'commit confirmed 10 comment "bgpgen {TOR}"') + 2:]
    assert after[:2] == ["show configuration | display set", "show bgp summary"]
    running = dev.running.splitlines()
    assert set(THEIRS) <= set(running)
    assert f"{G} neighbor 198.18.35.11 peer-as 65039" in running
    assert not dev.pending and len(dev.history) == 1  # one commit, confirmed
    # Junos shows the key back as $9$: the next plan is empty, the key never shown
    dev.running = dev.running.replace(f'"{SECRET}"', '"' + junos.encrypt9(SECRET, "Q", "zF3")
                                      + '"')
    dev.log.clear()
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 0 and "No changes" in r.out, r.out
    assert _changes(dev.log) == []


def test_a_refused_line_throws_the_candidate_away(switch: tuple[Junos, Path],
                                                  cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    dev.refuse = r"accepted-prefix-limit"
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 1 and "syntax error" in flat(r) and "nothing changed" in flat(r), r.out
    assert _changes(dev.log)[-2:] == ["rollback 0", "exit configuration-mode"]
    assert dev.running == OWN and not dev.history


def test_commit_check_rejects_and_nothing_changes(switch: tuple[Junos, Path],
                                                  cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    dev.refuse_commit = r"multipath multiple-as"
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 1 and "refused 'commit check': error: set protocols bgp group" in flat(r)
    assert "nothing changed" in flat(r), r.out
    assert not [c for c in dev.log if c.startswith("commit confirmed")]
    assert dev.running == OWN and not dev.history


def test_a_database_locked_by_another_user(switch: tuple[Junos, Path],
                                           cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    dev.locked_by = "netops"
    r = deploy_over(cli, INV, cfg, TOR)
    assert r.code == 1 and "locked by" in flat(r) and "another user" in flat(r), r.out
    assert dev.running == OWN


def _push_deferred(dev: Junos, cfg: Path) -> tuple[CliTransport, DevicePlan]:
    t, p = cli_push(junos.SPEC, INV, TOR, cfg)
    assert dev.pending
    return t, p


def test_a_commit_confirmed_that_ran_out(switch: tuple[Junos, Path]) -> None:
    dev, cfg = switch
    t, p = _push_deferred(dev, cfg)
    dev.expire()  # the gate took longer than the commit's minutes: Junos rolled it back
    assert dev.running == OWN
    with pytest.raises(DeployFailed, match="the confirm came too late: Junos rolled the commit "
                       "back"):
        junos.SPEC.driver.confirm(t, p)
    assert dev.running == OWN and not dev.pending
    assert not [c for c in dev.log if c == 'commit comment "bgpgen confirm"']


def test_a_failed_gate_rolls_back(switch: tuple[Junos, Path]) -> None:
    dev, cfg = switch
    t, p = _push_deferred(dev, cfg)
    junos.SPEC.driver.rollback(t, p, 5.0)
    assert dev.running == OWN and not dev.pending
    assert _changes(dev.log)[-4:] == ["configure exclusive", "rollback 1",
                                      'commit comment "bgpgen rollback"',
                                      "exit configuration-mode"]


def test_a_connection_lost_after_the_commit(switch: tuple[Junos, Path],
                                            cli: Callable[..., Run]) -> None:
    dev, cfg = switch
    lost_after(cli, INV, cfg, dev, r"^commit confirmed")
    assert dev.running == OWN and not dev.pending


def test_a_failed_gate_through_deploy(switch: tuple[Junos, Path],
                                      cli: Callable[..., Run]) -> None:
    """``deploy --verify``: the push goes in unconfirmed, the fabric's verify fails (the nodes
    are not there), and the switch is rolled back to exactly what it ran."""
    dev, cfg = switch
    failed_gate(cli, INV, cfg, dev)
    assert dev.running == OWN
    assert "rollback 1" in dev.log and not dev.pending

# --- state -------------------------------------------------------------------------------------

def test_state_from_recorded_output() -> None:
    rec = _recorded()
    t = Target(TOR, junos.SPEC.platform, None, (), False, "", "", "", 0)  # type: ignore[arg-type]
    view = junos.parse_state(t, rec[junos.SUMMARY] + "\n" + rec[junos.ROUTES], 0.0)
    assert len(view.peers) == 5  # 203.0.113.0 is listed twice, once per table
    assert {p.state for p in view.peers.values()} == {"Established"}
    assert (view.peers["192.0.2.254"].received, view.peers["192.0.2.254"].accepted) == (224, 224)
    assert [(r.prefix, r.next_hop, r.selected) for r in view.rib] == [
        ("172.16.0.0/30", "", True), ("172.16.0.1/32", "", True),
        ("192.168.1.1/32", "", True), ("192.168.1.2/32", "172.16.0.2", True)]
    assert junos.parse_sessions(rec[junos.SUMMARY])["198.51.100.200"] == "Established"
