"""A file of nodes cut at its entries, so that the model cache (:mod:`bgpgen.model_cache`) parses
only the entries an edit changed, not the whole file (at 100,000 nodes in one file, 4 s).

:func:`cut` takes a file that is ``nodes:`` and a block sequence, nothing else (comments and
blank lines aside), and returns the bytes of each entry: from a line that starts the sequence's
entries (its ``-`` at the sequence's indentation) to the next one. Any other shape (flow style,
another key, a document marker, a directive, tabs or carriage returns where indentation is
read, a byte-order mark) gives None: that file is parsed whole, as always.

Why an entry's bytes stand for its value: YAML's block structure is read from indentation, and a
line at the sequence's indentation that starts with ``-`` starts an entry, unless it lies inside a
construct left open by the lines before it (a quoted scalar or a flow collection spanning
lines). So the cut is the file's real structure exactly when the file has as many entries as
chunks (:func:`bgpgen.model_cache` checks that against the full parse before it keeps a file's
chunks, and against the parse of the changed chunks, all together, before it uses them). Chunks
that close everything they open are independent of their neighbours, except through anchors and
aliases: a file that may hold any is never cut (:func:`bgpgen.strict_yaml.may_alias`).
"""

from __future__ import annotations

import hashlib
import re

from .strict_yaml import may_alias

#: comments and blank lines, then ``nodes:`` alone on its line, then comments and blank lines
_HEAD = re.compile(rb"(?:[ ]*(?:#[^\n]*)?\n)*nodes:[ ]*(?:#[^\n]*)?\n(?:[ ]*(?:#[^\n]*)?\n)*")
_FIRST = re.compile(rb"( *)-[ \n]")
DIGEST = 16  #: bytes of each chunk's digest (a truncated SHA-256)


def cut(data: bytes) -> list[bytes] | None:
    """The file's entries as bytes (see the module), or None when it is not cut."""
    if b"\r" in data or b"\t" in data or may_alias(data):
        return None
    head = _HEAD.match(data)
    if head is None:
        return None
    first = _FIRST.match(data, head.end())
    if first is None:
        return None
    indent = len(first.group(1))
    body = data[head.end():]
    # every line less indented than an entry's content starts an entry, or is a comment or
    # blank (the first line is an entry's start: found above); searched from each line break,
    # which the pattern engine finds by itself (3x quicker than a lookahead at every line)
    bad = (rb"\n(?: {0,%d}[^ \n#-]|" % indent + (rb" {0,%d}-|" % (indent - 1) if indent else b"")
           + rb" {%d}-(?:[^ \n]|\Z))" % indent)
    if re.search(bad, body):
        return None
    starts = [0, *(m.start() + 1 for m in re.finditer(rb"\n {%d}-[ \n]" % indent, body))]
    ends = [*starts[1:], len(body)]
    return [body[a:b] for a, b in zip(starts, ends)]


def digest(chunk: bytes) -> bytes:
    return hashlib.sha256(chunk).digest()[:DIGEST]


def digests(chunks: list[bytes]) -> bytes:
    """Every chunk's digest, end to end (:data:`DIGEST` bytes each)."""
    return b"".join(digest(c) for c in chunks)


def document(chunks: list[bytes]) -> bytes:
    """A file of nodes holding these chunks (each ends its last line)."""
    return b"nodes:\n" + b"".join(c if c.endswith(b"\n") else c + b"\n" for c in chunks)


__all__ = ["DIGEST", "cut", "digest", "digests", "document"]
