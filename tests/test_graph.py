"""The fabric picture: goldens of the offline picture of every example (its Graphviz source and
Graphviz's SVG), byte-identical runs, large racks summarised, and a lab with one injected fault
opened in headless Chromium: exactly the faulty session is drawn in the fault colour with its
finding, read from the page's DOM; the screenshot is kept as a test artifact
(``$BGPGEN_ARTIFACTS/fabric-fault.png``, default /tmp/bgpgen-artifacts)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bgpgen import graph, lab, load_fabric
from bgpgen.changes import Cost
from bgpgen.graph import COLOUR, EdgeState

from .conftest import EXAMPLES, Run, require, require_lab_environment
from .lab_helpers import run_on, wait_for

GOLDEN = Path(__file__).parent / "golden" / "graph"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_offline_picture_golden(name: str, update_golden: bool) -> None:
    require("dot")
    fabric = load_fabric(EXAMPLES[name])
    drawn = graph.edges(fabric)
    assert {e.state for e in drawn} == {EdgeState.INTENDED}
    assert len(drawn) == len(fabric.sessions)
    files = {f"{name}.dot": graph.dot(fabric, drawn), f"{name}.svg": ""}
    files[f"{name}.svg"] = graph.svg(files[f"{name}.dot"])
    if update_golden:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            (GOLDEN / rel).write_text(text)
    for rel, text in files.items():
        assert text == (GOLDEN / rel).read_text(), f"{rel} differs from its golden file"
    for e in drawn:  # every session is an element of the SVG, by id (Graphviz writes - as &#45;)
        assert f'id="{e.element_id.replace("-", "&#45;")}"' in files[f"{name}.svg"]


def test_the_page_is_the_same_bytes_twice_and_self_contained() -> None:
    require("dot")
    fabric = load_fabric(EXAMPLES["dc1"])
    a = graph.html(fabric, graph.edges(fabric), "offline")
    b = graph.html(fabric, graph.edges(fabric), "offline")
    assert a == b
    assert "http://" not in a.replace("http://www.w3.org", "") and "https://" not in a
    assert "<script src" not in a and "<link" not in a


def test_large_racks_are_summarised_and_expandable() -> None:
    require("dot")
    fabric = load_fabric(EXAMPLES["dc1"])
    drawn = graph.edges(fabric)
    small = graph.dot(fabric, drawn, collapse=2)  # dc1's racks have 4 nodes each
    assert '"nodes:r1" [label="4 nodes"' in small and "node-r1-01" not in small
    assert 'id="summary-tor-r1-a-r1"' in small and 'label="8"' in small  # 4 nodes x 2 families
    page = graph.html(fabric, drawn, "offline", collapse=2)
    assert 'id="toggle"' in page and page.count("<svg") == 2  # summary, and expanded


def _chromium(argv: list[str], page: Path) -> str:
    """Headless Chromium in a network namespace of its own (loopback only: it reaches nothing)."""
    binary = shutil.which("chromium")
    assert binary, "chromium is part of the test environment (scripts/setup installs it)"
    res = subprocess.run(["unshare", "-n", binary, "--headless", "--no-sandbox", "--disable-gpu",
                          "--no-first-run", "--user-data-dir=" + str(page.parent / "profile"),
                          *argv, page.as_uri()], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-800:]
    return res.stdout


class _Edges(HTMLParser):
    """The session edges of a DOM: id -> (class, the tooltip of its link)."""

    def __init__(self) -> None:
        super().__init__()
        self.edges: dict[str, tuple[str, str, str]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "g" and "session" in a.get("class", "").split():
            self._current = a.get("id", "")
            self.edges[self._current] = (a["class"], "", "")
        elif tag == "a" and self._current and a.get("xlink:title"):
            cls, _, stroke = self.edges[self._current]
            self.edges[self._current] = (cls, a["xlink:title"], stroke)
        elif tag == "path" and self._current:
            cls, title, _ = self.edges[self._current]
            self.edges[self._current] = (cls, title, a.get("stroke", ""))
            self._current = None


def test_a_fault_is_drawn_in_its_colour(lab_name: str, cli: Callable[..., Run],
                                        tmp_path: Path, secret_env: str) -> None:
    require_lab_environment("the fabric picture's lab test")
    require("dot")
    fabric = load_fabric(EXAMPLES["dc1"])
    lab.up(fabric, lab_name, render_configs=True)
    assert cli("verify", "--lab", lab_name, "--wait", "60").code == 0
    # one fault: node-r1-02 (BIRD) stops its IPv4 session to tor-r1-a
    run_on(lab.overlay(lab_name)["devices"]["node-r1-02"], ["birdc", "disable", "tor_r1_a_ipv4"])
    faulty = "tor-r1-a:node-r1-02:ipv4"

    def down() -> bool:
        r = cli("verify", "--lab", lab_name, "--format", "json")
        return r.code == 3 and f'"session": "{faulty}"' in r.out
    wait_for(down, 30, "the session down in verify")
    page = tmp_path / "fabric.html"
    r = cli("graph", "--lab", lab_name, "-o", str(page))
    assert r.code == 3, r.out + r.err
    dom = _chromium(["--dump-dom"], page)
    parser = _Edges()
    parser.feed(dom)
    assert len(parser.edges) == len(fabric.sessions) == 28
    wrong = {i: e for i, e in parser.edges.items() if "state-established" not in e[0].split()}
    assert list(wrong) == ["session-tor-r1-a-node-r1-02-ipv4"], wrong
    cls, title, stroke = wrong["session-tor-r1-a-node-r1-02-ipv4"]
    assert "state-down" in cls.split() and stroke == COLOUR[EdgeState.DOWN]
    assert f"session {faulty} is" in title  # its finding, on hover
    assert all(e[2] == COLOUR[EdgeState.ESTABLISHED] for i, e in parser.edges.items()
               if i not in wrong)
    assert f'data-session="{faulty}"' in dom  # and listed under the picture
    artifacts = Path(os.environ.get("BGPGEN_ARTIFACTS", "/tmp/bgpgen-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "fabric-fault.png"
    _chromium([f"--screenshot={shot}", "--window-size=1400,900"], page)
    assert shot.stat().st_size > 10_000


def test_without_graphviz_a_one_line_error(cli: Callable[..., Run],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph.shutil, "which", lambda binary: None)
    r = cli("graph", "-i", str(EXAMPLES["dc1"]), "--format", "svg")
    assert r.code == 1 and r.out == ""
    assert r.err.strip().count("\n") == 0 and "apt-get install graphviz" in r.err, r.err
    r = cli("graph", "-i", str(EXAMPLES["dc1"]), "--format", "dot")  # the source needs no dot
    assert r.code == 0 and r.out.startswith('graph "dc1" {')


def test_a_plan_is_drawn(cli: Callable[..., Run], tmp_path: Path, secret_env: str) -> None:
    """Against a previous render, each device the plan would change is filled by its cost."""
    require("dot")
    base = tmp_path / "base"
    assert cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(base), "--secrets",
               "placeholder").code == 0
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    nodes = inv / "nodes.yaml"
    nodes.write_text(nodes.read_text().replace("[10.244.3.0/24,", "[10.244.33.0/24,"))
    r = cli("graph", "-i", str(inv), "--against", str(base), "--format", "dot")
    assert r.code == 0, r.err
    fills = dict(re.findall(r'^    "([^"]+)" \[id="device-[^"]+", fillcolor="([^"]+)"', r.out,
                            re.M))
    changed = {d: f for d, f in fills.items() if f not in ("#ffffff", "#e8f1fb", "#dfe6ee")}
    assert changed == {"tor-r1-a": graph.PLAN_FILL[Cost.SOFT],
                       "tor-r1-b": graph.PLAN_FILL[Cost.SOFT],
                       "node-r1-03": graph.PLAN_FILL[Cost.HITLESS]}, changed
    page = cli("graph", "-i", str(inv), "--against", str(base)).out
    assert 'data-device="node-r1-03">node-r1-03: update: hitless' in page


def test_bad_output_and_collapse_are_one_line_errors(cli: Callable[..., Run],
                                                     tmp_path: Path) -> None:
    inv = str(EXAMPLES["dc1"])
    r = cli("graph", "-i", inv, "-o", str(tmp_path / "no" / "such" / "dir" / "f.html"))
    assert r.code == 1 and r.out == "" and r.err.strip().count("\n") == 0, r.err
    assert "--out: cannot write it" in r.err and "hint:" in r.err
    r = cli("graph", "-i", inv, "--collapse", "-3")
    assert r.code != 0 and "--collapse: '-3' is not a number of nodes" in r.err
