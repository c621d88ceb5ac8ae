"""Nodes whose BGP speaker bgpgen does not configure (``speaker: external``): the switch side is
rendered, deployed and verified as for any node; the node runs a program of its own, started by
hand. Here: gobgpd with a config written by this test (not bgpgen's render), in the lab's node
namespaces, started with ``bgpgen lab exec`` as the README says."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgpgen import lab, load_fabric
from bgpgen.model import Fabric, Node

from .conftest import EXAMPLES, SECRET, Run, require_lab_environment
from .lab_helpers import wait_for

RACK = "r2"


@pytest.fixture(autouse=True)
def _needs_root_and_daemons() -> None:
    require_lab_environment("external speaker tests")


def external_inventory(tmp_path: Path) -> Path:
    """dc1 with rack r2's node groups on ``speaker: external``."""
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    text = (inv / "nodes.yaml").read_text()
    for group in ("r2-gobgp", "r2-bird"):
        old = next(ln for ln in text.splitlines() if f"name: {group}," in ln)
        new = old.replace("speaker: gobgp", "speaker: external").replace(
            "speaker: bird", "speaker: external")
        text = text.replace(old, new)
    (inv / "nodes.yaml").write_text(text)
    return inv


def hand_written_gobgpd(fabric: Fabric, node: Node) -> str:
    """What a person would write for gobgpd on this node: one neighbor per switch address."""
    lines = ["[global.config]", f"  as = {node.asn}", f'  router-id = "{node.router_id}"', ""]
    for s in fabric.sessions_of(node.name):
        afi = "ipv4-unicast" if s.family == "ipv4" else "ipv6-unicast"
        lines += ["[[neighbors]]", "  [neighbors.config]",
                  f'    neighbor-address = "{s.switch_address}"', f"    peer-as = {s.switch_asn}",
                  f'    auth-password = "{SECRET}"',
                  "  [neighbors.transport.config]", f'    local-address = "{s.node_address}"',
                  "  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]",
                  f'      afi-safi-name = "{afi}"', ""]
    return "\n".join(lines)


def _exec(cli: Callable[..., Run], name: str, node: str, *argv: str) -> None:
    r = subprocess.run([sys.executable, "-m", "bgpgen.cli", "lab", "exec", "--name", name, node,
                        "--", *argv], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (argv, r.stdout, r.stderr)


@pytest.fixture
def external_lab(lab_name: str, secret_env: str, tmp_path: Path,
                 cli: Callable[..., Run]) -> Iterator[tuple[str, Fabric, Path]]:
    inv = external_inventory(tmp_path)
    fabric = load_fabric(inv)
    nodes = [n for n in fabric.nodes if n.rack == RACK]
    r = cli("lab", "up", "--name", lab_name, "-i", str(inv), "--render")
    speakers = []
    try:
        assert r.code == 0, r.err
        for n in nodes:  # lab up says how to run one's own speaker in each external node
            assert f"{n.name}: external speaker, no daemon started" in r.out
        for n in nodes:
            conf = lab.device_path(lab_name, n.name, "/etc/my-speaker/gobgpd.toml")
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(hand_written_gobgpd(fabric, n))
            speakers.append(subprocess.Popen(
                [sys.executable, "-m", "bgpgen.cli", "lab", "exec", "--name", lab_name, n.name,
                 "--", "gobgpd", "-f", "/etc/my-speaker/gobgpd.toml", "-l", "warn"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for n in nodes:
            wait_for(lambda n=n: subprocess.run(  # type: ignore[misc]
                [sys.executable, "-m", "bgpgen.cli", "lab", "exec", "--name", lab_name, n.name,
                 "--", "gobgp", "global"], capture_output=True).returncode == 0, 20,
                f"gobgpd answering on {n.name}")
            for fam in ("ipv4", "ipv6"):
                for prefix in n.prefixes(fam):
                    _exec(cli, lab_name, n.name, "gobgp", "global", "rib", "add", "-a", fam,
                          str(prefix))
        yield lab_name, fabric, inv
    finally:
        for p in speakers:
            p.terminate()
        lab.down(lab_name)
        for p in speakers:
            p.wait(timeout=10)


def _verify(cli: Callable[..., Run], name: str, *extra: str) -> tuple[int, dict[str, object]]:
    r = cli("verify", "--lab", name, "--format", "json", *extra)
    assert r.out, r.err
    return r.code, json.loads(r.out)


def test_external_speakers_are_verified_from_their_switches(
        external_lab: tuple[str, Fabric, Path], cli: Callable[..., Run]) -> None:
    name, fabric, _ = external_lab
    code, report = _verify(cli, name, "--wait", "60")
    assert code == 0, report["problems"]
    assert "judged from their switches" in str(report["summary"])
    rows = [r for r in report["sessions"] if r["node"].startswith("node-r2")]  # type: ignore
    assert rows and all(r["node_state"] == "external" and r["switch_state"] == "Established"
                        for r in rows)
    # every prefix of every external node arrived on both of its switches
    assert all(r["received"] == r["expected"] > 0 for r in rows)
    r = cli("verify", "--lab", name)
    assert "judged from their switches" in r.out and r.code == 0


def _exactly(cli: Callable[..., Run], name: str, kind: str, *words: str) -> None:
    """verify fails with one finding of ``kind`` on each switch of the rack, naming ``words``."""
    code, report = _verify(cli, name, "--wait", "10")
    findings: list[dict[str, str]] = report["findings"]  # type: ignore[assignment]
    assert code == 3
    assert {(f["kind"], f["device"]) for f in findings} == {(kind, "tor-r2-a"),
                                                            (kind, "tor-r2-b")}, findings
    assert all(w in f["message"] for f in findings for w in words), findings


def test_a_withdrawn_and_a_foreign_prefix_are_exactly_the_findings(
        external_lab: tuple[str, Fabric, Path], cli: Callable[..., Run]) -> None:
    name, fabric, _ = external_lab
    assert _verify(cli, name, "--wait", "60")[0] == 0
    node = fabric.device("node-r2-02")
    assert isinstance(node, Node)
    gone = str(node.prefixes("ipv4")[0])
    _exec(cli, name, node.name, "gobgp", "global", "rib", "del", "-a", "ipv4", gone)
    _exactly(cli, name, "missing", gone, node.name)
    _exec(cli, name, node.name, "gobgp", "global", "rib", "add", "-a", "ipv4", gone)
    foreign = "10.99.0.0/24"  # the switches' policy drops it: seen in what they received
    _exec(cli, name, node.name, "gobgp", "global", "rib", "add", "-a", "ipv4", foreign)
    _exactly(cli, name, "unexpected", foreign, node.name, "dropped by")


def test_the_local_route_server_walkthrough_runs_as_written() -> None:
    """inventory/examples/local-rs-external/README.md's walk-through, run verbatim: a gobgpd
    started by hand with a hand-written config is the node; verify passes; the gobgp CLI reads
    the route back from the route server."""
    from .conftest import ROOT
    text = (ROOT / "inventory/examples/local-rs-external/README.md").read_text()
    block = text.split("<!-- walkthrough -->\n```sh\n", 1)[1].split("```\n<!-- /walkthrough -->")[0]
    try:
        r = subprocess.run(["bash", "-e", "-c", block], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    finally:
        lab.down("rsx")
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "judged from their switches" in r.stdout  # verify's summary, exit 0
    adj_in = [ln for ln in r.stdout.splitlines() if "10.20.30.0/24" in ln]
    assert adj_in and "30.30.30.30" in adj_in[-1], r.stdout
