"""Parsed inventory files, kept by the digest of their bytes: an unchanged file is not parsed
again (a 10,000-node file takes 0.3 s to parse and 0.03 s to read back from here).

Entries are ``marshal`` dumps of the plain values the strict loader builds (dicts, lists, strings,
numbers), named by the SHA-256 of the file's bytes and of what reads them (this module's format
and bgpgen's version), in ``$BGPGEN_CACHE_DIR`` or ``$XDG_CACHE_HOME/bgpgen`` (``~/.cache``).
The directory is created 0700 and used only when it belongs to the user and nobody else can
write to it; ``BGPGEN_CACHE_DIR=off`` turns the cache off. A failure to read or write the cache
is never an error: the file is parsed as if there were no cache. The oldest entries go when there
are more than :data:`MAX_ENTRIES`, once per inventory load (:func:`prune`), never one that load
used: an inventory split into more files than the limit still finds all of its own.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__

FORMAT = b"bgpgen-parse-cache 1"
MAX_ENTRIES = 8192  # a 100,000-node fleet with a file per rack has 2,500 files
_MISSING = object()


def directory(part: str = "parsed") -> Path | None:
    """The cache directory (``part`` of it: ``parsed`` here, ``models`` for
    :mod:`bgpgen.model_cache`), made if needed; None when off or not safe to use."""
    where = os.environ.get("BGPGEN_CACHE_DIR")
    if where == "off":
        return None
    if where:
        path = Path(where)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "bgpgen"
    path = path / part
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return None
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return path


def load(data: bytes, parse: Callable[[bytes], Any]) -> Any:
    """``parse(data)``, or its result as cached for these bytes."""
    where = directory()
    if where is None:
        return parse(data)
    key = hashlib.sha256(FORMAT + __version__.encode() + b"\0" + data).hexdigest()
    _USED.add(key)
    entry = where / key
    value = _read(entry)
    if value is not _MISSING:
        return value
    value = parse(data)
    _write(where, entry, value)
    return value


def _read(entry: Path) -> Any:
    try:
        with open(entry, "rb") as fh:
            return marshal.load(fh)
    except (OSError, EOFError, ValueError, TypeError):
        return _MISSING


def _write(where: Path, entry: Path, value: Any) -> None:
    try:
        blob = marshal.dumps(value)
    except ValueError:  # a value marshal cannot hold: not cached
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".new-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, entry)
        _WRITTEN.add(str(where))
    except OSError:
        return


_USED: set[str] = set()  #: entries read or written since the last prune (one inventory load)
_WRITTEN: set[str] = set()  #: cache directories written since the last prune


def prune() -> None:
    """Keep the cache within :data:`MAX_ENTRIES` after an inventory load that wrote to it: the
    oldest entries go first, none that this load used. One directory scan per load."""
    used = set(_USED)
    _USED.clear()
    while _WRITTEN:
        where = _WRITTEN.pop()
        try:
            entries = [e for e in os.scandir(where)
                       if not e.name.startswith(".") and e.name not in used]
            extra = len(entries) + len(used) - MAX_ENTRIES
            if extra <= 0:
                continue
            entries.sort(key=lambda e: e.stat().st_mtime)
        except OSError:
            continue
        for e in entries[:extra]:
            try:
                os.unlink(e.path)
            except OSError:
                pass


__all__ = ["directory", "load", "prune"]
