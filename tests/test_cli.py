"""The CLI surface and the README's promises."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import jsonschema_rs
import pytest

from .conftest import EXAMPLES, ROOT, Run


def test_schema_is_a_valid_draft_2020_12_schema(cli: Callable[..., Run]) -> None:
    r = cli("schema")
    schema = json.loads(r.out)
    assert r.code == 0 and schema["$schema"].endswith("2020-12/schema")
    jsonschema_rs.Draft202012Validator(schema)  # raises on an invalid schema


def test_validate_counts(cli: Callable[..., Run]) -> None:
    r = cli("validate", "--format", "json")
    data = json.loads(r.out)
    # 8 nodes x 2 ToRs; 6 of them dual-stack -> 2 sessions per ToR, 2 IPv4-only -> 1.
    assert data == {"ok": True, "fabric": "dc1", "switches": 4, "nodes": 8,
                    "sessions": 6 * 2 * 2 + 2 * 2, "routes": data["routes"]}
    text = cli("validate")
    assert text.code == 0 and "28 sessions" in text.out


def test_route_server_example_model(cli: Callable[..., Run], tmp_path: Path) -> None:
    r = cli("render", "-i", str(EXAMPLES["local-rs"]), "-o", str(tmp_path / "b"))
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["routes"] == [{"prefix": "10.20.30.0/24", "origin": "speaker",
                            "next_hop": "30.30.30.30", "seen_by": "rs",
                            "session": "rs:speaker:ipv4", "kind": "pod"}]
    (s,) = m["sessions"]
    assert (s["node_asn"], s["switch_asn"], s["node_port"], s["switch_port"]) == \
        (65001, 64512, 1791, 1790)
    assert m["devices"]["rs"]["router_id"] == "1.1.1.1"
    assert m["devices"]["speaker"]["router_id"] == "2.2.2.2"
    originate = json.loads((tmp_path / "b" / "speaker" / "originate.json").read_text())
    assert originate["originate"] == [{"family": "ipv4", "prefix": "10.20.30.0/24",
                                       "next_hop": "30.30.30.30"}]


def test_internal_errors_are_one_line_unless_asked(cli: Callable[..., Run],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import bgpgen.cli as mod

    def boom(*a: object) -> None:
        raise RuntimeError("bug")
    monkeypatch.setattr(mod, "load_fabric", boom)
    r = cli("validate")
    assert r.code == 1 and r.err == "internal error: RuntimeError: bug (rerun with " \
        "--traceback and report it)\n"
    with pytest.raises(RuntimeError):
        cli("--traceback", "validate")


def _readme_blocks() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```\n(.*?)^```", text, flags=re.S | re.M)
    return [[ln for ln in b.splitlines() if ln.strip()] for b in blocks]


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    quick = _readme_blocks()[0]
    assert len(quick) == 2
    for cmd in quick:
        path = ROOT / cmd.split()[0]
        assert path.is_file() and os.access(path, os.X_OK), cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert quick[1] in ci


def test_readme_library_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, flags=re.S)
    assert code
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("BGPGEN_TOR_MD5", "readme-test")
    src = code.group(1).replace('Path("build")', f'Path("{tmp_path / "build"}")')
    exec(compile(src, "README.md", "exec"), {})
    assert (tmp_path / "build" / "tor-r1-a" / "frr.conf").exists()


USAGE = {
    ("deplyo",): "argument COMMAND: invalid choice: 'deplyo'",
    ("deploy", "--yse"): "bgpgen deploy: unrecognized arguments: --yse; did you mean --yes?",
    ("lab", "up", "--rendr"): "bgpgen lab up: unrecognized arguments: --rendr; did you mean "
                              "--render?",
    ("diff",): "bgpgen diff: one of the arguments --against --live --cluster is required",
    ("verify", "--format", "yaml"): "argument --format: invalid choice: 'yaml'",
}


@pytest.mark.parametrize("argv", sorted(USAGE))
def test_usage_errors_exit_1_not_2(argv: tuple[str, ...], cli: Callable[..., Run]) -> None:
    """2 means "changes" to CI: a typo must never look like a plan."""
    r = cli(*argv)
    assert r.code == 1 and r.out == ""
    first, *rest = r.err.splitlines()
    assert first.startswith("error: bgpgen") and USAGE[argv] in first, r.err
    assert rest and rest[0].startswith("usage: bgpgen"), r.err
    if argv == ("deplyo",):
        assert "did you mean deploy?" in first


def test_exit_codes_are_documented_and_kept(cli: Callable[..., Run], tmp_path: Path,
                                            secret_env: str) -> None:
    import io
    from contextlib import redirect_stdout

    from bgpgen.cli import EXIT_CODES, main
    buf = io.StringIO()
    with redirect_stdout(buf), pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and EXIT_CODES in buf.getvalue()
    for code in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert f"\n  {code}" in EXIT_CODES
    readme = (ROOT / "README.md").read_text()
    assert "| 130 |" in readme and "| 2 |" in readme  # the same table in the README
    base = tmp_path / "base"
    assert cli("render", "-o", str(base), "--secrets", "placeholder").code == 0
    assert cli("diff", "--against", str(base)).code == 0                    # no changes
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    (inv / "nodes.yaml").write_text((inv / "nodes.yaml").read_text().replace(
        "[10.244.3.0/24,", "[10.244.33.0/24,"))
    assert cli("diff", "-i", str(inv), "--against", str(base)).code == 2   # changes
    (tmp_path / "ssh_config").write_text("")
    r = cli("verify", "--workers", "0", "--ssh-config", str(tmp_path / "ssh_config"))
    assert r.code == 1 and r.err.count("\n") == 1 and "--workers" in r.err


def test_a_build_of_another_fabric_is_not_replaced(cli: Callable[..., Run], tmp_path: Path,
                                                   secret_env: str) -> None:
    out = tmp_path / "build"
    assert cli("render", "-o", str(out)).code == 0
    r = cli("render", "-i", str(EXAMPLES["local-rs"]), "-o", str(out))
    assert r.code == 1 and "holds the build of fabric dc1, not local-rs" in r.err
    assert json.loads((out / "manifest.json").read_text())["fabric"] == "dc1"
    assert cli("render", "-i", str(EXAMPLES["local-rs"]), "-o", str(out), "--force").code == 0
    assert json.loads((out / "manifest.json").read_text())["fabric"] == "local-rs"


@pytest.mark.parametrize("line,want", [("bgpgen dep", "deploy"),
                                       ("bgpgen deploy --ye", "--yes"),
                                       ("bgpgen lab up --rend", "--render")])
def test_shell_completion(line: str, want: str, tmp_path: Path) -> None:
    """bgpgen completion prints the script; the shell's requests are answered (argcomplete)."""
    import subprocess
    import sys
    script = subprocess.run([sys.executable, "-m", "bgpgen.cli", "completion", "bash"],
                            capture_output=True, text=True, cwd=ROOT)
    assert script.returncode == 0 and "complete" in script.stdout and "bgpgen" in script.stdout
    answer = tmp_path / "answer"
    env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE": "1",
           "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)}
    subprocess.run([sys.executable, "-m", "bgpgen.cli"], env=env, cwd=ROOT, timeout=30,
                   capture_output=True)
    assert want in answer.read_text().split(), answer.read_text()


def test_ctrl_c_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    """A real SIGINT in the middle of rendering a 10,000-node inventory (once it writes its
    temporary directory): exit 130, 'interrupted' on stderr, no traceback, no output directory,
    no temporary one left."""
    import signal
    import subprocess
    import sys
    import time
    sys.path.insert(0, str(ROOT / "bench"))
    from gen import generate
    inv = generate(10000, tmp_path / "inv")
    env = {**os.environ, "BGPGEN_BENCH_MD5": "bench-secret"}
    # SIGINT as a terminal delivers it, even when the suite itself runs in the background
    # (a shell starts background jobs with SIGINT ignored, and Python keeps it ignored)
    proc = subprocess.Popen([sys.executable, "-m", "bgpgen.cli", "render", "-i", str(inv), "-o",
                             str(tmp_path / "out")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120  # until the render is writing its temporary directory
    while not any(p.name.startswith(".out.") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "render ended first"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "interrupted", (proc.returncode, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv"]


def test_the_schema_serves_editors(cli: Callable[..., Run]) -> None:
    """Every field has a description; the per-file schema shipped beside the example is what
    bgpgen schema --per-file prints, each example file names it and passes it on its own."""
    import yaml
    schema = json.loads(cli("schema").out)
    undescribed = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.get("properties", {}).items():
                if isinstance(v, dict) and "description" not in v:
                    undescribed.append(f"{path}.{k}")
                walk(v, f"{path}.{k}")
            for key in ("items", "additionalProperties"):
                walk(node.get(key), path + "[]")
    walk(schema, "")
    for name, d in schema["$defs"].items():
        walk(d, name)
    assert undescribed == []
    per_file = cli("schema", "--per-file").out
    shipped = ROOT / "inventory" / ".bgpgen-inventory.schema.json"
    assert shipped.read_text() == per_file
    validator = jsonschema_rs.Draft202012Validator(json.loads(per_file))
    files = sorted((ROOT / "inventory").glob("*.yaml")) + [
        EXAMPLES["local-rs"] / "inventory.yaml"]
    for f in files:
        first = f.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=") and \
            (f.parent / first.split("=", 1)[1]).resolve() == shipped.resolve(), f
        assert validator.is_valid(yaml.safe_load(f.read_text())), f
