"""Render stage: the model through Jinja2 templates into artifacts, then into a build directory.

:func:`render` is pure (model in, artifacts out, secrets as tokens). :func:`write` puts a build on
disk atomically: into a temporary sibling directory first, checked there when asked, and only
then swapped into place, so a failure leaves the previous build untouched.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import orjson
import yaml

from . import gctune, inputs
from .artifacts import Artifact, Build
from .derive import route_key
from .errors import Problem, RenderError
from .model import Device, Fabric, Node, Platform, Route, SecretRef, Session
from .netutil import parse_network
from .platforms import REGISTRY, spec
from .platforms.base import Context, FileSpec
from .secrets import fill, fill_named, token


def _shipped_templates() -> Path:
    """The templates that ship with bgpgen: inside the installed package (a wheel copies the
    repository's top-level templates/ there), or templates/ beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    inside = here / "templates"
    return inside if inside.is_dir() else here.parent / "templates"


PACKAGE_TEMPLATES = _shipped_templates()
#: Overrides reach the shipped templates under this prefix: {% extends "bgpgen/frr/frr.conf.j2" %}
SHIPPED_PREFIX = "bgpgen"
MANIFEST = "manifest.json"
#: the build's directory of Kubernetes resources (a name no device can have: devices are DNS
#: labels), one file per speaker kind the cluster runs
KUBERNETES = "_kubernetes"
#: beside the manifest, mode 0600: a digest of the secret values the build's files were filled with
#: (readable only by whoever can read those files), so that a changed secret re-renders its devices
STATE = ".bgpgen-secrets"
FORMAT = 1


def environment(templates: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment: strict, with the escaping filters. ``templates`` overrides files."""
    if templates is not None and not Path(templates).is_dir():
        raise RenderError(Problem(str(templates), "--templates", "is not a directory",
                                  "give a directory laid out like the shipped templates "
                                  "(e.g. DIR/frr/frr.conf.j2)"))
    shipped = jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES))
    loaders: list[jinja2.BaseLoader] = [jinja2.PrefixLoader({SHIPPED_PREFIX: shipped})]
    if templates is not None:
        loaders.insert(0, jinja2.FileSystemLoader(str(templates)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([*loaders, shipped]),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False,
        auto_reload=False)  # a render reads each template once (no stat per file rendered)
    for ps in REGISTRY.values():  # each platform's escaping filters for its own syntax
        env.filters.update(ps.filters)
    return env


# --- rendering --------------------------------------------------------------------------------

class _SecretRecorder:
    """Handed to templates as ``secret(ref)``: returns the token and remembers the name."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, ref: SecretRef) -> str:
        self.used.add(ref.name)
        return token(ref.name)


def _render_file(env: jinja2.Environment, fabric: Fabric, device: Device, fs: FileSpec,
                 ctx: Context, loaded: dict[str, jinja2.Template] | None = None) -> Artifact:
    """One file of a device (``loaded``: templates loaded already, by name, kept there)."""
    if fs.template is None:
        assert fs.build is not None, f"{fs.name}: a FileSpec needs a template or a build"
        return Artifact(device.name, fs.name, fs.target, fs.build(fabric, device))
    recorder = _SecretRecorder()
    try:
        template = None if loaded is None else loaded.get(fs.template)
        if template is None:
            template = env.get_template(fs.template)
            if loaded is not None:
                loaded[fs.template] = template
        text = template.render(fabric=fabric, device=device, secret=recorder,
                               **ctx(fabric, device))
    except RenderError as exc:
        raise RenderError([Problem(fs.template, device.name, p.message, p.hint)
                           for p in exc.problems]) from None
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or fs.template
        line = getattr(exc, "lineno", None)
        raise RenderError(Problem(str(where), device.name, f"template error: {exc}",
                                  "fix the template (see --templates)", line)) from None
    if fs.stamp is not None:
        text = fs.stamp(text)
    return Artifact(device.name, fs.name, fs.target, text, tuple(sorted(recorder.used)))


def render(fabric: Fabric, templates: Path | None = None,
           devices: Collection[str] | None = None) -> Build:
    """Render every device of the fabric (or only ``devices``, by name).

    Deterministic: the same model gives byte-identical artifacts.
    """
    env = environment(templates)
    artifacts: list[Artifact] = []
    with gctune.paused():
        for device in fabric.devices:
            if devices is not None and device.name not in devices:
                continue
            ps = spec(device.platform)
            for fs in ps.files:
                artifacts.append(_render_file(env, fabric, device, fs, ps.context))
        if devices is None:
            artifacts += cluster_artifacts(fabric)
    used = {n for a in artifacts for n in a.secrets}
    return Build(fabric, tuple(artifacts), tuple(s for s in fabric.secrets if s.name in used))


def cluster_artifacts(fabric: Fabric) -> list[Artifact]:
    """The Kubernetes resources of every speaker kind the cluster's nodes run (one YAML file of
    objects per kind, for ``kubectl apply -f``), from the same sessions as the switch side."""
    out = []
    by_platform: dict[Platform, list[Node]] = {}
    for n in fabric.nodes:
        by_platform.setdefault(n.platform, []).append(n)
    for ps in REGISTRY.values():
        nodes = tuple(by_platform.get(ps.platform, ()))
        if ps.resources is None or not nodes:
            continue
        objects = ps.resources(fabric, nodes)
        head = (f"# Generated by bgpgen for cluster {fabric.cluster.name} (fabric {fabric.name}):"
                f" what the {ps.inventory_name} nodes' speaker reads.\n"
                f"# Apply: kubectl apply -f {KUBERNETES}/{ps.inventory_name}.yaml. Passwords are "
                "references to Secrets (bgpgen-NAME, key password), never values.\n")
        text = head + "".join("---\n" + yaml.safe_dump(o, sort_keys=False, width=100)
                              for o in objects)
        out.append(Artifact(KUBERNETES, f"{ps.inventory_name}.yaml", "kubectl apply -f", text))
    return out


def input_digests(fabric: Fabric, templates: Path | None = None) -> dict[str, str]:
    """Each device's input digest (what its files are made of: see :mod:`bgpgen.inputs`)."""
    dirs = (PACKAGE_TEMPLATES,) if templates is None else (PACKAGE_TEMPLATES, Path(templates))
    with gctune.paused():
        return inputs.digests(fabric, inputs.templates_digest(*dirs))


def manifest(build: Build, digests: Mapping[str, str] | None = None,
             kept: Mapping[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The build's manifest: devices with their files and hashes (and input digests, when
    given), sessions, expected routes. ``kept``: the manifest's file entries of devices that were
    not rendered again (their inputs did not change)."""
    return _manifest(build.fabric, _files(build, kept), digests)


def _files(build: Build, kept: Mapping[str, list[dict[str, Any]]] | None
           ) -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = dict(kept or {})
    for a in build.artifacts:
        files.setdefault(a.device, []).append(_entry(a))
    return files


def _entry(a: Artifact, sha256: str | None = None) -> dict[str, Any]:
    """A file's entry in the manifest (``sha256``: of its text, when known already)."""
    return {"name": a.name, "path": a.path, "target": a.target,
            "sha256": sha256 or a.sha256, "mode": f"{a.mode:04o}", "secrets": list(a.secrets)}


def _manifest(f: Fabric, files: Mapping[str, list[dict[str, Any]]],
              digests: Mapping[str, str] | None, stream: bool = False,
              blocks: Mapping[str, _Block | None] | None = None) -> dict[str, Any]:
    """The manifest as a dict; with ``stream``, its devices, sessions and routes are
    :class:`_Stream` values made while they are written (at 100,000 nodes the dicts of a whole
    manifest took some 300 MB). ``blocks``: the devices', sessions' or routes' rows made
    already (:func:`_spliced`)."""
    def device(d: Device) -> tuple[str, dict[str, Any]]:
        return d.name, _device_row(d, files, digests)

    kube = list(files.get(KUBERNETES, []))
    devices = (device(d) for d in sorted(f.devices, key=lambda d: d.name))
    sessions = (_session_row(s) for s in f.sessions)
    routes = ({"prefix": str(r.prefix), "origin": r.origin, "next_hop": str(r.next_hop),
               "seen_by": r.seen_by, "session": r.session, "kind": r.kind} for r in f.routes)
    out: dict[str, Any] = {"generator": "bgpgen", "format": FORMAT, "fabric": f.name}
    if stream:  # routes as they are (Route's fields are the manifest's keys, in their order)
        made = blocks or {}
        out.update(devices=made.get("devices") or _Stream(devices, True),
                   sessions=made.get("sessions") or _Stream(sessions, False),
                   routes=made.get("routes") or _Stream(iter(f.routes), False))
    else:
        out.update(devices=dict(devices), sessions=list(sessions), routes=list(routes))
    if kube:
        out["kubernetes"] = kube
    return out


def _device_row(d: Device, files: Mapping[str, list[dict[str, Any]]],
                digests: Mapping[str, str] | None) -> dict[str, Any]:
    entry = {
        "role": d.role.value, "platform": d.platform.value, "asn": d.asn,
        "router_id": d.router_id, "rack": d.rack, "bgp_port": d.bgp_port,
        "api_port": d.api_port,
        "mgmt": None if d.mgmt is None else
        {"host": d.mgmt.host, "port": d.mgmt.port, "user": d.mgmt.user},
        "netmiko_device_type": spec(d.platform).netmiko_device_type,
        "files": files.get(d.name, [])}
    if digests is not None:
        entry["inputs"] = digests[d.name]
    return entry


def _session_row(s: Session) -> dict[str, Any]:
    return {"id": s.id, "node": s.node, "switch": s.switch, "family": s.family,
            "node_address": str(s.node_address), "switch_address": str(s.switch_address),
            "node_asn": s.node_asn, "switch_asn": s.switch_asn, "node_port": s.node_port,
            "switch_port": s.switch_port, "profile": s.profile.name,
            "passive": s.passive.value, "hold_time": s.profile.timers.hold,
            "password": token(s.profile.password.name) if s.profile.password else None}


@dataclass(frozen=True, slots=True)
class _Block:
    """A mapping's or a list's rows, made already: pieces of UTF-8 text (runs of the previous
    manifest's rows, new rows), to be joined by a comma and a newline. :func:`manifest_lines`
    yields it as it is among its strings, for the writer to expand (:func:`_manifest_parts`)."""

    pieces: list[bytes | memoryview]
    mapping: bool


@dataclass(slots=True)
class _Stream:
    """A manifest value written as it is made: a mapping's items in key order, or a list's
    elements."""

    items: Iterator[Any]
    mapping: bool


_END: Any = object()


def manifest_lines(data: dict[str, Any]) -> Iterator[str]:
    """The lines of :func:`dump_manifest`, made one at a time (nothing else held)."""
    yield "{"
    keys = sorted(data)
    for i, key in enumerate(keys):
        value = data[key]
        tail = "," if i < len(keys) - 1 else ""
        items: Iterator[Any]
        if isinstance(value, _Block):
            opening, closing = "{}" if value.mapping else "[]"
            if not value.pieces:
                yield f"{_json(key)}: {opening}{closing}{tail}"
                continue
            yield f"{_json(key)}: {opening}"
            yield value  # type: ignore[misc]
            yield closing + tail
            continue
        if isinstance(value, _Stream):
            items, mapping = value.items, value.mapping
        elif isinstance(value, dict):
            items, mapping = iter(sorted(value.items())), True
        elif isinstance(value, list):
            items, mapping = iter(value), False
        else:
            yield f"{_json(key)}: {_json(value)}{tail}"
            continue
        prev = next(items, _END)
        if prev is _END:
            yield f"{_json(key)}: {'{}' if mapping else '[]'}{tail}"
            continue
        yield f"{_json(key)}: {'{' if mapping else '['}"
        if not mapping:
            yield from _elements(itertools.chain((prev,), items))
            yield "]" + tail
            continue
        for item in items:
            yield (f" {_json(prev[0])}: {_json(prev[1])}," if mapping else f" {_json(prev)},")
            prev = item
        yield f" {_json(prev[0])}: {_json(prev[1])}" if mapping else f" {_json(prev)}"
        yield ("}" if mapping else "]") + tail
    yield "}"


def dump_manifest(data: dict[str, Any]) -> str:
    """JSON with one device, session or route per line: diffable, and fast (orjson encodes each
    line; the standard library's encoder took 0.28 s of a 10,000-node re-render).

    >>> print(dump_manifest({"b": [1, {"y": 1, "x": "é"}], "a": {"x": {"y": 1}}}), end="")
    {
    "a": {
     "x": {"y":1}
    },
    "b": [
     1,
     {"x":"é","y":1}
    ]
    }
    """
    return "\n".join(manifest_lines(data)) + "\n"


def _elements(items: Iterator[Any]) -> Iterator[str]:
    """A list's elements, a line each (the last without its comma), encoded a chunk at a time:
    one orjson call for 4,096 flat rows, split into lines where one ends and the next starts
    (``},{``, found exactly between the rows when no value holds it; else a call per row)."""
    prev = None
    while chunk := list(itertools.islice(items, 4096)):
        if prev is not None:
            yield prev + ","
        blob = orjson.dumps(chunk, default=_text, option=orjson.OPT_SORT_KEYS)
        if all(type(x) in _FLAT for x in chunk) and blob.count(b"},{") == len(chunk) - 1:
            prev = " " + blob[1:-1].replace(b"},{", b"},\n {").decode()
        else:
            prev = ",\n".join(f" {_json(x)}" for x in chunk)
    if prev is not None:
        yield prev


_FLAT = (dict, Route)  #: rows whose values hold no object or list


def _text(value: Any) -> str:
    """orjson's fallback: addresses and networks as they print."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
                          ipaddress.IPv6Network)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_text, option=orjson.OPT_SORT_KEYS).decode()


# --- writing ----------------------------------------------------------------------------------

def _read_manifest(path: Path) -> Any:
    """The parsed manifest.json of ``path`` (None if unreadable), without its sessions and
    routes (see :func:`_heads`), read once per version of the file: a check of the output
    directory and a plan against it share one parse (the last two manifests are kept)."""
    return _read_head(path)[0]


def _read_head(path: Path) -> tuple[Any, bytes]:
    """:func:`_read_manifest`'s value and the text it was parsed from."""
    data, head, _ = _read_whole(path)
    return data, head


def _read_whole(path: Path) -> tuple[Any, bytes, bytes]:
    """:func:`_read_head`, and the manifest's whole text (read anyway: kept for
    :func:`_old_rows`)."""
    try:
        st = os.stat(path / MANIFEST)
    except OSError:
        return None, b"", b""
    key = (str(path.resolve() / MANIFEST), st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _MANIFESTS:
        head = text = b""
        try:
            with gctune.paused():
                text = (path / MANIFEST).read_bytes()
                head = _heads(text)
                data = orjson.loads(head)
        except (OSError, ValueError):  # orjson.JSONDecodeError is a ValueError
            data = None
        if len(_MANIFESTS) >= 2:  # a build's and the one it is compared with or replaces
            _MANIFESTS.pop(next(iter(_MANIFESTS)))
        _MANIFESTS[key] = (data, head, text)
    return _MANIFESTS[key]


_MANIFESTS: dict[tuple[str, int, int, int], tuple[Any, bytes, bytes]] = {}


def _old_block(text: bytes, key: str, mapping: bool = False) -> tuple[int, int] | None:
    r"""Where the rows of the list (or ``mapping``) ``key`` are in a manifest's text as
    :func:`dump_manifest` writes it (start and end: they are used in place, never copied: at
    100,000 nodes they are 172 MB); None when the text has not that layout.

    >>> text = b'{\n"a": [],\n"routes": [\n {"x":1},\n {"x":2}\n],\n"z": 1\n}\n'
    >>> start, end = _old_block(text, "routes")
    >>> text[start:end]
    b' {"x":1},\n {"x":2}'
    """
    opening, closing = (b"{", b"}") if mapping else (b"[", b"]")
    head = b'\n"' + key.encode() + b'": ' + opening + b"\n"
    start = text.find(head)
    if start < 0:
        empty = b'\n"' + key.encode() + b'": ' + opening + closing
        return (0, 0) if text.find(empty) >= 0 else None
    end = text.find(b"\n" + closing, start + len(head))
    return None if end < 0 else (start + len(head), end)


#: how a row names a device (orjson's compact JSON, keys sorted): a device's row starts with
#: its name; a session's row names its node, a route's its originator and its receiver
_DEVICE_ROW = (b'\n "%s": {',)
_SESSION_ROW = (b'"node":"%s"',)
_ROUTE_ROW = (b'"origin":"%s"', b'"seen_by":"%s"')
MAX_MOVED = 256  #: devices whose rows are looked for one by one; beyond, all rows are encoded


def _string(row: bytes, key: bytes) -> str:
    """A string field of a row (compact JSON, no escapes: names and ids have none)."""
    at = row.index(b'"' + key + b'":"') + len(key) + 4
    return row[at:row.index(b'"', at)].decode()


def _device_key(row: bytes) -> Any:
    return row[2:row.index(b'": {')].decode()


def _session_key(row: bytes) -> Any:
    return _string(row, b"id")


def _route_key(row: bytes) -> Any:
    prefix = parse_network(_string(row, b"prefix"))
    return (_string(row, b"seen_by"), prefix.version, int(prefix.network_address),
            prefix.prefixlen, _string(row, b"origin"), _string(row, b"session"))


@dataclass(frozen=True, slots=True)
class _OldRows:
    """A part of the previous manifest, in place in its ``text`` (``start`` to ``end``: rows
    are lines, joined by a comma and a newline, sorted by ``key``), and how many rows it has."""

    text: bytes
    start: int
    end: int
    count: int
    key: Callable[[bytes], Any]

    @classmethod
    def of(cls, text: bytes, name: str, key: Callable[[bytes], Any],
           mapping: bool = False) -> _OldRows | None:
        where = _old_block(text, name, mapping)
        if where is None:
            return None
        start, end = where
        return cls(text, start, end, text.count(b"\n", start, end) + 1 if end > start else 0,
                   key)

    def row(self, at: int) -> tuple[int, int]:
        """The row that holds offset ``at``: where it starts and where it ends (its comma, or
        the end of the last row)."""
        first = self.text.rfind(b"\n", self.start, at) + 1 or self.start
        last = self.text.find(b"\n", at, self.end)
        return max(first, self.start), (self.end if last < 0 else last - 1)

    def naming(self, marks: tuple[bytes, ...], names: set[str]) -> set[tuple[int, int]]:
        """The rows that name one of ``names`` (each found by searching for it)."""
        found = set()
        for name in names:
            for mark in marks:
                needle = mark % name.encode()
                at = self.text.find(needle, self.start - 1, self.end)
                while at >= 0:
                    found.add(self.row(at + 1 if needle[:1] == b"\n" else at))
                    at = self.text.find(needle, at + 1, self.end)
        return found

    def before(self, key: Any) -> int:
        """Where a row of ``key`` goes: the start of the first row whose key is greater (a
        binary search over the text), or the end."""
        lo, hi = self.start, self.end  # the answer is a row start in [lo, hi]
        while lo < hi:
            first, last = self.row((lo + hi) // 2)
            if self.key(self.text[first:last]) > key:
                hi = first
            else:
                lo = last + 2 if last + 2 <= self.end else self.end
        return lo


def _spliced_devices(text: bytes, f: Fabric, moved: set[str],
                     files: Mapping[str, list[dict[str, Any]]],
                     digests: Mapping[str, str]) -> _Block | None:
    """The manifest's devices, the rows of those not ``moved`` taken from the previous
    manifest's ``text`` (:func:`_spliced`)."""
    old = _OldRows.of(text, "devices", _device_key, mapping=True)
    devices = sorted(f.devices, key=lambda d: d.name)

    def encode(ds: list[Device]) -> list[bytes]:
        return [b" " + orjson.dumps(d.name) + b": " + orjson.dumps(
            _device_row(d, files, digests), default=_text, option=orjson.OPT_SORT_KEYS)
            for d in ds]
    return _spliced(old, _DEVICE_ROW, moved, devices, lambda d: d.name in moved,
                    lambda d: d.name, encode, True)


def _spliced_sessions(text: bytes, f: Fabric, moved: set[str]) -> _Block | None:
    """The manifest's sessions, the rows of nodes not ``moved`` taken from the previous
    manifest's ``text`` (:func:`_spliced`)."""
    return _spliced(_OldRows.of(text, "sessions", _session_key), _SESSION_ROW, moved,
                    f.sessions, lambda s: s.node in moved, lambda s: s.id,
                    lambda xs: _rows([_session_row(s) for s in xs]))


def _spliced_routes(text: bytes, f: Fabric, moved: set[str]) -> _Block | None:
    """The manifest's routes, the rows whose originator and receiver are both not ``moved``
    taken from the previous manifest's ``text`` (:func:`_spliced`)."""
    return _spliced(_OldRows.of(text, "routes", _route_key), _ROUTE_ROW, moved, f.routes,
                    lambda r: r.origin in moved or r.seen_by in moved, route_key, _rows)


def _rows(values: list[Any]) -> list[bytes]:
    """List elements as :func:`_elements` writes them, a row each."""
    return [row.encode() for chunk in _elements(iter(values))
            for row in chunk.rstrip(",").split(",\n")]


def _spliced(old: _OldRows | None, marks: tuple[bytes, ...], moved: set[str],
             new: Sequence[Any], moves: Callable[[Any], bool], key: Callable[[Any], Any],
             encode: Callable[[list[Any]], list[bytes]], mapping: bool = False) -> _Block | None:
    """A part of the manifest (devices, sessions or routes, sorted by ``key``) made from the
    previous manifest's rows (``old``) where they are as they were.

    A row that names none of the devices whose input digest changed, or that are new or gone
    (``moved``: a new row ``moves`` when it names one), is the same row in both, in the same
    order (a device's input digest covers the device, its sessions and their other ends, which
    is all that such a row is made of). The old rows that name a moved device are found by
    searching for each name (``marks``), dropped; only the new rows that name one are encoded
    (``encode``), each placed by a binary search of the old rows by ``key``. None (encode
    them all) when there is no previous manifest, too many devices moved, a name would be
    escaped, or the old rows do not hold exactly as many unmoved rows as the new."""
    if old is None or len(moved) > MAX_MOVED or any('"' in n or "\\" in n for n in moved):
        return None
    dropped = sorted(old.naming(marks, moved))
    fresh = [x for x in new if moves(x)]
    if old.count - len(dropped) + len(fresh) != len(new):
        return None
    try:  # a row without its key (a manifest edited by hand): not trusted
        places = [old.before(key(x)) for x in fresh]
    except ValueError:
        return None
    encoded = encode(fresh)
    events = sorted([(place, 0, j) for j, place in enumerate(places)]
                    + [(first, 1, last) for first, last in dropped])
    view = memoryview(old.text)
    pieces: list[bytes | memoryview] = []
    at = old.start  # the start of the first old row neither placed nor dropped yet
    for where, drop, what in events:
        if where > at:  # the rows up to there (without the ",\n" after the last)
            pieces.append(view[at:where - 2 if where < old.end else old.end])
        if drop:
            at = what + 2  # past the row (``what``: where its "," is) and its ",\n"
        else:
            pieces.append(encoded[what])
            at = where
    if at < old.end:
        pieces.append(view[at:old.end])
    return _Block(pieces, mapping)


def _manifest_parts(lines: Iterator[str | _Block]) -> Iterator[bytes | memoryview]:
    """:func:`manifest_lines`' lines as UTF-8, each block's pieces in place (not joined)."""
    for line in lines:
        if isinstance(line, _Block):
            for k, piece in enumerate(line.pieces):
                if k:
                    yield b",\n"
                yield piece
        else:
            yield line.encode()
        yield b"\n"


def _heads(text: bytes) -> bytes:
    r"""A manifest's text with its sessions and routes left out (empty lists): neither a
    re-render nor a plan against a build reads them, and at 10,000 nodes they are two thirds of
    its bytes. Found by the layout :func:`dump_manifest` writes (a top-level key starts a line,
    an element never does); text in another layout is returned whole. The parts kept are
    copied once (at 100,000 nodes the text is 172 MB, 75 MB of it kept).

    >>> _heads(b'{\n"a": 1,\n"routes": [\n {"x": 1},\n {"x": 2}\n],\n"sessions": [\n 1\n]\n}\n')
    b'{\n"a": 1,\n"routes": [],\n"sessions": []\n}\n'
    """
    kept: list[bytes] = []
    at = 0
    for key in (b"routes", b"sessions"):
        head = b'\n"' + key + b'": [\n'
        start = text.find(head, at)
        end = text.find(b"\n]", start + len(head)) if start >= 0 else -1
        if end >= 0:
            kept += [text[at:start], b'\n"' + key + b'": [']
            at = end + 1
    return b"".join(kept) + text[at:] if kept else text


def is_build_dir(path: Path) -> bool:
    """True when ``path`` holds a previous bgpgen build (so replacing it loses nothing)."""
    data = _read_manifest(path)
    return isinstance(data, dict) and data.get("generator") == "bgpgen"


def check_output_dir(out: Path, fabric: str | None = None, force: bool = False) -> None:
    """Refuse to replace a directory that is neither empty nor a previous build, or (unless
    ``force``) the build of another fabric."""
    if out.exists() and not out.is_dir():
        raise RenderError(Problem(str(out), "", "exists and is not a directory",
                                  "choose another -o DIR"))
    if out.is_dir() and any(out.iterdir()) and not is_build_dir(out):
        raise RenderError(Problem(str(out), "", "is not empty and holds no bgpgen manifest.json: "
                                  "refusing to replace it", "choose an empty or new -o DIR"))
    if fabric is not None and not force and is_build_dir(out):
        other = load_manifest(out).get("fabric")
        if other != fabric:
            raise RenderError(Problem(str(out), "", f"holds the build of fabric {other}, not "
                                      f"{fabric}: refusing to replace it", "render into "
                                      "another -o DIR, or pass --force to replace it"))


def write(build: Build, out: Path, values: Mapping[str, str] | None = None,
          check: Callable[[Path], None] | None = None, force: bool = False,
          digests: Mapping[str, str] | None = None) -> Path:
    """Write a build to ``out`` atomically. ``values`` fills secret tokens (None: keep tokens).

    ``check`` runs on the temporary directory before it replaces ``out``; if it raises, nothing
    is replaced and the temporary directory is removed. ``digests`` (each device's input digest)
    go into the manifest, so that a later :func:`update` can skip what did not change.
    """
    out = Path(out)
    check_output_dir(out, build.fabric.name, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    again = out.is_dir()  # a previous build: files with the same bytes are kept (linked)
    root, new_root = str(out), str(tmp)
    try:
        made = ""
        with gctune.paused():
            for a in build.artifacts:
                target = os.path.join(new_root, a.device)
                if a.device != made:  # artifacts come grouped by device
                    os.mkdir(target, 0o755)
                    made = a.device
                text = fill(a.text, values) if values is not None and a.secrets else a.text
                old_file = os.path.join(root, a.device, a.name)
                if again and _same(old_file, text, a.mode):
                    # unchanged: the same file (its inode and mtime) in the new directory, so
                    # that a re-render changes only what changed (make, rsync, editors can tell)
                    os.link(old_file, os.path.join(target, a.name))
                    continue
                _create(os.path.join(target, a.name), text, a.mode)
        (tmp / MANIFEST).write_text(dump_manifest(manifest(build, digests)), "utf-8")
        _write_private(tmp / STATE, secrets_digest(values) + "\n")
        if check is not None:
            check(tmp)
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _swap(tmp: Path, out: Path) -> None:
    """The new build directory in place of the old one (two renames)."""
    tmp.chmod(0o755)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)


def _same(path: str, text: str | bytes, mode: int) -> bool:
    """``path`` is a regular file with exactly this text (or these bytes) and mode."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != mode:
            return False
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        if st.st_size != len(data):
            return False
        with open(path, "rb") as fh:
            return fh.read() == data
    except OSError:
        return False


def secrets_digest(values: Mapping[str, str] | None) -> str:
    """What a build's files were filled with: ``tokens``, or a digest of the secret values."""
    if values is None:
        return "tokens"
    h = hashlib.sha256()
    for name in sorted(values):
        h.update(name.encode() + b"\0" + values[name].encode() + b"\0")
    return h.hexdigest()


def _create(path: Path | str, text: str | bytes, mode: int, replace: bool = False) -> None:
    """A new file with this text (or these bytes), made with its mode (never readable by
    others first). Written by ``os.write`` (no file object: 40% less time per file, which a
    build makes 20,000 of)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if replace else os.O_EXCL)
    data = memoryview(text if isinstance(text, bytes) else text.encode("utf-8"))
    fd = os.open(path, flags, mode)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def _write_private(path: Path | str, text: str) -> None:
    _create(path, text, 0o600, replace=True)


# --- re-rendering into a build ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Update:
    """What :func:`update` did: how many files the build has, which it rewrote, which devices
    it did not render again, and which secrets its files hold."""

    files: int
    rewritten: tuple[str, ...]
    unchanged: tuple[str, ...]
    secrets: tuple[SecretRef, ...]


class _LazyValues(Mapping[str, str]):
    """Secret values resolved on their first use (a render that streams its files needs them
    before it knows every secret it uses). ``active`` is False in placeholder mode."""

    def __init__(self, fabric: Fabric,
                 resolve: Callable[[tuple[SecretRef, ...]], Mapping[str, str] | None]) -> None:
        self.refs = {r.name: r for r in fabric.secrets}
        self.resolve = resolve
        self.got: dict[str, str] = {}
        self.active = resolve(()) is not None

    def __getitem__(self, name: str) -> str:
        if name not in self.got:
            if name not in self.refs:
                raise KeyError(name)
            got = self.resolve((self.refs[name],))
            assert got is not None
            self.got[name] = got[name]
        return self.got[name]

    def __iter__(self) -> Any:
        return iter(self.got)

    def __len__(self) -> int:
        return len(self.got)


def update(fabric: Fabric, out: Path,
           resolve: Callable[[tuple[SecretRef, ...]], Mapping[str, str] | None],
           templates: Path | None = None, force: bool = False) -> Update:
    """Render ``fabric`` into the build directory ``out``, doing only what changed.

    Devices whose input digest is the one in ``out``'s manifest are not rendered again (unless
    the secret values changed and their files hold secrets, or ``templates`` overrides the
    shipped ones: overrides may read anything); of the others, only files whose bytes changed are
    written (each by an atomic rename, the manifest last; if anything fails, every replaced file is
    put back). With no previous build of this fabric, it is :func:`write` (a new directory).
    ``resolve`` gives the values of the secrets the files need (None keeps tokens).
    """
    out = Path(out)
    check_output_dir(out, fabric.name, force)
    digests = input_digests(fabric, templates)
    prev = load_manifest(out) if is_build_dir(out) else None
    if prev is None or prev.get("fabric") != fabric.name or prev.get("format") != FORMAT:
        return _write_new(fabric, out, resolve, templates, digests)
    old: dict[str, Any] = prev.get("devices", {})
    reuse = set()
    if templates is None:
        reuse = {n for n, d in digests.items()
                 if n in old and old[n].get("inputs") == d and "files" in old[n]}
    build = render(fabric, templates, devices=set(digests) - reuse)
    build = Build(fabric, build.artifacts + tuple(cluster_artifacts(fabric)))
    kept = {n: old[n]["files"] for n in reuse}
    used = {n for a in build.artifacts for n in a.secrets}
    used |= {x for files in kept.values() for f in files for x in f["secrets"]}
    refs = tuple(s for s in fabric.secrets if s.name in used)
    values = resolve(refs)
    if secrets_digest(values) != _read_state(out):  # the values changed: their files too
        again = {n for n, files in kept.items() if any(f["secrets"] for f in files)}
        if again:
            more = render(fabric, templates, devices=again)
            build = Build(fabric, build.artifacts + more.artifacts)
            reuse -= again
            kept = {n: kept[n] for n in reuse}
    whole = _read_whole(out)[2]
    # rows of the devices whose inputs are as they were (and of their sessions and routes):
    # the previous manifest's
    moved = (set(digests) | set(old)) - reuse
    entries = _files(Build(fabric, build.artifacts), kept)
    blocks = {"devices": _spliced_devices(whole, fabric, moved, entries, digests),
              "sessions": _spliced_sessions(whole, fabric, moved),
              "routes": _spliced_routes(whole, fabric, moved)}
    text = list(_manifest_parts(manifest_lines(_manifest(fabric, entries, digests, stream=True,
                                                         blocks=blocks))))
    stale = [(n, f["name"]) for n, d in old.items() if n not in reuse for f in d.get("files", ())]
    stale += [(KUBERNETES, f["name"]) for f in prev.get("kubernetes", [])]
    rewritten = _write_in_place(out, build.artifacts, values, text, secrets_digest(values), stale,
                                set(digests) | {KUBERNETES})
    files = len(build.artifacts) + sum(len(v) for v in kept.values())
    return Update(files, rewritten, tuple(sorted(reuse)), refs)


def _write_new(fabric: Fabric, out: Path,
               resolve: Callable[[tuple[SecretRef, ...]], Mapping[str, str] | None],
               templates: Path | None, digests: Mapping[str, str]) -> Update:
    """A build in a new directory (swapped in atomically), each device rendered and written at
    once: no build is held in memory, only the manifest's entries (at 100,000 nodes, the
    rendered texts alone would take some 400 MB)."""
    env = environment(templates)
    values = _LazyValues(fabric, resolve)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    files: dict[str, list[dict[str, Any]]] = {}
    loaded: dict[str, jinja2.Template] = {}
    used: set[str] = set()
    count = 0
    try:
        with gctune.paused():
            for device in fabric.devices:
                ps = spec(device.platform)
                target = os.path.join(str(tmp), device.name)
                os.mkdir(target, 0o755)
                entries = files[device.name] = []
                for fs in ps.files:
                    a = _render_file(env, fabric, device, fs, ps.context, loaded)
                    filled = values.active and a.secrets
                    data = (fill_named(a.text, a.secrets, values) if filled else a.text).encode()
                    _create(os.path.join(target, a.name), data, a.mode)
                    # the manifest's hash is of the text with tokens: the bytes written, unless
                    # secrets were filled in
                    entries.append(_entry(a, None if filled else hashlib.sha256(data).hexdigest()))
                    used.update(a.secrets)
                    count += 1
            kube = cluster_artifacts(fabric)
            if kube:
                os.mkdir(tmp / KUBERNETES, 0o755)
            for a in kube:
                (tmp / KUBERNETES / a.name).write_text(a.text, "utf-8")
                files.setdefault(KUBERNETES, []).append(_entry(a))
                count += 1
            with open(tmp / MANIFEST, "w", encoding="utf-8") as fh:  # line by line
                for line in manifest_lines(_manifest(fabric, files, digests, stream=True)):
                    fh.write(line)
                    fh.write("\n")
        refs = tuple(r for r in fabric.secrets if r.name in used)
        state = secrets_digest({n: values[n] for n in used} if values.active else None)
        _write_private(tmp / STATE, state + "\n")
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Update(count, tuple(p for d in files.values() for p in (e["path"] for e in d)), (),
                  refs)


def _read_state(out: Path) -> str | None:
    try:
        return (out / STATE).read_text("utf-8").strip()
    except OSError:
        return None


def _write_in_place(out: Path, artifacts: tuple[Artifact, ...],
                    values: Mapping[str, str] | None, manifest_text: list[bytes | memoryview],
                    state: str,
                    stale: list[tuple[str, str]], devices: set[str]) -> tuple[str, ...]:
    """Stage the files whose bytes changed beside their old versions, then swap them in (the
    manifest last); on any failure put every swapped file back and remove what was staged. Then
    remove what the build no longer has: the files the previous manifest listed (``stale``:
    device, file) that were not rendered again, anything else in the directories of the devices
    rendered, and any top-level entry that is not a device of the fabric (``devices``)."""
    root = str(out)
    staged: list[tuple[str, str]] = []  # (staged, final)
    made: list[str] = []
    done: list[tuple[str, str | None]] = []  # (final, backup or None when it is new)
    rewritten = []
    names = {(a.device, a.name) for a in artifacts}
    try:
        for a in artifacts:
            d = os.path.join(root, a.device)
            final = os.path.join(d, a.name)
            text = fill(a.text, values) if values is not None and a.secrets else a.text
            if _same(final, text, a.mode):
                continue
            if not os.path.isdir(d):
                os.mkdir(d, 0o755)
                made.append(d)
            new = os.path.join(d, f".{a.name}.bgpgen-new")
            if os.path.lexists(new):
                os.unlink(new)
            _create(new, text, a.mode)
            staged.append((new, final))
            rewritten.append(a.path)
        if _read_state(out) != state:
            new_state = os.path.join(root, f".{STATE}.bgpgen-new")
            _write_private(new_state, state + "\n")
            staged.append((new_state, os.path.join(root, STATE)))
        # a file rewritten is a hash changed in the manifest: no need to read the old one
        if rewritten or not _same(os.path.join(root, MANIFEST), b"".join(manifest_text), 0o644):
            new_manifest = os.path.join(root, f".{MANIFEST}.bgpgen-new")
            with open(new_manifest, "wb") as fh:
                fh.writelines(manifest_text)  # a few lines and three blocks, not joined
            os.chmod(new_manifest, 0o644)
            staged.append((new_manifest, os.path.join(root, MANIFEST)))
        for new, final in staged:
            backup = None
            if os.path.lexists(final):
                backup = final + ".bgpgen-old"
                if os.path.lexists(backup):
                    os.unlink(backup)
                os.link(final, backup)
            try:
                os.replace(new, final)
            except BaseException:
                if backup is not None:
                    os.unlink(backup)
                raise
            done.append((final, backup))
    except BaseException:
        for final, backup in reversed(done):
            if backup is None:
                os.unlink(final)
            else:
                os.replace(backup, final)
        for new, _ in staged:
            if os.path.lexists(new):
                os.unlink(new)
        for d in reversed(made):
            shutil.rmtree(d, ignore_errors=True)
        raise
    for _, backup in done:
        if backup is not None:
            os.unlink(backup)
    rendered = {a.device for a in artifacts}
    for device, name in stale:  # the previous build's files of devices rendered again or gone
        if (device, name) not in names:
            path = os.path.join(root, device, name)
            if os.path.lexists(path):
                os.unlink(path)
    for device in rendered:  # anything else in their directories
        for e in os.scandir(os.path.join(root, device)):
            if (device, e.name) not in names:
                _remove(e.path)
    for e in os.scandir(root):  # anything that is no device of the fabric now
        if e.name not in (MANIFEST, STATE) and e.name not in devices:
            _remove(e.path)
    return tuple(rewritten)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def load_manifest(build_dir: Path) -> dict[str, Any]:
    """Read a previous build's manifest (for ``diff --against``)."""
    if not is_build_dir(build_dir):
        raise RenderError(Problem(str(build_dir), "", "is not a bgpgen build (no manifest.json)",
                                  "render one with bgpgen render -o DIR"))
    data: dict[str, Any] = _read_manifest(build_dir)
    return data


__all__ = ["Artifact", "Build", "Update", "environment", "input_digests", "manifest", "render",
           "update", "write"]
