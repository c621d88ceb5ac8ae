"""--limit as Ansible writes it, one syntax for the CLI and playbooks."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bgpgen import load_fabric
from bgpgen.selection import PatternError, select

from .conftest import EXAMPLES, ROOT, Run

FABRIC = load_fabric(EXAMPLES["dc1"])

CASES = {
    "tor-r1-a": ["tor-r1-a"],
    "tor-r1-a,tor-r1-b": ["tor-r1-a", "tor-r1-b"],
    "tor-r1-b,tor-r1-a": ["tor-r1-a", "tor-r1-b"],                 # model order, not pattern's
    "tor*,!tor-r1-a": ["tor-r1-b", "tor-r2-a", "tor-r2-b"],
    "rack:r1,&role:node": ["node-r1-01", "node-r1-02", "node-r1-03", "node-r1-04"],
    "rack:r2,&role:switch": ["tor-r2-a", "tor-r2-b"],
    "group:r1-bird": ["node-r1-02", "node-r1-04"],
    "role:switch,!rack:r2": ["tor-r1-a", "tor-r1-b"],
    "node-r?-01,node-r2-0[34]": ["node-r1-01", "node-r2-01", "node-r2-03", "node-r2-04"],
    "&rack:r1": ["tor-r1-a", "tor-r1-b", "node-r1-01", "node-r1-02", "node-r1-03", "node-r1-04"],
    "!role:node": ["tor-r1-a", "tor-r1-b", "tor-r2-a", "tor-r2-b"],
}


@pytest.mark.parametrize("pattern", sorted(CASES))
def test_patterns(pattern: str) -> None:
    assert [d.name for d in select(FABRIC, [pattern])] == CASES[pattern]


def test_several_patterns_are_one() -> None:
    assert [d.name for d in select(FABRIC, ["rack:r1", "&role:switch"])] == ["tor-r1-a",
                                                                              "tor-r1-b"]


@pytest.mark.parametrize("pattern,said", [
    ("nope*", "'nope*' matches no device"), ("rack:r9", "rack 'r9' is not in the inventory"),
    ("role:spine", "role 'spine' is not node or switch"), ("zone:a", "zone: is not rack:"),
    ("group:g9", "group 'g9' is not in the inventory"), ("tor-r1-a,,tor-r1-b", "empty term"),
    ("tor-r1-a,&rack:r2", "selects no device"), ("!tor-r1-a,!nope", "'!nope' matches no")])
def test_bad_patterns(pattern: str, said: str) -> None:
    with pytest.raises(PatternError, match=re.escape(said)):
        select(FABRIC, [pattern])


def test_cli_limit_forms_and_the_playbook_argument(cli: Callable[..., Run], tmp_path: Path,
                                                   secret_env: str) -> None:
    base = tmp_path / "base"
    assert cli("render", "-o", str(base), "--secrets", "placeholder").code == 0
    r = cli("diff", "--against", str(base), "--limit", "rack:r1,&role:switch", "--limit",
            "!tor-r1-b", "--format", "json")
    assert r.code == 0, r.err
    r = cli("diff", "--against", str(base), "--limit", "rack:r7")
    assert r.code == 1 and r.err.startswith("error: --limit: rack 'r7' is not in the inventory")
    # --limit takes one value: the playbook is still the playbook
    r = cli("run", "--limit", "rack:r1", str(ROOT / "playbooks" / "canary.yaml"), "--check",
            "--lab", "no-such-lab")
    assert r.code == 1 and "lab no-such-lab is not up" in r.err, r.err
