"""bgpgen's part of an FRR switch, table-driven (tests/ownership/frr.yaml), in the style of
hier_config's circular tests: for each case, the config a bgp-part push aims at is computed
from the running config and the render; FRR's own frr-reload (offline: ``--input`` reads the
running config from a file, vtysh checks the syntax) gives the remediation and the rollback;
and going there and back changes no line that is not bgpgen's.

``BGPGEN_UPDATE_OWNERSHIP=1`` writes the computed remediations into the YAML (review the diff).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpgen.platforms import frr, ownership
from bgpgen.platforms.base import DeployFailed, shown

from .conftest import ROOT, require

CASES_FILE = ROOT / "tests" / "ownership" / "frr.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text())
SECRET = "s3cret-md5"
VALUES = {"tor-md5": SECRET}


def delta(running: str, target: str, tmp: Path) -> dict[str, list[str]]:
    """frr-reload's delta from ``running`` to ``target``, lines fit to show."""
    (tmp / "running.conf").write_text(running)
    (tmp / "target.conf").write_text(target)
    r = subprocess.run([frr.FRR_RELOAD, "--test", "--stdout", "--input",
                        str(tmp / "running.conf"), "--bindir", "/usr/bin", "--confdir",
                        str(tmp), "--rundir", str(tmp), str(tmp / "target.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    delete, add = frr.reload_delta(r.stdout)
    return {"delete": [shown(frr.SECRET_LINE, ln, VALUES) for ln in delete],
            "add": [shown(frr.SECRET_LINE, ln, VALUES) for ln in add]}


def _lines(tree: ownership.Tree, mine: bool, rules: Any) -> list[ownership.Path]:
    return [p for p in ownership.paths(tree) if ownership.owned(p, rules) == mine]


def test_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any], tmp_path: Path) -> None:
    require("vtysh")
    running, intended = case["running"], case["intended"]
    if "error" in case:
        with pytest.raises(DeployFailed) as exc:
            frr.part_target("tor-r1-a", running, intended)
        (problem,) = exc.value.problems
        assert case["error"] in problem.message and problem.hint, problem
        assert "\n" not in problem.message
        return
    target = frr.part_target("tor-r1-a", running, intended)
    have, want = ownership.parse(running, frr.SYNTAX), ownership.parse(intended, frr.SYNTAX)
    aim = ownership.parse(target, frr.SYNTAX)
    rules = frr._rules(want, have)
    # circular: every line that is not bgpgen's is kept, in its order; bgpgen's part is the
    # render's
    ours = _lines(aim, True, rules)
    kept = [p for p in _lines(aim, False, rules)  # less blocks made to hold bgpgen's lines
            if p in ownership.paths(have) or not any(q[:len(p)] == p for q in ours)]
    assert kept == _lines(have, False, rules)
    assert sorted(_lines(aim, True, rules)) == sorted(_lines(want, True, rules))
    remediation = delta(running, target, tmp_path)
    rollback = delta(target, running, tmp_path)
    for text in (remediation, rollback):
        assert SECRET not in repr(text)
    if os.environ.get("BGPGEN_UPDATE_OWNERSHIP"):
        case["remediation"], case["rollback"] = remediation, rollback
        _save()
        return
    assert remediation == case["remediation"], remediation
    assert rollback == case["rollback"], rollback
    # what the remediation touches is bgpgen's alone: each line, under the blocks frr-reload
    # names before it, is owned (the blocks themselves are only where it goes)
    for lines in (remediation["delete"], remediation["add"]):
        stack: list[str] = []
        for ln in lines:
            depth = len(ln) - len(ln.lstrip())
            body = ln.strip().removeprefix("no ")
            stack = [*stack[:depth], body]
            nxt = lines[lines.index(ln) + 1:lines.index(ln) + 2]
            opens = bool(nxt) and len(nxt[0]) - len(nxt[0].lstrip()) > depth
            container = body.startswith(("router bgp ", "address-family "))
            assert opens or container or ownership.owned(tuple(stack), rules), (ln, stack)


def _save() -> None:
    head = "".join(ln + "\n" for ln in CASES_FILE.read_text().splitlines()
                   if ln.startswith("#"))

    class Lit(str):
        pass

    def lit(d: yaml.Dumper, data: str) -> Any:
        return d.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    yaml.add_representer(Lit, lit)
    out = [{k: Lit(v) if k in ("running", "intended") else v for k, v in c.items()}
           for c in CASES]
    CASES_FILE.write_text(head + yaml.dump(out, sort_keys=False, width=100))
