"""Validate stage: the JSON Schema first, then the model builder's semantic checks.

:func:`load_fabric` is the entry point most callers want: a directory in, a :class:`Fabric` out,
or an :class:`~bgpgen.errors.InventoryError` listing every problem found.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from . import assemble, derive, gctune, model_cache
from .errors import InventoryError
from .loader import PathT, Source, format_path, load
from .model import Fabric, Role
from .platforms import by_inventory_name
from .problems import Collector
from .schema import inventory_schema

MAX_SCHEMA_PROBLEMS = 50
_UNEXPECTED = re.compile(r"\('([^']*)' was unexpected\)")

#: Hints by the key that failed, for pattern / type / oneOf errors.
_HINTS = {
    "name": "use lower-case letters, digits and inner hyphens (a DNS label), e.g. node-r1-01",
    "description": "one line of text without quotes, backslashes or control characters",
    "asn": "an AS number such as 65001, 4200000000 or asdot 1.10",
    "node_asn": "an AS number such as 65001, 4200000000 or asdot 1.10",
    "switch_asn": "an AS number such as 65001, 4200000000 or asdot 1.10",
    "router_id": "an IPv4 address such as 10.0.0.1",
    "peering": "interface addresses with their length, e.g. 10.1.1.10/24",
    "pod_cidrs": "CIDR prefixes such as 10.244.1.0/24",
    "service_cidrs": "CIDR prefixes such as 10.96.0.0/16",
    "cidr": "a CIDR prefix such as 203.0.113.0/28",
    "vips": "IP addresses such as 203.0.113.10",
    "host": "a host name or IP address",
    "user": "a login name such as bgpgen",
    "env": "an environment variable name such as BGPGEN_TOR_MD5",
    "password": "the name of an entry under secrets:, never the password itself",
    "peer_group": "a word of letters, digits, '-' and '_' starting with a letter",
    "passive": "node, switch or none",
}


def _inventory_hints() -> dict[str, str]:
    """The hints, with the platform names the registry knows."""
    return {**_HINTS,
            "platform": " or ".join(by_inventory_name(Role.SWITCH))
            + " (other switch platforms are not supported yet)",
            "speaker": " or ".join(by_inventory_name(Role.NODE))}


@functools.cache
def _validator() -> Any:
    return jsonschema_rs.Draft202012Validator(inventory_schema())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _hint(kind: str, path: PathT, message: str, hints: dict[str, str]) -> str:
    leaf = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
    if kind == "AdditionalProperties":
        return "remove it or fix its spelling; `bgpgen schema` lists every key"
    if kind == "Required":
        return "add it; `bgpgen schema` shows what each entry needs"
    return hints.get(leaf, "see `bgpgen schema` for the expected form")


def _non_json(value: Any, path: PathT = ()) -> tuple[PathT, str] | None:
    """Find the first key that is not a string (YAML allows them; JSON Schema does not)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (*path, str(key)), f"key {key!r} is a {type(key).__name__}, not a string"
            found = _non_json(item, (*path, key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_json(item, (*path, i))
            if found:
                return found
    return None


def check_schema(doc: dict[str, Any], source: Source, validator: Any = None,
                 hints: dict[str, str] | None = None) -> None:
    """Raise :class:`InventoryError` with one problem per schema violation (the inventory's
    schema unless another ``validator`` is given, with its own ``hints`` by key)."""
    out = Collector(source)
    try:
        errors = list((validator or _validator()).iter_errors(doc))
    except ValueError:
        found = _non_json(doc)
        bad, message = found if found else ((), "the document is not JSON-compatible")
        out.add(bad, message, "quote the key so it is a string")
        out.raise_if_any()
        return
    for err in errors[:MAX_SCHEMA_PROBLEMS]:
        path: PathT = tuple(err.instance_path)
        kind = type(err.kind).__name__
        extra = _UNEXPECTED.search(err.message) if kind == "AdditionalProperties" else None
        if extra:
            path = (*path, extra.group(1))  # point at the unknown key itself
        message = err.message
        if kind in ("Pattern", "OneOf", "AnyOf") or len(message) > 160:
            message = f"{_short(err.instance)} is not a valid {format_path(path[-1:]) or 'value'}"
            if isinstance(path[-1:][0] if path else None, int) and len(path) > 1:
                message = f"{_short(err.instance)} is not a valid entry of {path[-2]}"
        out.add(path, message, _hint(kind, path, err.message, hints or _inventory_hints()))
    if len(errors) > MAX_SCHEMA_PROBLEMS:
        out.add((), f"{len(errors) - MAX_SCHEMA_PROBLEMS} more schema problems not shown",
                "fix the ones above first")
    out.raise_if_any()


def _no_secret_tokens(value: Any, path: PathT, out: Collector) -> None:
    """The secret token syntax is bgpgen's own: written in any value (a description, a name),
    it would be filled with the real password when a device's config is pushed."""
    if isinstance(value, str):
        if "<secret:" in value:
            out.add(path, "holds the secret token syntax <secret:...>, which bgpgen fills with "
                    "the secret's value on the device", "reference secrets only through a "
                    "profile's password: NAME")
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_secret_tokens(v, (*path, k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_secret_tokens(v, (*path, i), out)


def _check_tokens(doc: Any, path: PathT, out: Collector) -> None:
    """:func:`_no_secret_tokens`, walked only when ``doc``'s JSON holds the token syntax at
    all (one scan, in C; a value JSON cannot hold is walked)."""
    try:
        if b"<secret:" not in orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS):
            return
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        pass
    _no_secret_tokens(doc, path, out)


def load_fabric(inventory: Path | str) -> Fabric:
    """Load, validate and model an inventory directory; derive its sessions and routes. Where
    only files of nodes changed since the last load, the last model is patched instead
    (:mod:`bgpgen.model_cache`; the same result)."""
    with gctune.paused():
        return model_cache.load(Path(inventory), build, _entries_ok)


def build(inventory: Path | str, blobs: dict[Path, bytes] | None = None,
          entries: bool = False) -> model_cache.Built:
    """The full build of an inventory (``blobs``: its files' bytes, when read already;
    ``entries``: with each node entry's digest, for :mod:`bgpgen.model_cache`)."""
    doc, source = load(inventory, blobs)
    check_schema(doc, source)
    out = Collector(source)
    _check_tokens(doc, (), out)
    parts = assemble.build(doc, out)
    digests = {raw["name"]: model_cache.entry_digest(raw) for raw in doc["nodes"]} \
        if entries and not out.problems else {}
    del doc  # the raw document is not needed any more: freed before the sessions exist
    out.raise_if_any()
    assert parts is not None
    fabric = derive.derive(parts, out)
    out.raise_if_any()
    return model_cache.Built(fabric, parts, source, digests)


@functools.cache
def _node_validator() -> Any:
    schema = inventory_schema()
    return jsonschema_rs.Draft202012Validator(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], **schema["properties"]["nodes"]})


def _entries_ok(entries: list[Any]) -> bool:
    """Node entries pass the schema's ``nodes`` and hold no secret token (for a patch: any
    problem sends the load to the full build, which says where)."""
    try:
        if not _node_validator().is_valid(entries):
            return False
    except ValueError:  # not JSON-compatible (a key that is not a string)
        return False
    out = Collector(Source(root=Path(".")))
    _check_tokens(entries, ("nodes",), out)
    return not out.problems


__all__ = ["InventoryError", "build", "check_schema", "load_fabric"]
