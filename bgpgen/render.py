"""Render stage: the model through Jinja2 templates into artifacts, then into a build directory.

:func:`render` is pure (model in, artifacts out, secrets as tokens). :func:`write` puts a build on
disk atomically: into a temporary sibling directory first, checked there when asked, and only
then swapped into place, so a failure leaves the previous build untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import jinja2

from .artifacts import Artifact, Build
from .errors import Problem, RenderError
from .model import Device, Fabric, SecretRef
from .platforms import REGISTRY, spec
from .platforms.base import Context, FileSpec
from .secrets import fill, token


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
        keep_trailing_newline=True, autoescape=False)
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
                 ctx: Context) -> Artifact:
    if fs.template is None:
        assert fs.build is not None, f"{fs.name}: a FileSpec needs a template or a build"
        return Artifact(device.name, fs.name, fs.target, fs.build(fabric, device))
    recorder = _SecretRecorder()
    try:
        text = env.get_template(fs.template).render(
            fabric=fabric, device=device, secret=recorder, **ctx(fabric, device))
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
    for device in fabric.devices:
        if devices is not None and device.name not in devices:
            continue
        ps = spec(device.platform)
        for fs in ps.files:
            artifacts.append(_render_file(env, fabric, device, fs, ps.context))
    used = {n for a in artifacts for n in a.secrets}
    return Build(fabric, tuple(artifacts), tuple(s for s in fabric.secrets if s.name in used))


def manifest(build: Build) -> dict[str, Any]:
    """The build's manifest: devices with their files and hashes, sessions, expected routes."""
    f = build.fabric
    files: dict[str, list[dict[str, Any]]] = {}
    for a in build.artifacts:
        files.setdefault(a.device, []).append(
            {"name": a.name, "path": a.path, "target": a.target, "sha256": a.sha256,
             "mode": f"{a.mode:04o}", "secrets": list(a.secrets)})
    devices = {}
    for d in f.devices:
        devices[d.name] = {
            "role": d.role.value, "platform": d.platform.value, "asn": d.asn,
            "router_id": d.router_id, "rack": d.rack, "bgp_port": d.bgp_port,
            "api_port": d.api_port,
            "mgmt": None if d.mgmt is None else
            {"host": d.mgmt.host, "port": d.mgmt.port, "user": d.mgmt.user},
            "netmiko_device_type": spec(d.platform).netmiko_device_type,
            "files": files.get(d.name, [])}
    sessions = [{"id": s.id, "node": s.node, "switch": s.switch, "family": s.family,
                 "node_address": str(s.node_address), "switch_address": str(s.switch_address),
                 "node_asn": s.node_asn, "switch_asn": s.switch_asn, "node_port": s.node_port,
                 "switch_port": s.switch_port, "profile": s.profile.name,
                 "passive": s.passive.value, "hold_time": s.profile.timers.hold,
                 "password": token(s.profile.password.name) if s.profile.password else None}
                for s in f.sessions]
    routes = [{"prefix": str(r.prefix), "origin": r.origin, "next_hop": str(r.next_hop),
               "seen_by": r.seen_by, "session": r.session, "kind": r.kind} for r in f.routes]
    return {"generator": "bgpgen", "format": FORMAT, "fabric": f.name, "devices": devices,
            "sessions": sessions, "routes": routes}


def dump_manifest(data: dict[str, Any]) -> str:
    """JSON with one device, session or route per line: diffable, and fast (the C encoder).

    >>> print(dump_manifest({"b": [1, 2], "a": {"x": {"y": 1}}}), end="")
    {
    "a": {
     "x": {"y": 1}
    },
    "b": [
     1,
     2
    ]
    }
    """
    lines = ["{"]
    for i, key in enumerate(sorted(data)):
        value = data[key]
        tail = "," if i < len(data) - 1 else ""
        if isinstance(value, dict) and value:
            lines.append(f"{json.dumps(key)}: {{")
            items = sorted(value.items())
            lines += [f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}"
                      f"{',' if j < len(items) - 1 else ''}" for j, (k, v) in enumerate(items)]
            lines.append("}" + tail)
        elif isinstance(value, list) and value:
            lines.append(f"{json.dumps(key)}: [")
            lines += _list_lines(value)
            lines.append("]" + tail)
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, sort_keys=True)}{tail}")
    return "\n".join(lines) + "\n}\n"


def _list_lines(items: list[Any]) -> list[str]:
    """One JSON element per line. Flat dicts (sessions, routes) are encoded in one call of the
    C encoder and split between elements; the split is kept only if it yields one line per
    element (a value holding ``}, {`` would not), else each element is encoded alone."""
    if all(isinstance(v, dict) for v in items):
        parts = json.dumps(items, sort_keys=True)[1:-1].split("}, {")
        if len(parts) == len(items):
            last = len(parts) - 1
            return [(" " if j == 0 else " {") + p + ("" if j == last else "},")
                    for j, p in enumerate(parts)]
    return [f" {json.dumps(v, sort_keys=True)}{',' if j < len(items) - 1 else ''}"
            for j, v in enumerate(items)]


# --- writing ----------------------------------------------------------------------------------

def is_build_dir(path: Path) -> bool:
    """True when ``path`` holds a previous bgpgen build (so replacing it loses nothing)."""
    try:
        data = json.loads((path / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return False
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
          check: Callable[[Path], None] | None = None, force: bool = False) -> Path:
    """Write a build to ``out`` atomically. ``values`` fills secret tokens (None: keep tokens).

    ``check`` runs on the temporary directory before it replaces ``out``; if it raises, nothing
    is replaced and the temporary directory is removed.
    """
    out = Path(out)
    check_output_dir(out, build.fabric.name, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        made = ""
        for a in build.artifacts:
            target = tmp / a.device
            if a.device != made:  # artifacts come grouped by device
                target.mkdir(mode=0o755, exist_ok=True)
                made = a.device
            text = fill(a.text, values) if values is not None and a.secrets else a.text
            if _same(out / a.device / a.name, text, a.mode):
                # unchanged: the same file (its inode and mtime) in the new directory, so that
                # a re-render changes only what changed (make, rsync and editors can tell)
                os.link(out / a.device / a.name, target / a.name)
                continue
            fd = os.open(target / a.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, a.mode)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        (tmp / MANIFEST).write_text(dump_manifest(manifest(build)), "utf-8")
        if check is not None:
            check(tmp)
        tmp.chmod(0o755)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _same(path: Path, text: str, mode: int) -> bool:
    """``path`` is a regular file with exactly this text and mode."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != mode:
            return False
        data = text.encode("utf-8")
        if st.st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def load_manifest(build_dir: Path) -> dict[str, Any]:
    """Read a previous build's manifest (for ``diff --against``)."""
    if not is_build_dir(build_dir):
        raise RenderError(Problem(str(build_dir), "", "is not a bgpgen build (no manifest.json)",
                                  "render one with bgpgen render -o DIR"))
    data: dict[str, Any] = json.loads((build_dir / MANIFEST).read_text("utf-8"))
    return data


__all__ = ["Artifact", "Build", "environment", "manifest", "render", "write"]
