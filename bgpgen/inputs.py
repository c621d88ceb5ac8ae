"""What each device's files are made from, as one digest per device (recorded in the manifest), so
that a re-render skips every device whose inputs did not change.

A platform's files are a function of the fabric's name, the device, its sessions and the devices
at their other ends (what :attr:`PlatformSpec.context` may read, by the platform contract), of the
templates and of bgpgen itself. The digest covers exactly that.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from . import __version__
from .model import Device, Fabric


@lru_cache(maxsize=8)
def templates_digest(*dirs: Path) -> str:
    """Every template file's path and bytes, bgpgen's own code (its platform modules make files
    too) and its version."""
    h = hashlib.sha256(__version__.encode())
    for d in (Path(__file__).parent, *dirs):
        for p in sorted(Path(d).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(d)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def digests(fabric: Fabric, templates: str, devices: list[Device] | None = None) -> dict[str, str]:
    """Each device's input digest (``templates`` from :func:`templates_digest`): the device, its
    sessions and the devices at their other ends, which is all a platform's context may read (the
    platform contract), then the templates' digest."""
    head = templates.encode()
    inner = fabric_digests(fabric, devices)
    return {d.name: hashlib.sha256(head + inner[d.name]).hexdigest()
            for d in (fabric.devices if devices is None else devices)}


def fabric_digests(fabric: Fabric, devices: list[Device] | None = None) -> dict[str, bytes]:
    """Each device's digest of its part of the model (all devices, or ``devices``), kept in
    ``fabric.inputs``: computed once per model, and kept with it by :mod:`bgpgen.model_cache`.

    Model objects print deterministically (frozen dataclasses of scalars, tuples, enums and
    addresses); each is printed and hashed once per run, however many devices share it, and only
    its hash is kept (the printed texts of a 100,000-node fleet took 180 MB)."""
    memo: dict[int, bytes] = {}  # by id: every object here lives in ``fabric`` for the whole call

    def part(o: object) -> bytes:
        h = memo.get(id(o))
        if h is None:
            h = memo[id(o)] = hashlib.sha256(repr(o).encode()).digest()
        return h

    out = fabric.inputs
    head = repr(fabric.name).encode()
    for d in fabric.devices if devices is None else devices:
        if d.name in out:
            continue
        parts = [head, part(d)]
        for s in fabric.sessions_of(d.name):
            parts.append(part(s))
            parts.append(part(fabric.device(s.switch if s.node == d.name else s.node)))
        out[d.name] = hashlib.sha256(b"".join(parts)).digest()
    return out


__all__ = ["digests", "fabric_digests", "templates_digest"]
