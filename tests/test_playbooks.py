"""Playbooks: bad ones are refused with one-line errors; rollouts run on a lab in order, stop at
a failed gate with that batch restored, and --check changes nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bgpgen import lab, load_fabric
from bgpgen.lab import run_on

from .conftest import EXAMPLES, ROOT, SECRET, Run, require_lab_environment, unique_lab_name
from .lab_helpers import wait_for

PLAYBOOKS = ROOT / "playbooks"

BAD = {
    "unknown-step": ("plays:\n  - name: x\n    select: {roles: [node]}\n    steps: [deploy, "
                     "reboot]\n", ["plays[0].steps[1]", "a step is one of"]),
    "bad-selector-key": ("plays:\n  - name: x\n    select: {colour: red}\n    steps: [deploy]\n",
                         ["plays[0].select.colour", "'colour' was unexpected"]),
    "unknown-rack": ("plays:\n  - name: x\n    select: {racks: [r9]}\n    steps: [deploy]\n",
                     ["plays[0].select.racks[0]", "rack 'r9' is not in the inventory"]),
    "serial-zero": ("plays:\n  - name: x\n    select: {roles: [node]}\n    serial: 0\n"
                    "    steps: [deploy]\n", ["plays[0].serial", "a count (>= 1)"]),
    "percentage-over-100": ("plays:\n  - name: x\n    select: {roles: [node]}\n"
                            "    serial: 150%\n    steps: [deploy]\n",
                            ["plays[0].serial", "150% is not a percentage from 1% to 100%"]),
    "switch-pair-of-nodes": ("plays:\n  - name: x\n    select: {roles: [node]}\n"
                             "    serial: {per: switch-pair}\n    steps: [deploy]\n",
                             ["plays[0].serial", "per: switch-pair batches switches"]),
    "drain-a-node": ("plays:\n  - name: x\n    select: {roles: [node]}\n    steps: [drain]\n",
                     ["plays[0].steps[0]", "cannot drain"]),
    "not-a-mapping": ("- just\n- a list\n", ["a playbook is a mapping"]),
    "yaml-syntax": ("plays: [\n", ["YAML syntax error"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_playbooks(case: str, tmp_path: Path, cli: Callable[..., Run],
                       secret_env: str) -> None:
    text, expect = BAD[case]
    pb = tmp_path / f"{case}.yaml"
    pb.write_text(text)
    r = cli("run", str(pb), "--lab", "no-such-lab")
    assert r.code == 1 and "Traceback" not in r.err
    lines = r.err.splitlines()
    assert lines and all(ln.startswith(f"error: {pb}") for ln in lines), r.err
    assert any(all(e in ln for e in expect) for ln in lines), r.err


def test_missing_playbook(cli: Callable[..., Run], tmp_path: Path) -> None:
    r = cli("run", str(tmp_path / "nope.yaml"))
    assert r.code == 1 and "playbook file does not exist" in r.err


def test_shipped_playbooks_batch_as_documented() -> None:
    from bgpgen import playbook
    from bgpgen.run import prepare
    fabric = load_fabric(EXAMPLES["dc1"])
    plan = prepare(playbook.load(PLAYBOOKS / "rollout.yaml"), fabric, interactive=False)
    assert [[[d.name for d in b] for b in cut] for _, cut in plan] == [
        [["tor-r1-a", "tor-r2-a"], ["tor-r1-b", "tor-r2-b"]],
        [[f"node-r1-0{i}" for i in range(1, 5)], [f"node-r2-0{i}" for i in range(1, 5)]]]
    plan = prepare(playbook.load(PLAYBOOKS / "canary.yaml"), fabric, interactive=False)
    assert [[len(b) for b in cut] for _, cut in plan] == [[2, 2], [1], [4, 3]]


@pytest.fixture
def rendered_lab(request: pytest.FixtureRequest, secret_env: str) -> Iterator[str]:
    require_lab_environment("playbook runs")
    name = unique_lab_name("p", request)
    lab.up(load_fabric(EXAMPLES["dc1"]), name, render_configs=True)
    yield name
    lab.down(name)


def _inventory(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    nodes = inv / "nodes.yaml"
    text = nodes.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    nodes.write_text(text)
    return inv


BOTH_RACKS = (("[10.244.3.0/24,", "[10.244.33.0/24,"),
              ("pod_cidrs: [10.244.23.0/24]", "pod_cidrs: [10.244.123.0/24]"))


def _mtimes(name: str) -> dict[str, float]:
    """Each device's config file's mtime, at its real path on the device."""
    out = {}
    for device, e in lab.overlay(name)["devices"].items():
        path = {"gobgp": "/etc/gobgpd.conf", "bird": "/etc/bird/bird.conf",
                "frr": "/etc/frr/frr.conf"}[e["platform"]]
        out[device] = lab.device_path(name, device, path).stat().st_mtime
    return out


def _run(cli: Callable[..., Run], *args: str) -> tuple[int, dict[str, Any]]:
    r = cli("run", *args, "--format", "json")
    assert SECRET not in r.out + r.err and "Traceback" not in r.err, r.err
    return r.code, json.loads(r.out)


def test_rollout_runs_batches_in_order(rendered_lab: str, cli: Callable[..., Run],
                                       tmp_path: Path) -> None:
    name = rendered_lab
    inv = _inventory(tmp_path, *BOTH_RACKS)
    wait_for(lambda: cli("verify", "--lab", name).code == 0, 30, "the lab converged")
    before = _mtimes(name)
    code, out = _run(cli, str(PLAYBOOKS / "rollout.yaml"), "-i", str(inv), "--lab", name)
    assert code == 0 and out["ok"], out["batches"][0]["failed"]
    batches = out["batches"]
    assert [(b["play"], b["batch"]) for b in batches] == [
        ("switches", 1), ("switches", 2), ("nodes", 1), ("nodes", 2)]
    assert all(b["status"] == "ok" for b in batches)
    for a, b in zip(batches, batches[1:]):
        assert a["finished"] <= b["started"]
    # From the devices themselves: each changed config was written during its own batch.
    after = _mtimes(name)
    changed = {d for d in after if after[d] != before[d]}
    assert changed == {"tor-r1-a", "tor-r1-b", "tor-r2-a", "tor-r2-b", "node-r1-03",
                       "node-r2-03"}
    for b in batches:
        for d in set(b["devices"]) & changed:
            assert b["started"] - 1 <= after[d] <= b["finished"] + 1, (d, b)
    r = cli("verify", "-i", str(inv), "--lab", name)
    assert r.code == 0, r.out


def test_failed_gate_restores_the_batch_and_stops(rendered_lab: str, cli: Callable[..., Run],
                                                  tmp_path: Path) -> None:
    name = rendered_lab
    inv = _inventory(tmp_path, *BOTH_RACKS, ("[10.244.21.0/24,", "[10.244.121.0/24,"))
    tpl = tmp_path / "t" / "gobgp"
    tpl.mkdir(parents=True)
    text = (ROOT / "templates" / "gobgp" / "gobgpd.toml.j2").read_text()
    old = "  port = {{ device.bgp_port }}\n"
    (tpl / "gobgpd.toml.j2").write_text(text.replace(
        old, old + "{% if device.name == 'node-r2-03' %}\n  bogus = 1\n{% endif %}\n"))
    wait_for(lambda: cli("verify", "--lab", name).code == 0, 30, "the lab converged")
    r201 = lab.device_path(name, "node-r2-01", "/etc/gobgpd.conf")
    previous = r201.read_text()
    code, out = _run(cli, str(PLAYBOOKS / "rollout.yaml"), "-i", str(inv), "--lab", name,
                     "--templates", str(tpl.parent))
    assert code == 1 and not out["ok"]
    status = [(b["play"], b["batch"], b["status"]) for b in out["batches"]]
    assert status == [("switches", 1, "ok"), ("switches", 2, "ok"), ("nodes", 1, "ok"),
                      ("nodes", 2, "failed")]
    failed = out["batches"][3]["failed"]
    assert any(f["device"] == "node-r2-03" and f["gate"] == "deploy" and
               "gobgpd -d rejects" in f["message"] for f in failed), failed
    results = {x["device"]: x["status"] for x in out["batches"][3]["results"]}
    assert results["node-r2-01"] == "rolled_back"
    assert r201.read_text() == previous  # the batch is back on its previous config
    node13 = lab.device_path(name, "node-r1-03", "/etc/gobgpd.conf")
    assert "10.244.33.0/24" in node13.read_text()  # an earlier batch keeps its new config


def test_check_changes_nothing(rendered_lab: str, cli: Callable[..., Run],
                               tmp_path: Path) -> None:
    name = rendered_lab
    inv = _inventory(tmp_path, *BOTH_RACKS)
    before = (_mtimes(name), lab.status(name)["devices"])
    r = cli("run", str(PLAYBOOKS / "canary.yaml"), "-i", str(inv), "--lab", name, "--check")
    assert r.code == 0 and "(check)" in r.out and "~ node-r1-03 (gobgp)" in r.out
    after = (_mtimes(name), lab.status(name)["devices"])
    assert after[0] == before[0]
    pids = {d: [p["pid"] for p in v["processes"]] for d, v in before[1].items()}
    assert {d: [p["pid"] for p in v["processes"]] for d, v in after[1].items()} == pids


def test_a_play_that_starts_with_drain(rendered_lab: str, cli: Callable[..., Run],
                                       tmp_path: Path) -> None:
    """drain / undrain as a play's first step: graceful shutdown on the switch's router bgp,
    sessions and routes still verified, and off again."""
    name = rendered_lab
    entry = lab.overlay(name)["devices"]["tor-r1-a"]

    def running() -> str:
        return run_on(entry, ["vtysh", "-c", "show running-config"]).stdout
    wait_for(lambda: cli("verify", "--lab", name).code == 0, 30, "the lab converged")
    assert "bgp graceful-shutdown" not in running()
    for step, present in (("drain", True), ("undrain", False)):
        pb = tmp_path / f"{step}.yaml"
        pb.write_text(f"name: {step}\nplays:\n  - name: {step} tor-r1-a\n"
                      f"    select: {{names: [tor-r1-a]}}\n"
                      f"    steps: [{step}, {{verify: {{wait: 30}}}}]\n")
        code, out = _run(cli, str(pb), "--lab", name)
        assert code == 0 and out["ok"], out["batches"][0]["failed"]
        assert out["batches"][0]["steps"] == [step, "verify"]
        assert ("bgp graceful-shutdown" in running()) is present, step


def test_pattern_selectors_and_limit_narrow_plays(tmp_path: Path) -> None:
    """select: {pattern: ...} takes --limit's syntax; --limit narrows every play and a play it
    leaves empty is skipped."""
    from bgpgen import playbook
    from bgpgen.run import prepare
    pb_file = tmp_path / "p.yaml"
    pb_file.write_text("name: p\nplays:\n"
                       "  - name: tors\n    select: {pattern: 'tor*,!rack:r2'}\n"
                       "    serial: 1\n    steps: [deploy]\n"
                       "  - name: bird nodes of r1\n    select: {pattern: 'group:r1-bird'}\n"
                       "    steps: [deploy]\n")
    fabric = load_fabric(EXAMPLES["dc1"])
    plays = prepare(playbook.load(pb_file), fabric, True)
    assert [[[d.name for d in b] for b in cut] for _, cut in plays] == [
        [["tor-r1-a"], ["tor-r1-b"]], [["node-r1-02"], ["node-r1-04"]]]
    plays = prepare(playbook.load(pb_file), fabric, True, limit={"node-r1-04", "tor-r2-a"})
    assert [(p.name, [[d.name for d in b] for b in cut]) for p, cut in plays] == [
        ("bird nodes of r1", [["node-r1-04"]])]
    bad = tmp_path / "bad.yaml"
    bad.write_text("plays:\n  - name: x\n    select: {pattern: 'rack:r9'}\n    steps: [deploy]\n")
    with pytest.raises(playbook.PlaybookError, match="rack 'r9' is not in the inventory"):
        prepare(playbook.load(bad), fabric, True)


def test_rollout_green_field(request: pytest.FixtureRequest, cli: Callable[..., Run],
                             secret_env: str) -> None:
    """The shipped rollout on a fabric that was never deployed: the switch batches' gates do
    not demand sessions to nodes that are not deployed yet (pending), the node batches' gates
    judge everything of theirs, and the fabric verifies at the end."""
    require_lab_environment("playbook runs")
    name = unique_lab_name("g", request)
    lab.up(load_fabric(EXAMPLES["dc1"]), name)  # bootstrap configs: no sessions anywhere
    try:
        code, out = _run(cli, str(PLAYBOOKS / "rollout.yaml"), "--lab", name, "--yes")
        assert code == 0 and out["ok"], [(b["play"], b["batch"], b["status"], b["failed"])
                                         for b in out["batches"]]
        assert [b["status"] for b in out["batches"]] == ["ok"] * 4
        r = cli("verify", "--lab", name, "--wait", "30")
        assert r.code == 0, r.out
    finally:
        lab.down(name)


def test_a_batch_that_breaks_healthy_sessions_is_rolled_back(rendered_lab: str,
                                                             cli: Callable[..., Run],
                                                             tmp_path: Path) -> None:
    """A switch batch whose push takes the sessions to its nodes down (nodes are a later,
    'pending' batch, but those sessions were up before): the batch fails, is rolled back,
    and the sessions come back on the switch's previous config."""
    name = rendered_lab
    wait_for(lambda: cli("verify", "--lab", name).code == 0, 30, "the lab converged")
    tpl = tmp_path / "t" / "frr"
    tpl.mkdir(parents=True)
    text = (ROOT / "templates" / "frr" / "frr.conf.j2").read_text()
    old = " neighbor {{ s.node_address }} remote-as {{ s.node_asn }}"
    assert old in text
    (tpl / "frr.conf.j2").write_text(text.replace(old, old.replace(
        "{{ s.node_asn }}", "{{ s.node_asn + (1000 if device.name == 'tor-r1-a' else 0) }}")))
    pb = tmp_path / "p.yaml"
    pb.write_text("name: p\nplays:\n  - name: one switch\n    select: {names: [tor-r1-a]}\n"
                  "    steps: [{deploy: {timeout: 8}}, {verify: {wait: 15}}]\n"
                  "  - name: nodes\n    select: {roles: [node]}\n    steps: [deploy]\n")
    code, out = _run(cli, str(pb), "--lab", name, "--templates", str(tpl.parent))
    statuses = [b["status"] for b in out["batches"]]
    assert code == 1 and statuses[0] == "failed" and set(statuses[1:]) == {"not run"}, out
    assert any(f["device"] == "tor-r1-a" for f in out["batches"][0]["failed"])
    entry = lab.overlay(name)["devices"]["tor-r1-a"]
    running = run_on(entry, ["vtysh", "-c", "show running-config"]).stdout
    assert "remote-as 65011" in running and "remote-as 66011" not in running
    wait_for(lambda: all(s == "Established" for s in lab.read_sessions(entry).values()), 30,
             "tor-r1-a's sessions back up")
