"""Incremental model stage: the last model of an inventory directory, kept between runs, so that
an edit to a few nodes costs a few nodes, not the fleet.

After a full, clean build (:func:`bgpgen.validate.build`) the model is kept as a
:class:`Snapshot`: the :class:`~bgpgen.model.Fabric` with each device's input digest, the digest
of every inventory file, the node names of each file that holds only ``nodes:``, and what a node
is assembled from besides its own entry (:class:`~bgpgen.assemble.NodeContext`). The next load
compares the files' digests with the snapshot's:

- nothing changed: the snapshot's model is the model;
- only files that hold nothing but nodes changed (edited, added or removed): in those files,
  an entry whose digest is the one the snapshot has for its name is the snapshot's node; the
  others are checked alone (the schema's node definition, the secret tokens) and assembled by
  the same builder, the fleet-wide rules checked against the snapshot's :class:`Index` of the
  other devices (unique names, router-ids, peering and management addresses; peering subnets
  disjoint from each other and from the cluster's ranges; pod CIDRs disjoint), their sessions
  derived, the routes of the nodes they can change derived again (:func:`derive.reroute`), and
  only their devices' and their switches' input digests computed again;
- anything else (a switch, a profile, a group, the fabric or cluster changed; an explicit
  ``sessions:`` entry names a node that changed; more than :data:`MAX_SHARE` of the nodes and
  more than :data:`MIN_PATCH` entries changed; any problem at all): the full build, which
  reports problems exactly as before.

The result is equal to a full build's (a property test compares the two over random edits). The
snapshot lives beside the parse cache (same directory rules: the user's own, 0700;
``BGPGEN_CACHE_DIR=off`` turns both off), named by bgpgen's code and the inventory directory;
the :data:`KEEP` most recent are kept. A snapshot that cannot be read is ignored.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from . import assemble, derive, inputs, loader, node_chunks, parse_cache
from .assemble import NodeContext, Parts
from .errors import InventoryError
from .loader import Source
from .model import Device, Fabric, Node, Session, Switch
from .netutil import Network, span
from .platforms import spec
from .problems import Collector

FORMAT = b"bgpgen-model 2"
KEEP = 4  #: snapshots kept (one per inventory directory)
MAX_SHARE = 0.25  #: beyond this share of the nodes changed, the full build is as quick
MIN_PATCH = 64  #: node entries a patch may always take (what a small inventory changes at once)
SAVE_SHARE = 0.02  #: a patch touching more than this share of the nodes is kept as the snapshot


@dataclass(frozen=True, slots=True)
class FileState:
    """One inventory file as the snapshot saw it."""

    digest: bytes
    #: the names of its nodes when it holds nothing but ``nodes:``; None for any other file
    nodes: tuple[str, ...] | None
    #: its entries' chunk digests (:func:`node_chunks.digests`, in the order of ``nodes``), when
    #: :func:`node_chunks.cut` cuts it
    chunks: bytes | None = None


Span = tuple[int, int, int]  #: (IP version, first address, last address)


@dataclass(frozen=True, slots=True)
class Index:
    """What the fleet-wide rules check a changed node against, kept with the model: each is
    a superset of what the model's devices hold (a patch may leave a subnet of a removed node
    in ``subnets`` and ``shared``: that only sends a later overlapping edit to the full build),
    except ``claims`` and ``pods``, which are exact (a node edited keeps its own)."""

    claims: frozenset[str]   #: :func:`assemble.claims` of every device, as ``kind NUL value``
    pods: tuple[Span, ...]   #: every node's pod CIDR, sorted (pairwise disjoint)
    subnets: frozenset[Span]  #: the peering subnets
    shared: tuple[Span, ...]  #: the peering subnets and the cluster's ranges, sorted, disjoint

    @classmethod
    def of(cls, fabric: Fabric) -> Index:
        c = fabric.cluster
        nets = [*c.pod_cidrs, *c.service_cidrs, *(p.cidr for p in c.vip_pools)]
        subnets = {_span(n) for d in fabric.devices for _, n in assemble.peering_subnets(d)}
        return cls(frozenset(c for d in fabric.devices for c in _claims(d)),
                   tuple(sorted(_span(p) for n in fabric.nodes for p in n.pod_cidrs)),
                   frozenset(subnets), tuple(sorted(subnets | {_span(n) for n in nets})))


def _span(net: Network) -> Span:
    return (net.version, *span(net))


def _claims(d: Device) -> set[str]:
    return {f"{kind}\0{value}" for kind, value, _ in assemble.claims(d)}


@dataclass(frozen=True, slots=True)
class Snapshot:
    files: dict[str, FileState]   #: by file name (files are directly in the directory)
    fabric: Fabric                #: with ``fabric.inputs`` filled for every device
    context: NodeContext
    explicit: frozenset[str]      #: nodes named by explicit ``sessions:`` entries
    entries: dict[str, bytes]     #: each node entry's digest, by name
    index: Index


@dataclass(frozen=True, slots=True)
class Built:
    """A full build with what the snapshot keeps from it."""

    fabric: Fabric
    parts: Parts
    source: Source
    entries: dict[str, bytes]     #: each node entry's digest (:func:`entry_digest`), by name


#: A node entries' check that needs no other entry (the schema, the secret tokens); True: clean.
EntryCheck = Callable[[list[Any]], bool]


def load(root: Path, build: Callable[[Path, dict[Path, bytes] | None, bool], Built],
         check: EntryCheck) -> Fabric:
    """The model of the inventory at ``root``: patched from its snapshot when only files of
    nodes changed, else ``build`` (then kept as the snapshot)."""
    where = parse_cache.directory("models")
    if where is None:
        return build(root, None, False).fabric
    files = loader.inventory_files(root)
    blobs = {f: loader.read_bytes(f) for f in files}
    digests = {f.name: hashlib.sha256(b).digest() for f, b in blobs.items()}
    entry = where / _key(root)
    snap = _read(entry)
    if snap is not None:
        patched = _patch(snap, root, blobs, digests, check)
        if patched is not None:
            fabric, states, entries, index, changed = patched
            if changed > SAVE_SHARE * len(fabric.nodes):
                _save(where, entry, dataclasses.replace(
                    snap, fabric=fabric, files=states, entries=entries, index=index))
            return fabric
    built = build(root, blobs, True)
    _save(where, entry, _snapshot(built, digests, blobs))
    return built.fabric


def _key(root: Path) -> str:
    h = hashlib.sha256(FORMAT + inputs.templates_digest().encode())
    h.update(os.path.abspath(root).encode() + b"\0" + str(root).encode())
    return h.hexdigest()


def _snapshot(built: Built, digests: dict[str, bytes], blobs: dict[Path, bytes]) -> Snapshot:
    parts, src = built.parts, built.source
    assert parts.context is not None
    names: dict[Path, dict[int, str]] = {f: {} for f in src.files}
    where = src.items.get("nodes", [])
    for i, node in parts.nodes:
        f, j = where[i]
        names[f][j] = node.name
    files = {f.name: _state(digests[f.name], blobs[f], names[f])
             if _only_nodes(src.keys.get(f)) else FileState(digests[f.name], None)
             for f in src.files}
    inputs.fabric_digests(built.fabric)
    return Snapshot(files, built.fabric, parts.context,
                    frozenset(raw["node"] for _, raw in parts.sessions), built.entries,
                    Index.of(built.fabric))


def _state(digest: bytes, data: bytes, names: dict[int, str]) -> FileState:
    """A file of nodes as a clean full build read it (``names``: its nodes by their place in
    it): cut into chunks when the cut has one chunk per entry, that is, the file's structure."""
    ordered = tuple(names[j] for j in sorted(names))
    cut = node_chunks.cut(data)
    fits = cut is not None and len(cut) == len(ordered) and sorted(names) == list(range(len(cut)))
    return FileState(digest, ordered, node_chunks.digests(cut) if fits and cut else None)


def entry_digest(raw: Any) -> bytes:
    """A node entry's digest: its JSON, keys sorted. An entry JSON cannot hold gets ``b""``,
    which matches nothing. orjson writes NaN and infinities as ``null``, which no node entry the
    schema accepts holds (``null`` is allowed in profiles only): such an entry never matches a
    clean one either."""
    try:
        return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).digest()
    except TypeError:
        return b""


def _only_nodes(keys: tuple[Any, ...] | None) -> bool:
    return keys is not None and set(keys) <= {"nodes"}


def _patch(snap: Snapshot, root: Path, blobs: dict[Path, bytes], digests: dict[str, bytes],
           check: EntryCheck
           ) -> tuple[Fabric, dict[str, FileState], dict[str, bytes], Index, int] | None:
    """The snapshot's model with the edited files of nodes taken in, the files' states, each
    node entry's digest, the index, and how many entries were assembled again; None when a
    full build is needed.

    In an edited file, an entry with the digest the snapshot has for its name is the node the
    snapshot has (same entry, same context): only the others are checked and assembled."""
    fabric = snap.fabric
    changed = [f for f in blobs if (old := snap.files.get(f.name)) is None
               or old.digest != digests[f.name]]
    gone = [name for name in snap.files if name not in digests]
    if not changed and not gone:
        return fabric, snap.files, snap.entries, snap.index, 0
    before: set[str] = set()  # the nodes of the files edited or gone, as they were
    chunks: dict[bytes, str] = {}  # their entries' chunk digests (node_chunks), when cut
    for name in (*(f.name for f in changed), *gone):
        old = snap.files.get(name)
        if old is not None:
            if old.nodes is None:
                return None
            before.update(old.nodes)
            if old.chunks is not None:
                step = node_chunks.DIGEST
                chunks.update((old.chunks[k * step:(k + 1) * step], label)
                              for k, label in enumerate(old.nodes))
    entries: list[Any] = []
    same: set[str] = set()  # nodes whose entries are as the snapshot has them
    files = {name: state for name, state in snap.files.items() if name in digests}
    for f in changed:
        read = _read_nodes(f, blobs[f], chunks, same)
        if read is None:
            return None
        fresh_raw, state = read
        entries += fresh_raw
        files[f.name] = dataclasses.replace(state, digest=digests[f.name])
    fresh: list[tuple[Any, bytes]] = []
    for raw in entries:
        d = entry_digest(raw)
        label = raw.get("name") if isinstance(raw, dict) else None
        if d and isinstance(label, str) and label in before and label not in same \
                and snap.entries.get(label) == d:
            same.add(label)
        else:
            fresh.append((raw, d))
    removed = before - same
    if len(fresh) + len(removed) > max(MAX_SHARE * len(fabric.nodes), MIN_PATCH):
        return None
    if not check([raw for raw, _ in fresh]):
        return None
    out = Collector(Source(root=root))
    new = [assemble.node(i, raw, snap.context, out) for i, (raw, _) in enumerate(fresh)]
    names = {n.name for n in new}
    if out.problems or len(names) < len(new) or names & same \
            or snap.explicit & (removed | names):
        return None
    kept = [n for n in fabric.nodes if n.name not in removed]
    index = _checked(snap.index, fabric, [fabric.device(name) for name in removed], new, out)
    if index is None:
        return None
    sessions = _sessions(fabric, snap.context, new, out)
    if sessions is None:
        return None
    every = tuple(sorted((*(s for s in fabric.sessions if s.node not in removed), *sessions),
                         key=lambda s: s.id))
    nodes = tuple(sorted((*kept, *new), key=lambda d: d.name))
    switches = {s.name: s for s in fabric.switches}
    result = dataclasses.replace(
        fabric, nodes=nodes, sessions=every,
        routes=derive.reroute(fabric.routes, every, {n.name: n for n in nodes}, switches,
                              _affected(fabric, removed, names, sessions)))
    stale = removed | names | {s.switch for s in sessions}
    stale |= {s.switch for name in removed for s in fabric.sessions_of(name)}
    result.inputs.update((k, v) for k, v in fabric.inputs.items() if k not in stale)
    kept_entries = {k: v for k, v in snap.entries.items() if k not in removed}
    kept_entries.update((n.name, d) for n, (_, d) in zip(new, fresh))
    return result, files, kept_entries, index, len(fresh)


def _read_nodes(f: Path, data: bytes, chunks: dict[bytes, str], same: set[str]
                ) -> tuple[list[Any], FileState] | None:
    """The entries of an edited file of nodes that must be looked at (a chunk whose digest is in
    ``chunks``, a node's chunk as the snapshot saw it, is that node: added to ``same``, not
    parsed), and the file's state (its digest left empty); None when it is not a file of nodes
    or cannot be read. A file :func:`node_chunks.cut` can cut is parsed chunk by chunk, only
    the chunks not in ``chunks``; any other file is parsed whole."""
    cut = node_chunks.cut(data)
    if cut is None:
        try:
            doc = loader.read_file(f, data)
        except InventoryError:
            return None
        if doc is None:
            doc = {}
        if not isinstance(doc, dict) or not _only_nodes(tuple(doc)) \
                or not isinstance(doc.get("nodes", []), list):
            return None
        raws = doc.get("nodes", [])
        return raws, FileState(b"", tuple(
            str(raw.get("name")) for raw in raws if isinstance(raw, dict)))
    labels: list[str | None] = []
    todo: list[bytes] = []
    for c in cut:
        label = chunks.get(node_chunks.digest(c))
        if label is not None and label not in same:
            same.add(label)
        else:
            label = None
            todo.append(c)
        labels.append(label)
    raws = []
    if todo:  # parsed together: one entry per chunk, or the cut was not the file's structure
        try:
            doc = loader.read_file(f, node_chunks.document(todo), cached=False)
        except InventoryError:
            return None
        if not isinstance(doc, dict) or set(doc) != {"nodes"} \
                or not isinstance(doc["nodes"], list) or len(doc["nodes"]) != len(todo) \
                or not all(isinstance(raw, dict) for raw in doc["nodes"]):
            return None
        raws = doc["nodes"]
    fresh = iter(raws)
    names = tuple(label if label is not None else str(next(fresh).get("name"))
                  for label in labels)
    return raws, FileState(b"", names, node_chunks.digests(cut))


def _affected(fabric: Fabric, removed: set[str], names: set[str],
              sessions: list[Session]) -> set[str]:
    """The nodes whose routes may differ (:func:`derive.reroute`): those removed or assembled
    again, and every client of a route server (and family) one of them had or has a session on."""
    affected = removed | names
    servers = {(s.switch, s.family)
               for s in (*sessions, *(x for n in removed for x in fabric.sessions_of(n)))
               if spec(fabric.device(s.switch).platform).route_server}
    for switch, fam in servers:
        affected.update(s.node for s in fabric.sessions_of(switch) if s.family == fam)
    return affected


_END = 1 << 129  # past any address


def _hits(spans: list[Span], item: Span) -> bool:
    """``item`` (version, first, last) overlaps one of ``spans`` (sorted, pairwise disjoint)."""
    v, first, last = item
    i = bisect.bisect_right(spans, (v, first, _END))
    if i > 0 and spans[i - 1][0] == v and spans[i - 1][2] >= first:
        return True
    return i < len(spans) and spans[i][0] == v and spans[i][1] <= last


def _checked(index: Index, fabric: Fabric, removed: list[Device], new: list[Node],
             out: Collector) -> Index | None:
    """The fleet-wide rules for the new nodes against the others (``index`` without the
    ``removed`` nodes), or None when a full build must judge: no claim of another device
    (:func:`assemble._unique`); a peering subnet is one the others have or overlaps nothing
    shared; pod CIDRs inside the cluster's, of its node length, overlapping no other; VIPs in
    pools (:func:`assemble._check_prefixes`). The index with the new nodes in it."""
    taken = set(index.claims)
    pods = list(index.pods)
    for d in removed:
        taken -= _claims(d)
        for p in d.pod_cidrs if isinstance(d, Node) else ():
            i = bisect.bisect_left(pods, _span(p))
            if i == len(pods) or pods[i] != _span(p):
                return None
            del pods[i]
    subnets = set(index.subnets)
    shared = list(index.shared)
    for i, n in enumerate(new):
        mine = _claims(n)
        if mine & taken:
            return None
        taken |= mine
        for item in {_span(net) for _, net in assemble.peering_subnets(n)}:
            if item in subnets:
                continue
            if _hits(shared, item):
                return None
            bisect.insort(shared, item)
            subnets.add(item)
        for tagged in assemble.node_prefixes(i, n, fabric.cluster, out):
            item = _span(tagged.net)
            if _hits(pods, item):
                return None
            bisect.insort(pods, item)
    if out.problems:
        return None
    return Index(frozenset(taken), tuple(pods), frozenset(subnets), tuple(shared))


def _sessions(fabric: Fabric, ctx: NodeContext, new: list[Node],
              out: Collector) -> list[Session] | None:
    """The new nodes' sessions (none of them is named by an explicit entry), None on a problem."""
    switches = {s.name: (0, s) for s in fabric.switches}
    by_rack: dict[str, list[Switch]] = {}
    for sw in fabric.switches:
        if sw.rack is not None:
            by_rack.setdefault(sw.rack, []).append(sw)
    parts = Parts(fabric.name, fabric.description, fabric.cluster, ctx.profiles, {}, fabric.racks)
    found: list[Session] = []
    for i, n in enumerate(new):
        found += derive.node_sessions(parts, out, i, n, by_rack, switches, {}, {})
    return None if out.problems else found


def _read(entry: Path) -> Snapshot | None:
    try:
        with open(entry, "rb") as fh:
            snap = pickle.load(fh)
    except Exception:  # noqa: BLE001 - a cache that cannot be read is no cache, whatever the cause
        return None
    return snap if isinstance(snap, Snapshot) else None


def _save(where: Path, entry: Path, snap: Snapshot) -> None:
    """Keep ``snap`` (atomically), and the :data:`KEEP` most recent snapshots; a failure to
    write is never an error (the next load builds in full)."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".new-")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(snap, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
        tmp = None
        found = sorted((e for e in os.scandir(where) if not e.name.startswith(".")),
                       key=lambda e: e.stat().st_mtime, reverse=True)
        for e in found[KEEP:]:
            os.unlink(e.path)
    except (OSError, pickle.PicklingError):
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


__all__ = ["Built", "FileState", "KEEP", "Snapshot", "load"]
