"""The incremental model (bgpgen.model_cache) against the full build, over random edits.

An inventory of four racks (three of FRR ToR pairs, one of a gobgpd route server), a node group,
an explicit session, IPv4 and IPv6, a file of nodes per rack, is edited at random: valid edits
(a pod CIDR moved, a node added, removed, renamed, moved to another rack or file, a file of
nodes added or dropped) and invalid ones (overlapping pods, a peering address or router-id used
twice, a subnet overlapping the cluster's ranges, a schema error, a secret token), and edits the
patch must leave to the full build (a switch, a group, a file that holds more than nodes). Files
of nodes are written in several styles (:data:`STYLES`), some that :mod:`bgpgen.node_chunks`
cuts at their entries and some it must not trust. After each edit the model loaded with the
cache must equal the model built in full with the cache off, device digests included, or both
must fail with the same problems.
"""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpgen import inputs, model_cache
from bgpgen.errors import InventoryError
from bgpgen.model import Fabric
from bgpgen.validate import load_fabric

RACKS = 4
PER_RACK = 5
Docs = dict[str, dict[str, Any]]
#: edits checked, then undone: they move a file or a node out of the patch's reach for good
UNDONE = ("not-only-nodes", "explicit-node")


def _node(r: int, k: int, name: str | None = None) -> dict[str, Any]:
    n: dict[str, Any] = {
        "name": name or f"n{r}-{k}", "rack": f"r{r}",
        "peering": [f"10.1.{2 * r}.{10 + k}/24"],
        "mgmt": {"host": f"198.51.100.{r * 20 + k}"},
        "pod_cidrs": [f"10.0.{r * 20 + k}.0/24"]}
    if r == 0:
        n["group"] = "g-r0"
        del n["rack"]
    else:
        n["speaker"] = "gobgp" if k % 2 else "bird"
        n["asn"] = 65000 + r * 20 + k
    if r < 3:  # ToR pairs: IPv6 too; the route server's rack is IPv4 only
        n["peering"] += [f"10.1.{2 * r + 1}.{10 + k}/24", f"fd00:{r + 1}::{10 + k:x}/64"]
        n["pod_cidrs"].append(f"2001:db8:a:{r * 20 + k + 1:x}::/64")
    if k == 1:
        n["vips"] = ["203.0.113.10"]
    return n


def _inventory(split: bool = True) -> Docs:
    fabric = {
        "fabric": {"name": "prop", "profile": "default"},
        "profiles": {"default": {"families": ["ipv4", "ipv6"], "password": "md5",
                                 "timers": {"hold": 9, "keepalive": 3}}},
        "secrets": {"md5": {"env": "BGPGEN_PROP_MD5"}},
        "racks": [{"name": f"r{r}"} for r in range(RACKS)],
        "cluster": {"name": "prop", "pod_cidrs": ["10.0.0.0/16", "2001:db8:a::/48"],
                    "node_mask": {"ipv4": 24, "ipv6": 64}, "service_cidrs": ["10.96.0.0/16"],
                    "vip_pools": [{"name": "pub", "cidr": "203.0.113.0/24"}]},
        "node_groups": [{"name": "g-r0", "rack": "r0", "speaker": "gobgp", "asn": 65100}],
        "sessions": [{"node": "n1-0", "switch": "tor-r1-a", "passive": "switch"}],
    }
    switches = []
    for r in range(3):
        for side in (0, 1):
            switches.append({"name": f"tor-r{r}-{'ab'[side]}", "platform": "frr", "rack": f"r{r}",
                             "asn": 64600 + 2 * r + side,
                             "peering": [f"10.1.{2 * r + side}.1/24",
                                         f"fd00:{r + 1}::{side + 1}/64"],
                             "mgmt": {"host": f"198.51.100.{200 + 2 * r + side}"}})
    switches.append({"name": "rs-r3", "platform": "gobgp", "rack": "r3", "asn": 64700,
                     "router_id": "10.255.0.1", "peering": ["10.1.6.1/24"],
                     "mgmt": {"host": "198.51.100.250"}})
    docs: Docs = {"fabric.yaml": fabric, "switches.yaml": {"switches": switches}}
    for r in range(RACKS):
        docs[f"nodes-r{r}.yaml"] = {"nodes": [_node(r, k) for k in range(PER_RACK)]}
    if not split:  # one file of every node: only its edited entries are assembled again
        docs["nodes-all.yaml"] = {"nodes": [n for r in range(RACKS)
                                            for n in docs.pop(f"nodes-r{r}.yaml")["nodes"]]}
    return docs


class _Indented(yaml.SafeDumper):
    """Sequences indented under their key (``nodes:`` then ``  - name: ...``)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


#: how a file of nodes is written (bgpgen.node_chunks cuts each at its entries, or refuses to):
#: as PyYAML writes it, sequences indented, comments between and inside entries, no newline at
#: the end, a quoted scalar spanning lines with a line in it that looks like an entry's start
#: (PyYAML reads it), an anchor and an alias
STYLES = ("plain", "indented", "comments", "no-newline", "quote", "alias")


def _text(doc: dict[str, Any], style: str) -> str:
    if style == "indented":
        return yaml.dump(doc, Dumper=_Indented, sort_keys=False)
    text = yaml.safe_dump(doc, sort_keys=False)
    if "nodes" not in doc or len(doc) > 1:
        return text
    if style == "comments":
        text = text.replace("\n- name: n", "\n# next\n- name: n").replace(
            "\n  rack:", "\n  # its rack\n  rack:")
    elif style == "no-newline":
        text = text.rstrip("\n")
    elif style == "quote":  # in the first entry, after its name
        first = text.index("\n", text.index("\n- name: ") + 1)
        text = text[:first] + '\n  description: "a\n- name: b"' + text[first:]
    elif style == "alias":
        text = text.replace("\n  mgmt:\n", "\n  mgmt: &m\n", 1)
    return text


def _write(inv: Path, docs: Docs, styles: dict[str, str] | None = None) -> None:
    for f in inv.glob("*.yaml"):
        if f.name not in docs:
            f.unlink()
    for name, doc in docs.items():
        text = _text(doc, (styles or {}).get(name, "plain"))
        if not (inv / name).exists() or (inv / name).read_text() != text:
            (inv / name).write_text(text)


def _nodes(docs: Docs) -> list[tuple[str, int, dict[str, Any]]]:
    return [(f, i, n) for f, d in docs.items() for i, n in enumerate(d.get("nodes", []))]


def _edit(rng: random.Random, docs: Docs, fresh: list[int]) -> str:
    """One random edit of ``docs`` in place; returns its name."""
    nodes = _nodes(docs)
    f, i, n = rng.choice(nodes)
    _, _, other = rng.choice(nodes)
    fresh[0] += 1
    new = fresh[0]
    kind = rng.choice(["pod"] * 6 + ["add"] * 3 + ["remove", "rename", "move-rack", "asn",
                       "speaker", "move-file"] * 2 + ["pod-taken", "pod-outside", "pod-length",
                       "peer-taken", "peer-subnet", "peer-overlap", "mgmt-taken",
                       "router-id-taken", "rename",
                       "rename-taken", "remove", "add", "move-file", "move-rack", "asn",
                       "asn-reserved", "token", "schema", "vip-outside", "speaker", "switch",
                       "group", "file-drop", "file-add", "not-only-nodes", "explicit-node",
                       "duplicate", "asn-nan"])
    if kind == "pod":
        n["pod_cidrs"][0] = f"10.0.{100 + new % 150}.0/24"
    elif kind == "pod-taken":
        n["pod_cidrs"][0] = other["pod_cidrs"][0]
    elif kind == "pod-outside":
        n["pod_cidrs"][0] = "10.9.0.0/24"
    elif kind == "pod-length":
        n["pod_cidrs"][0] = f"10.0.{100 + new % 150}.0/25"
    elif kind == "peer-taken":
        n["peering"][0] = other["peering"][0]
    elif kind == "peer-subnet":
        n["peering"][0] = f"10.2.{new % 200}.5/24"
    elif kind == "peer-overlap":
        n["peering"][0] = "10.96.3.5/24"
    elif kind == "mgmt-taken":
        n["mgmt"] = dict(other["mgmt"])
    elif kind == "router-id-taken":
        n["router_id"] = other["peering"][0].split("/")[0]
    elif kind == "rename":
        n["name"] = f"x{new}"
    elif kind == "rename-taken":
        n["name"] = other["name"]
    elif kind == "remove":
        del docs[f]["nodes"][i]
    elif kind in ("add", "move-rack", "file-add"):
        r = rng.randrange(1, RACKS)
        k = 20 + new % 100
        added = _node(r, k % 20, name=f"x{new}")
        added["peering"] = [p.replace(f".{10 + k % 20}/", f".{k + 100}/")
                            .replace(f"::{10 + k % 20:x}/", f"::{k + 100:x}/")
                            for p in added["peering"]]
        added["mgmt"] = {"host": f"100.64.{new // 250}.{new % 250}"}
        added["pod_cidrs"] = [f"10.0.{100 + new % 150}.0/24"] + (
            [f"2001:db8:a:{0x100 + new:x}::/64"] if r < 3 else [])
        if kind == "file-add":
            docs[f"nodes-x{new}.yaml"] = {"nodes": [added]}
        elif kind == "add":
            docs[f]["nodes"].append(added)
        else:
            docs[f]["nodes"][i] = added
    elif kind == "duplicate":  # the same entry twice (pasted): its name is taken
        docs[rng.choice([k for k, d in docs.items() if "nodes" in d])]["nodes"].append(
            copy.deepcopy(n))
    elif kind == "move-file":
        del docs[f]["nodes"][i]
        target = rng.choice([k for k, d in docs.items() if "nodes" in d])
        docs[target]["nodes"].append(n)
    elif kind == "asn":
        n["asn"] = 65500 + new % 400
    elif kind == "asn-reserved":
        n["asn"] = 23456
    elif kind == "asn-nan":  # orjson writes NaN as null: never the snapshot's entry
        n["asn"] = float("nan")
    elif kind == "token":
        n["description"] = "uses <secret:md5>"
    elif kind == "schema":
        n["colour"] = "red"
    elif kind == "vip-outside":
        n["vips"] = ["198.18.0.1"]
    elif kind == "speaker":
        if "speaker" in n:
            n["speaker"] = "bird" if n["speaker"] == "gobgp" else "gobgp"
    elif kind == "switch":
        docs["switches.yaml"]["switches"][new % 7]["asn"] = 64800 + new % 100
    elif kind == "group":
        docs["fabric.yaml"]["node_groups"][0]["asn"] = 65100 + new % 50
    elif kind == "file-drop":
        files = [k for k in docs if k.startswith("nodes-")]
        if len(files) > 1:  # never the last file of nodes
            docs.pop(rng.choice(files))
    elif kind == "not-only-nodes":
        docs[f]["profiles"] = {f"extra{new}": {"families": ["ipv4"]}}
    elif kind == "explicit-node":
        n["pod_cidrs"][0] = f"10.0.{100 + new % 150}.0/24"
        docs["fabric.yaml"]["sessions"][0]["node"] = n["name"]
    return kind


def _load(inv: Path) -> Fabric | str:
    try:
        return load_fabric(inv)
    except InventoryError as exc:
        return str(exc)


def _full(inv: Path) -> Fabric | str:
    old = os.environ["BGPGEN_CACHE_DIR"]
    os.environ["BGPGEN_CACHE_DIR"] = "off"
    try:
        return _load(inv)
    finally:
        os.environ["BGPGEN_CACHE_DIR"] = old


@pytest.mark.parametrize("seed,split", [(1, True), (2, True), (3, False)])
def test_a_patched_model_equals_the_full_build(tmp_path: Path, seed: int, split: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BGPGEN_CACHE_DIR", str(tmp_path / "cache"))
    patched: list[int] = []  # node entries assembled again by each patch
    real = model_cache._patch

    def counting(*args: Any) -> Any:
        got = real(*args)
        if got is not None:
            patched.append(got[-1])
        return got

    monkeypatch.setattr(model_cache, "_patch", counting)
    skipped: list[int] = []  # entries of an edited file not parsed again (their chunk matched)
    read_nodes = model_cache._read_nodes

    def reading(*args: Any) -> Any:
        got = read_nodes(*args)
        if got is not None and got[1].chunks is not None:
            skipped.append(len(got[1].nodes) - len(got[0]))
        return got

    monkeypatch.setattr(model_cache, "_read_nodes", reading)
    rng = random.Random(seed)
    inv = tmp_path / "inv"
    inv.mkdir()
    docs = _inventory(split)
    styles: dict[str, str] = {}

    def write() -> None:
        for name in docs:
            if name not in styles or rng.random() < 0.03:
                styles[name] = rng.choice(STYLES)
        _write(inv, docs, styles)

    write()
    assert isinstance(_load(inv), Fabric)  # the inventory as made is clean
    good = copy.deepcopy(docs)
    seen: dict[str, int] = {}
    fresh = [0]
    for step in range(150):
        kind = _edit(rng, docs, fresh)
        write()
        got, want = _load(inv), _full(inv)
        if isinstance(want, str):
            assert got == want, (step, kind)
            seen["problem"] = seen.get("problem", 0) + 1
            if kind in UNDONE or rng.random() < 0.7:
                docs = copy.deepcopy(good)  # back to the last clean inventory, mostly
            continue
        assert isinstance(got, Fabric), (step, kind, got)
        assert got == want, (step, kind)
        assert inputs.digests(got, "t") == inputs.digests(want, "t"), (step, kind)
        seen[kind] = seen.get(kind, 0) + 1
        if kind in UNDONE:
            docs = copy.deepcopy(good)  # checked; undone, so that later edits can be patched
        else:
            good = copy.deepcopy(docs)
    patches = [n for n in patched if n > 0]
    assert len(patches) >= 15, (len(patches), seen)  # the patch path was really taken
    assert len([n for n in skipped if n > 0]) >= 10, skipped  # and parsed only what changed
    assert seen.get("problem", 0) >= 20, seen


def test_a_damaged_or_foreign_snapshot_is_no_snapshot(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot that cannot be read is built again (never an error); a cache directory that
    others can write to is not used."""
    from bgpgen import parse_cache
    cache = tmp_path / "cache"
    monkeypatch.setenv("BGPGEN_CACHE_DIR", str(cache))
    inv = tmp_path / "inv"
    inv.mkdir()
    _write(inv, _inventory())
    first = load_fabric(inv)
    [entry] = (cache / "models").iterdir()
    assert entry.stat().st_mode & 0o077 == 0
    built: list[int] = []
    real = model_cache._snapshot
    monkeypatch.setattr(model_cache, "_snapshot", lambda *a: built.append(1) or real(*a))
    again = load_fabric(inv)
    assert again == first and built == []  # from the snapshot, whole: indexes and digests too
    assert again.inputs == inputs.fabric_digests(first) and len(again.inputs) == 27
    assert [again.sessions_of(d.name) for d in again.devices] == \
        [first.sessions_of(d.name) for d in first.devices]
    assert [n.prefixes("ipv6") for n in again.nodes] == [n.prefixes("ipv6") for n in first.nodes]
    for garbage in (b"", b"\x00garbage", b"\x80\x05K\x01."):  # empty, not a pickle, an int
        entry.write_bytes(garbage)
        assert load_fabric(inv) == first
    assert len(built) == 3
    os.chmod(cache / "models", 0o777)
    assert parse_cache.directory("models") is None
    assert load_fabric(inv) == first and len(built) == 3  # built in full, not kept


@pytest.mark.parametrize("edit", ["remove-last", "remove-second", "change-second"])
def test_entries_are_matched_only_by_a_cut_that_is_the_files_structure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: str) -> None:
    """A file whose cut is not its structure (a quoted scalar spanning lines, with a line in it
    that looks like an entry's start: six chunks for five entries) is never matched chunk by
    chunk: matched by position, its chunks would name the wrong nodes (a node removed would
    stay)."""
    monkeypatch.setenv("BGPGEN_CACHE_DIR", str(tmp_path / "cache"))
    inv = tmp_path / "inv"
    inv.mkdir()
    docs = _inventory(split=False)
    [nodes] = [k for k in docs if "nodes" in docs[k]]
    styles = {nodes: "quote"}
    _write(inv, docs, styles)
    assert isinstance(_load(inv), Fabric)
    entries = docs[nodes]["nodes"]
    if edit == "remove-last":
        entries.pop()
    elif edit == "remove-second":
        entries.pop(1)
    else:
        entries[1]["pod_cidrs"][0] = "10.0.99.0/24"
    _write(inv, docs, styles)
    got, want = _load(inv), _full(inv)
    assert isinstance(want, Fabric) and got == want
    assert inputs.digests(got, "t") == inputs.digests(want, "t")


def test_files_of_nodes_are_cut_at_their_entries() -> None:
    from bgpgen.node_chunks import cut
    assert cut(b"nodes:\n- name: a\n  rack: r\n- name: b\n") == \
        [b"- name: a\n  rack: r\n", b"- name: b\n"]
    assert cut(b"# nodes of r1\n\nnodes:  # all\n  - name: a\n    x: [1, 2]\n# c\n  - name: b") \
        == [b"  - name: a\n    x: [1, 2]\n# c\n", b"  - name: b"]
    assert cut(b"nodes:\n-\n  name: a\n- name: b\n") == [b"-\n  name: a\n", b"- name: b\n"]
    for refused in (b"nodes: []\n", b"nodes:\n", b"", b"nodes:\n- a\nswitches: []\n",
                    b"---\nnodes:\n- name: a\n", b"nodes:\n- name: a\n---\n- name: b\n",
                    b"\xef\xbb\xbfnodes:\n- name: a\n", b"nodes:\r\n- name: a\r\n",
                    b"nodes:\n- name: a\n\t\n", b"nodes:\n- &x name: a\n- *x\n",
                    b"%YAML 1.2\n---\nnodes:\n- a\n", b"nodes: !!seq\n- a\n",
                    b"nodes:\n  - a\n - b\n", b"switches:\n- a\n"):
        assert cut(refused) is None, refused
