"""The bad-inventory corpus (tests/bad/cases.yaml): each case exits 1 with one-line errors that
name the file, the place and a hint, prints no traceback, and writes nothing."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Run

BAD = Path(__file__).parent / "bad"
CASES: list[dict[str, Any]] = yaml.safe_load((BAD / "cases.yaml").read_text())


def _materialize(case: dict[str, Any], tmp: Path) -> Path:
    inv = tmp / "inv"
    shutil.copytree(BAD / "base", inv)
    for e in case.get("edit", []):
        path = inv / e["file"]
        text = path.read_text()
        assert text.count(e["old"]) == 1, f"{case['id']}: edit text must occur once: {e['old']!r}"
        path.write_text(text.replace(e["old"], e["new"]))
    for name, text in case.get("write", {}).items():
        (inv / name).write_text(text)
    for name, b64 in case.get("write_bytes", {}).items():
        (inv / name).write_bytes(base64.b64decode(b64))
    if "junk" in case:
        (inv / case["junk"]["file"]).write_bytes(os.urandom(case["junk"]["bytes"]))
    for name in case.get("delete", []):
        (inv / name).unlink()
    for name, target in case.get("symlink", {}).items():
        (inv / name).symlink_to(target)
    for name in case.get("fifo", []):
        os.mkfifo(inv / name)
    for name, mode in case.get("chmod", {}).items():
        (inv / name).chmod(int(mode, 8))
    if case.get("missing_dir"):
        shutil.rmtree(inv)
    return inv


def test_base_inventory_is_valid(tmp_path: Path, cli: Callable[..., Run],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGPGEN_TEST_MD5", "k")
    r = cli("render", "-i", str(BAD / "base"), "-o", str(tmp_path / "out"))
    assert r.code == 0, r.err


def test_corpus_is_large_and_unique() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_inventory(case: dict[str, Any], tmp_path: Path, cli: Callable[..., Run],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    if case.get("unset_env"):
        monkeypatch.delenv("BGPGEN_TEST_MD5", raising=False)
    else:
        monkeypatch.setenv("BGPGEN_TEST_MD5", "k")
    inv = _materialize(case, tmp_path)
    out = tmp_path / "out"
    r = cli("render", "-i", str(inv), "-o", str(out))
    assert r.code == 1, f"expected exit 1, got {r.code}: {r.out}{r.err}"
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    lines = r.err.splitlines()
    assert lines and all(ln.startswith("error: ") for ln in lines), r.err
    assert all(str(tmp_path) in ln for ln in lines), f"every error names its file: {r.err}"
    assert all("(hint: " in ln for ln in lines), f"every error has a hint: {r.err}"
    matching = [ln for ln in lines if all(s in ln for s in case["expect"])]
    assert matching, f"no error line holds all of {case['expect']}:\n{r.err}"
    assert not out.exists(), "nothing may be written on bad input"
    assert sorted(p.name for p in tmp_path.iterdir()) == (["inv"] if inv.exists() else [])
    # The same problems, for machines.
    j = cli("validate", "-i", str(inv), "--format", "json")
    if not case.get("unset_env") and not case.get("secret_at_render"):
        assert j.code == 1
        data = json.loads(j.out)
        assert data["ok"] is False and all(e["file"] and e["message"] for e in data["errors"])


def test_an_alias_bomb_costs_nothing(tmp_path: Path) -> None:
    """The billion laughs (9 levels of 9 aliases, 407 bytes) is refused before it expands:
    in a fresh process, well under 2 s and 100 MB (peak RSS, the interpreter included)."""
    inv = tmp_path / "inv"
    shutil.copytree(BAD / "base", inv)
    case = next(c for c in CASES if c["id"] == "alias-bomb-under-an-unknown-key")
    (inv / "extra.yaml").write_text(case["write"]["extra.yaml"])
    assert len(case["write"]["extra.yaml"]) < 450
    # peak RSS of this process image (VmHWM): ru_maxrss would carry the forked parent's over
    probe = ("import re, sys, time\nfrom bgpgen.cli import main\nt = time.perf_counter()\n"
             "rc = main(['validate', '-i', sys.argv[1]])\nel = time.perf_counter() - t\n"
             "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
             "print(rc, el, hwm)\n")
    r = subprocess.run([sys.executable, "-c", probe, str(inv)], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "BGPGEN_TEST_MD5": "k"})
    rc, seconds, rss_kib = r.stdout.split()
    assert rc == "1" and "more than" in r.stderr, r.stderr
    assert float(seconds) < 2.0 and int(rss_kib) < 100 * 1024, (seconds, rss_kib)
