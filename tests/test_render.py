"""bgpgen render end to end: the real daemons' checkers, file modes, secrets, atomic output."""

from __future__ import annotations

import importlib
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import EXAMPLES, ROOT, SECRET, Run, require


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_render_check_passes_every_real_checker(name: str, tmp_path: Path, secret_env: str,
                                                cli: Callable[..., Run]) -> None:
    for binary in ("gobgpd", "bird", "vtysh"):
        require(binary)
    out = tmp_path / "build"
    r = cli("render", "-i", str(EXAMPLES[name]), "-o", str(out), "--check", "--format", "json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    manifest = json.loads((out / "manifest.json").read_text())
    expected: dict[str, int] = {}
    checker = {"gobgp": "gobgpd", "gobgp-rs": "gobgpd", "bird": "bird", "frr": "vtysh",
               "cumulus": "vtysh", "sonic": "vtysh", "eos": "hier_config (EOS)",
               "junos": "hier_config (Junos)", "nxos": "hier_config (NX-OS)"}
    for dev in manifest["devices"].values():
        if dev["platform"] in ("external", "metallb", "calico", "cilium", "openelb"):
            assert dev["files"] == []  # no files: the switch side, and cluster resources
            continue
        expected[checker[dev["platform"]]] = expected.get(checker[dev["platform"]], 0) + 1
        if dev["platform"].startswith("gobgp"):
            expected["toml"] = expected.get("toml", 0) + 1  # parsed back with tomllib
    assert report["checked"] == expected   # every config file went through its checker
    assert report["skipped_checkers"] == []


def test_check_failure_names_device_and_writes_nothing(tmp_path: Path, secret_env: str,
                                                       cli: Callable[..., Run]) -> None:
    require("bird")
    over = tmp_path / "templates" / "bird"
    over.mkdir(parents=True)
    good = (ROOT / "templates" / "bird" / "bird.conf.j2").read_text()
    (over / "bird.conf.j2").write_text(good.replace("hold time", "hold tiem"))
    out = tmp_path / "build"
    r = cli("render", "-o", str(out), "--check", "--templates", str(tmp_path / "templates"))
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert lines and all(ln.startswith("error: ") for ln in lines)
    assert any("node-r1-02/bird.conf" in ln and "bird rejects it" in ln for ln in lines)
    assert "Traceback" not in r.err and SECRET not in r.err + r.out
    assert not out.exists()
    assert not list(tmp_path.glob(".build*")), "temporary build directory left behind"


def test_failed_check_keeps_the_previous_build(tmp_path: Path, secret_env: str,
                                               cli: Callable[..., Run]) -> None:
    require("gobgpd")
    out = tmp_path / "build"
    assert cli("render", "-o", str(out)).code == 0
    before = _files(out)
    over = tmp_path / "t" / "gobgp"
    over.mkdir(parents=True)
    good = (ROOT / "templates" / "gobgp" / "gobgpd.toml.j2").read_text()
    (over / "gobgpd.toml.j2").write_text(good.replace("peer-as =", "peer-asn ="))
    r = cli("render", "-o", str(out), "--check", "--templates", str(tmp_path / "t"))
    assert r.code == 1 and "gobgpd rejects it" in r.err and "peer-asn" in r.err
    assert _files(out) == before


def test_secret_files_are_private_and_secret_never_printed(tmp_path: Path, secret_env: str,
                                                           cli: Callable[..., Run]) -> None:
    out = tmp_path / "build"
    r = cli("render", "-o", str(out))
    assert r.code == 0 and SECRET not in r.out + r.err
    holding = [p for p in out.rglob("*") if p.is_file() and SECRET in p.read_text()]
    assert holding, "the password should be in the rendered configs"
    for p in out.rglob("*"):
        if p.is_file():
            mode = stat.S_IMODE(p.stat().st_mode)
            private = p in holding or p.name == ".bgpgen-secrets"  # what the files hold
            assert mode == (0o600 if private else 0o644), (p, oct(mode))
    assert SECRET not in (out / "manifest.json").read_text()


def test_placeholder_mode_writes_no_secret(tmp_path: Path, cli: Callable[..., Run],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BGPGEN_TOR_MD5", raising=False)
    out = tmp_path / "build"
    r = cli("render", "-o", str(out), "--secrets", "placeholder")
    assert r.code == 0, r.err
    assert "<secret:tor-md5>" in (out / "tor-r1-a" / "frr.conf").read_text()


def test_missing_secret_is_a_one_line_error(tmp_path: Path, cli: Callable[..., Run],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BGPGEN_TOR_MD5", raising=False)
    r = cli("render", "-o", str(tmp_path / "b"))
    assert r.code == 1 and not (tmp_path / "b").exists()
    assert r.err.count("\n") == 1
    assert "inventory/fabric.yaml:" in r.err and "secrets.tor-md5.env" in r.err
    assert "BGPGEN_TOR_MD5 is not set" in r.err and "hint:" in r.err


def _secret_inventory(tmp_path: Path, value: str, mode: int) -> Path:
    inv = tmp_path / "inv"
    inv.mkdir()
    for p in (ROOT / "inventory").glob("*.yaml"):
        text = p.read_text().replace("{env: BGPGEN_TOR_MD5}", "{file: md5.key}")
        (inv / p.name).write_text(text)
    key = inv / "md5.key"
    key.write_text(value + "\n")
    key.chmod(mode)
    return inv


def test_secret_from_file(tmp_path: Path, cli: Callable[..., Run]) -> None:
    inv = _secret_inventory(tmp_path, "filekey-123", 0o600)
    r = cli("render", "-i", str(inv), "-o", str(tmp_path / "b"))
    assert r.code == 0, r.err
    assert "password filekey-123" in (tmp_path / "b" / "tor-r1-a" / "frr.conf").read_text()


def test_world_readable_secret_file_is_refused(tmp_path: Path, cli: Callable[..., Run]) -> None:
    inv = _secret_inventory(tmp_path, "filekey-123", 0o644)
    r = cli("render", "-i", str(inv), "-o", str(tmp_path / "b"))
    assert r.code == 1 and "readable by every user" in r.err and "chmod 600" in r.err
    assert "filekey-123" not in r.err


@pytest.mark.parametrize("value", ['a"b', "a b", "x\\y", "a" * 81, "semi;colon"])
def test_unsafe_secret_value_is_refused_without_echo(value: str, tmp_path: Path,
                                                     cli: Callable[..., Run],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGPGEN_TOR_MD5", value)
    r = cli("render", "-o", str(tmp_path / "b"))
    assert r.code == 1 and "secrets.tor-md5.env" in r.err and value not in r.err
    assert not (tmp_path / "b").exists()


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path, secret_env: str,
                                                cli: Callable[..., Run]) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    r = cli("render", "-o", str(out))
    assert r.code == 1 and "refusing to replace it" in r.err
    assert (out / "notes.txt").read_text() == "keep me"


def test_rerender_replaces_stale_devices(tmp_path: Path, secret_env: str,
                                         cli: Callable[..., Run]) -> None:
    out = tmp_path / "build"
    assert cli("render", "-o", str(out)).code == 0
    (out / "gone-device").mkdir()
    assert cli("render", "-o", str(out)).code == 0
    assert not (out / "gone-device").exists()


def test_missing_template_dir_is_a_one_line_error(tmp_path: Path, secret_env: str,
                                                  cli: Callable[..., Run]) -> None:
    r = cli("render", "-o", str(tmp_path / "b"), "--templates", str(tmp_path / "nope"))
    assert r.code == 1 and r.err.count("\n") == 1 and "--templates: is not a directory" in r.err
    assert not (tmp_path / "b").exists()


def test_diff_against_a_non_build_is_a_one_line_error(tmp_path: Path, secret_env: str,
                                                      cli: Callable[..., Run]) -> None:
    r = cli("diff", "--against", str(tmp_path))
    assert r.code == 1 and r.err.count("\n") == 1 and "is not a bgpgen build" in r.err


def test_a_rerender_changes_only_what_changed(tmp_path: Path, secret_env: str,
                                              cli: Callable[..., Run]) -> None:
    """One node's pod CIDR changed: its files, its switches' files and the manifest are new;
    every other file keeps its inode and mtime (the directory is still swapped atomically)."""
    from .lab_helpers import changed_inventory
    out = tmp_path / "build"
    assert cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(out)).code == 0
    before = {p.relative_to(out): (p.stat().st_ino, p.stat().st_mtime_ns)
              for p in out.rglob("*") if p.is_file()}
    inv = changed_inventory(tmp_path)  # node-r1-03's IPv4 pod CIDR moved
    assert cli("render", "-i", str(inv), "-o", str(out)).code == 0
    after = {p.relative_to(out): (p.stat().st_ino, p.stat().st_mtime_ns)
             for p in out.rglob("*") if p.is_file()}
    assert set(after) == set(before)
    changed = {str(p) for p in after if after[p] != before[p]}
    assert changed == {"manifest.json", "node-r1-03/gobgpd.toml",
                       "node-r1-03/originate.json", "tor-r1-a/frr.conf",
                       "tor-r1-b/frr.conf"}, sorted(changed)
    secret = out / "tor-r2-a" / "frr.conf"  # kept, still private
    assert stat.S_IMODE(secret.stat().st_mode) & 0o077 == 0


# --- incremental render (issue 14) ----------------------------------------------------------------

def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


#: (file, old, new, devices rendered again): edits of dc1, from one node to every device
EDITS = {
    "pod-cidr": ("nodes.yaml", "[10.244.3.0/24,", "[10.244.33.0/24,", 3),
    "timers": ("fabric.yaml", "timers: {hold: 9, keepalive: 3,", "timers: {hold: 12, keepalive: 4,",
               None),
    "speaker": ("nodes.yaml", "    group: r1-gobgp\n    asn: 65013", "    group: r1-bird\n    asn: 65013",
                3),
    "node-removed": ("nodes.yaml", "  - name: node-r1-04\n    group: r1-bird\n    asn: 65014\n"
                     "    peering: [198.18.11.104/24, 198.18.12.104/24, 2001:db8:11::104/64, "
                     "2001:db8:12::104/64]\n    mgmt: {host: 198.51.100.104}\n"
                     "    pod_cidrs: [10.244.4.0/24, 2001:db8:244:4::/64]\n", "", 2),
    "switch-asn": ("switches.yaml", "asn: 65101", "asn: 65109", 5),
    "node-added": ("nodes.yaml", "  - name: node-r1-04\n", "  - name: node-r1-00\n"
                   "    group: r1-bird\n    asn: 65019\n"
                   "    peering: [198.18.11.109/24, 198.18.12.109/24]\n"
                   "    mgmt: {host: 198.51.100.109}\n    pod_cidrs: [10.244.9.0/24]\n"
                   "  - name: node-r1-04\n", 3),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_incremental_render_is_a_full_render(edit: str, tmp_path: Path, secret_env: str,
                                                cli: Callable[..., Run]) -> None:
    """Render dc1, edit the inventory, render into the same build: the build is byte for byte a
    full render of the edited inventory into a new directory (files gone are gone too), and only
    the devices whose inputs changed were rendered again."""
    from .lab_helpers import edited_inventory
    file, old, new, rendered = EDITS[edit]
    out = tmp_path / "build"
    assert cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(out)).code == 0
    inv = edited_inventory(tmp_path, file, old, new)
    r = cli("render", "-i", str(inv), "-o", str(out), "--format", "json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    full = tmp_path / "full"
    assert cli("render", "-i", str(inv), "-o", str(full)).code == 0
    assert _tree(out) == _tree(full)
    devices = data["switches"] + data["nodes"]
    if rendered is not None:
        assert devices - data["unchanged_devices"] == rendered
    else:
        assert data["unchanged_devices"] == 0


def test_a_rerender_takes_unchanged_session_and_route_rows_from_the_last_manifest(
        tmp_path: Path, secret_env: str, cli: Callable[..., Run],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-node edit re-encodes only the manifest rows of the devices whose inputs changed
    (and of their sessions and routes; the others are the previous manifest's lines); a manifest whose rows are not what its devices say (one
    removed by hand) is not trusted: everything is encoded again. Either way the build is a full
    render's, byte for byte."""
    from .lab_helpers import edited_inventory
    module = importlib.import_module("bgpgen.render")
    made: list[object] = []
    real = module._spliced
    monkeypatch.setattr(module, "_spliced", lambda *a: made.append(real(*a)) or made[-1])
    out = tmp_path / "build"
    assert cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(out)).code == 0
    inv = edited_inventory(tmp_path, *EDITS["pod-cidr"][:3])
    made.clear()
    assert cli("render", "-i", str(inv), "-o", str(out)).code == 0
    assert len(made) == 3 and all(made), made  # devices, sessions and routes, all spliced
    full = tmp_path / "full"
    assert cli("render", "-i", str(inv), "-o", str(full)).code == 0
    assert _tree(out) == _tree(full)
    manifest = out / "manifest.json"
    lines = manifest.read_text().split("\n")
    dropped = next(i for i, line in enumerate(lines)
                   if '"node":"node-r1-01"' in line and '"hold_time"' in line)
    manifest.write_text("\n".join(lines[:dropped] + lines[dropped + 1:]))
    text = (inv / "nodes.yaml").read_text()
    (inv / "nodes.yaml").write_text(text.replace("[10.244.33.0/24,", "[10.244.34.0/24,"))
    made.clear()
    assert cli("render", "-i", str(inv), "-o", str(out)).code == 0
    assert made[1] is None and made[0] and made[2], made  # sessions: not trusted, made again
    assert cli("render", "-i", str(inv), "-o", str(full)).code == 0
    assert _tree(out) == _tree(full)


def test_a_changed_secret_value_rewrites_the_files_that_hold_it(tmp_path: Path,
                                                              cli: Callable[..., Run],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              ) -> None:
    out = tmp_path / "build"
    monkeypatch.setenv("BGPGEN_TOR_MD5", SECRET)
    assert cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(out)).code == 0
    monkeypatch.setenv("BGPGEN_TOR_MD5", SECRET + "-rotated")
    r = cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(out), "--format", "json")
    assert r.code == 0 and json.loads(r.out)["rewritten"] > 0
    full = tmp_path / "full"
    assert cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(full)).code == 0
    assert _tree(out) == _tree(full)
    assert SECRET + "-rotated" in (out / "tor-r1-a" / "frr.conf").read_text()
    state = out / ".bgpgen-secrets"  # what says which values the files hold: private
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert SECRET not in state.read_text()


def test_a_failed_incremental_write_puts_everything_back(tmp_path: Path, secret_env: str,
                                                        cli: Callable[..., Run],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure half-way through swapping the changed files in (the third rename fails): every
    file already swapped is put back, nothing staged is left, the build is as it was."""
    import os

    render_mod = importlib.import_module("bgpgen.render")
    from bgpgen.secrets import resolve_all
    from bgpgen.validate import load_fabric

    from .lab_helpers import timers_inventory
    out = tmp_path / "build"
    assert cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(out)).code == 0
    before = _tree(out)
    fabric = load_fabric(timers_inventory(tmp_path))
    real, calls = os.replace, []

    def failing(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(render_mod.os, "replace", failing)
    with pytest.raises(OSError):
        render_mod.update(fabric, out, resolve_all)
    monkeypatch.setattr(render_mod.os, "replace", real)
    assert _tree(out) == before
    assert not [p for p in out.rglob("*") if "bgpgen-new" in p.name or "bgpgen-old" in p.name]


def test_diff_against_skips_what_did_not_change(tmp_path: Path, secret_env: str,
                                               cli: Callable[..., Run],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """diff --against renders only the devices whose input digest differs from the build's."""
    from bgpgen import plan as plan_mod

    from .lab_helpers import changed_inventory
    out = tmp_path / "build"
    assert cli("render", "-i", str(EXAMPLES["dc1"]), "-o", str(out)).code == 0
    rendered: list[str] = []
    real = plan_mod.render

    def counting(fabric: object, templates: object = None, devices: object = None) -> object:
        rendered.extend(sorted(devices))  # type: ignore[call-overload]
        return real(fabric, templates, devices)  # type: ignore[arg-type]

    monkeypatch.setattr(plan_mod, "render", counting)
    r = cli("diff", "-i", str(changed_inventory(tmp_path)), "--against", str(out))
    assert r.code == 2, r.err
    assert rendered == ["node-r1-03", "tor-r1-a", "tor-r1-b"]
    assert "10.244.33.0/24" in r.out and "Plan: 0 to add, 3 to change" in r.out


@pytest.mark.parametrize("platform", ["frr", "eos", "junos", "nxos"])
def test_diff_against_a_build_with_secret_values(platform: str, tmp_path: Path, secret_env: str,
                                                 cli: Callable[..., Run]) -> None:
    """A previous build written with the secrets' values (render's default) compares as tokens
    when this machine has the values: a pod CIDR moved changes one prefix, not the passwords
    (which would read as a session-resetting change)."""
    import shutil
    base = tmp_path / "base"
    inv = EXAMPLES["multi-vendor"]
    assert cli("render", "-i", str(inv), "-o", str(base)).code == 0
    moved = tmp_path / "moved"
    shutil.copytree(inv, moved)
    nodes = moved / "nodes.yaml"
    octet = {"frr": "31", "eos": "61", "junos": "71", "nxos": "81"}[platform]
    nodes.write_text(nodes.read_text().replace(f"10.244.{octet}.0/24", f"10.244.1{octet}.0/24"))
    r = cli("diff", "-i", str(moved), "--against", str(base), "--format", "json")
    assert r.code == 2, r.err
    assert "secret:changed" not in r.out and SECRET not in r.out
    plan = {d["device"]: d for d in json.loads(r.out)["devices"]}
    tor = plan[f"tor-{platform}"]
    assert tor["cost"] in ("soft", "soft reset"), tor


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time an inventory file is really parsed."""
    from bgpgen import strict_yaml
    parsed: list[int] = []
    real = strict_yaml.load

    def counting(stream: object, loader: type) -> object:
        parsed.append(1)
        return real(stream, loader)

    monkeypatch.setattr(strict_yaml, "load", counting)
    return parsed


def test_parsed_files_are_cached_by_their_bytes(tmp_path: Path, secret_env: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An unchanged file is not parsed again; a changed one is; a damaged cache entry is
    parsed again (never an error); a cache directory others can write to is not used."""
    import os

    from bgpgen import model_cache, parse_cache
    from bgpgen.validate import load_fabric

    from .lab_helpers import changed_inventory
    cache = tmp_path / "cache"
    monkeypatch.setenv("BGPGEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(model_cache, "_read", lambda entry: None)  # the parse cache alone
    parsed = _count_parses(monkeypatch)
    inv = changed_inventory(tmp_path)
    first = load_fabric(inv)
    files = len(list(inv.glob("*.yaml")))
    assert len(parsed) == files
    assert load_fabric(inv) == first and len(parsed) == files  # all from the cache
    (inv / "nodes.yaml").write_text((inv / "nodes.yaml").read_text() + "\n# edited\n")
    load_fabric(inv)
    assert len(parsed) == files + 1  # only the edited file
    for entry in (cache / "parsed").iterdir():
        entry.write_bytes(b"\x00garbage")
    assert load_fabric(inv) == first
    assert len(parsed) == 2 * files + 1
    os.chmod(cache / "parsed", 0o777)
    assert parse_cache.directory() is None
    assert load_fabric(inv) == first and len(parsed) == 3 * files + 1


def test_aliases_are_bounded_but_a_large_written_out_document_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bgpgen import strict_yaml
    from bgpgen.loader import _Loader
    monkeypatch.setattr(strict_yaml, "MAX_VALUES", 100)
    big = "nodes:\n" + "".join(f"- {{name: n{i}, asn: {i}}}\n" for i in range(200))
    assert len(strict_yaml.load(big, _Loader)["nodes"]) == 200
    bomb = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nb: &b [*a, *a, *a, *a, *a, *a]\n" \
           "c: [*b, *b, *b]\n"
    with pytest.raises(strict_yaml.StrictYamlError, match="expands to more than 100"):
        strict_yaml.load(bomb, _Loader)


def test_nodes_let_go_while_building_give_the_same_values() -> None:
    """A file without anchors is built letting go of each node as it is built (memory); the
    values are the same as when every node is kept, and a file with anchors keeps them."""
    import yaml

    from bgpgen import strict_yaml
    from bgpgen.loader import _Loader
    files = [f for inv in EXAMPLES.values() for f in sorted(inv.glob("*.yaml"))]
    assert files
    for f in files:
        data = f.read_bytes()
        kept = strict_yaml._Builder(free=False).build(yaml.compose(data, Loader=_Loader))
        assert strict_yaml.load(data, _Loader) == kept, f
    assert strict_yaml._ANCHOR_OR_ALIAS.search(b"a: &x [1]\nb: *x\n")
    assert not strict_yaml._ANCHOR_OR_ALIAS.search(b"a: [1]\nb: 'x&y'\n")


def test_the_parse_cache_keeps_what_the_inventory_uses(tmp_path: Path, secret_env: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An inventory of more files than the cache holds still finds all of its own files there
    the next time; another inventory's entries are pruned down to the limit."""
    from bgpgen import parse_cache
    from bgpgen.validate import load_fabric

    from .lab_helpers import changed_inventory
    cache = tmp_path / "cache"
    monkeypatch.setenv("BGPGEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(parse_cache, "MAX_ENTRIES", 1)
    parsed = _count_parses(monkeypatch)
    inv = changed_inventory(tmp_path)
    files = len(list(inv.glob("*.yaml")))
    assert files > 1
    load_fabric(inv)
    assert len(parsed) == files and len(list((cache / "parsed").iterdir())) == files
    load_fabric(inv)
    assert len(parsed) == files  # every file from the cache, none pruned by its own load
    (inv / "nodes.yaml").write_text((inv / "nodes.yaml").read_text() + "\n# edited\n")
    load_fabric(inv)
    assert len(parsed) == files + 1
    # the old nodes.yaml entry was not used by this load: pruned down to the limit (the
    # entries this load used stay)
    assert len(list((cache / "parsed").iterdir())) == files


def test_the_manifest_is_the_same_however_it_is_made() -> None:
    """A manifest written at once, streamed (a new build) or with the previous manifest's rows
    of unchanged devices, sessions and routes (a re-render) is the same text; rows are encoded a
    chunk at a time and a value holding the chunk's row separator falls back to a row at a
    time."""
    from bgpgen import validate
    from bgpgen.render import (_elements, _files, _json, _manifest, _manifest_parts,
                               _spliced_devices,
                               _spliced_routes, _spliced_sessions, dump_manifest, input_digests,
                               manifest, manifest_lines, render)
    fabric = validate.load_fabric(ROOT / "inventory")
    build, digests = render(fabric), input_digests(fabric)
    whole = dump_manifest(manifest(build, digests))
    streamed = "\n".join(manifest_lines(_manifest(fabric, _files(build, None), digests,
                                                  stream=True))) + "\n"
    assert streamed == whole
    old = whole.encode()
    node = fabric.nodes[0].name
    for moved in (set(), {node}, {node, fabric.switches[0].name, "gone"},
                  {d.name for d in fabric.devices}):
        files = _files(build, None)
        blocks = {"devices": _spliced_devices(old, fabric, moved, files, digests),
                  "sessions": _spliced_sessions(old, fabric, moved),
                  "routes": _spliced_routes(old, fabric, moved)}
        assert all(b is not None for b in blocks.values()), moved
        again = b"".join(_manifest_parts(manifest_lines(
            _manifest(fabric, files, digests, stream=True, blocks=blocks))))
        assert again == old, moved
    # rows the old manifest lacks (or has more of) are never trusted
    cut = old.replace(old[old.index(b'\n {"family"'):old.index(b"\n", old.index(b'\n {"family"')
                                                                   + 1)], b"", 1)
    assert _spliced_sessions(cut, fabric, set()) is None
    # nor are rows whose keys cannot be read (every route's prefix spoiled by hand)
    spoiled = old.replace(b'"prefix":"', b'"prefix":"x')
    assert _spliced_routes(spoiled, fabric, {node}) is None
    rows: list[object] = [{"n": i, "s": f"r{i}"} for i in range(5000)] + [7, {"t": [1]}]
    rows[10] = {"s": "x},{y"}  # in the first chunk, of dicts only
    assert "\n".join(_elements(iter(rows))) == \
        ",\n".join(f" {_json(r)}" for r in rows)


def test_plain_scalars_are_read_by_the_core_schema_and_merge_keys_work() -> None:
    """The loader tags every plain scalar as text (the strict builder reads them itself) but a
    plain ``<<``, the merge key: dates stay text, yes/no stay text, numbers are numbers."""
    from bgpgen import strict_yaml
    from bgpgen.loader import _Loader
    doc = strict_yaml.load(b"d: 2026-11-27\ny: yes\nn: 65001\nf: 9.0\nt: true\nz: ~\n"
                           b"base: &b {asn: 65001, rack: r1}\nnode: {<<: *b, rack: r2}\n"
                           b"q: '<<'\nplain: <<\n", _Loader)
    assert doc == {"d": "2026-11-27", "y": "yes", "n": 65001, "f": "9.0", "t": True, "z": None,
                   "base": {"asn": 65001, "rack": "r1"}, "node": {"asn": 65001, "rack": "r2"},
                   "q": "<<", "plain": "<<"}
