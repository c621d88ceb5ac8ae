"""Device patterns, as Ansible's ``--limit`` writes them; one syntax for the CLI and playbooks.

A pattern is a comma-separated list of terms. A term is a device name or glob (``tor-*``),
``rack:NAME``, ``role:node`` / ``role:switch`` or ``group:NAME`` (a node group). Terms are
unioned; a term prefixed with ``&`` intersects, one prefixed with ``!`` excludes:

    tor-r1-a,tor-r1-b           two switches
    rack:r1,&role:node          the nodes of rack r1
    tor*,!tor-r1-a              every ToR but one

Devices come back in the model's order. A term that matches nothing is an error (a typo must
not quietly select less), and so is a pattern that selects nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase

from .model import Device, Fabric

Match = Callable[[Device], bool]


class PatternError(ValueError):
    """A pattern that cannot be used; the message says which term and why."""


def _term(fabric: Fabric, term: str) -> Match:
    kind, sep, value = term.partition(":")
    if not sep:
        return lambda d: fnmatchcase(d.name, term)
    if kind == "rack":
        if value not in fabric.racks:
            raise PatternError(f"rack {value!r} is not in the inventory (racks: "
                               f"{', '.join(fabric.racks) or 'none'})")
        return lambda d: d.rack == value
    if kind == "role":
        if value not in ("node", "switch"):
            raise PatternError(f"role {value!r} is not node or switch")
        return lambda d: d.role.value == value
    if kind == "group":
        groups = sorted({g for n in fabric.nodes if (g := n.group)})
        if value not in groups:
            raise PatternError(f"group {value!r} is not in the inventory (groups: "
                               f"{', '.join(groups) or 'none'})")
        return lambda d: getattr(d, "group", None) == value
    raise PatternError(f"{term!r}: {kind}: is not rack:, role: or group:")


def select(fabric: Fabric, patterns: Iterable[str],
           among: Iterable[Device] | None = None) -> list[Device]:
    """The devices (of ``among``, by default the fabric's) that ``patterns`` select; several
    patterns are joined like one with commas.

    Raises :class:`PatternError` naming the first term that is wrong or matches nothing.
    """
    devices = list(among if among is not None else fabric.devices)
    terms = [t.strip() for p in patterns for t in p.split(",")]
    if not terms or any(not t for t in terms):
        raise PatternError("an empty term (two commas in a row, or a trailing comma)")
    union: list[Match] = []
    both: list[Match] = []
    minus: list[Match] = []
    for term in terms:
        into, body = (both, term[1:]) if term[0] == "&" else \
            (minus, term[1:]) if term[0] == "!" else (union, term)
        match = _term(fabric, body)
        if not any(match(d) for d in devices):
            raise PatternError(f"{term!r} matches no device")
        into.append(match)
    chosen = [d for d in devices
              if (not union or any(m(d) for m in union)) and all(m(d) for m in both)
              and not any(m(d) for m in minus)]
    if not chosen:
        raise PatternError(f"{','.join(terms)!r} selects no device")
    return chosen
