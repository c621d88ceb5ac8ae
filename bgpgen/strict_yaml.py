"""Strict YAML: libyaml composes the node graph (fast, and without expanding anything); this
module builds the values, refusing what would silently change an inventory's meaning.

- A key given twice in one mapping is an error naming both lines (YAML libraries keep the last
  one, so ``asn: 65101`` ... ``asn: 65999`` would quietly become 65999, and a second ``nodes:``
  would drop the first one's nodes).
- Aliases are bounded before anything is expanded: how many times aliases are followed, how
  deep values nest, how many values the document expands to; an alias inside itself is a cycle.
  A few hundred bytes of nested aliases cannot take gigabytes of memory.
- Plain scalars are read by YAML 1.2's core schema, not YAML 1.1's: ``true``/``false`` only
  (``yes``, ``no``, ``on``, ``off`` stay text), integers in decimal; a number with a leading zero
  (YAML 1.1 octal: ``065001`` was AS 27137) is an error; floats stay the text they were written
  as, so ``hold: 9.0`` fails the schema's "integer" and an unquoted asdot ``1.10`` keeps its zero.
- Merge keys (``<<: *defaults``) work as in YAML 1.1.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_ALIASES = 10_000       #: aliases followed in one file
MAX_DEPTH = 64             #: values nested in values
#: values that aliases expand to (what is written out is bounded by the file's size instead: a
#: 100k-node inventory is 2.1M values, and 64 MiB of YAML holds at most some 30M)
MAX_VALUES = 1_000_000

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)\Z")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+\Z")
_NULL = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
MERGE_TAG = "tag:yaml.org,2002:merge"  #: a plain ``<<`` key (YAML 1.1 merge)
#: first letters of plain scalars that can be neither numbers nor ones with leading zeros
_WORDS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


class StrictYamlError(ValueError):
    """A document that parses but must not be used; ``line`` is 1-based."""

    def __init__(self, message: str, hint: str, line: int | None) -> None:
        super().__init__(message)
        self.message, self.hint, self.line = message, hint, line


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _Builder:
    def __init__(self, free: bool = False) -> None:
        #: let go of each node once built (only in a document without anchors: an aliased node
        #: is built again from the same node objects)
        self.free = free
        self.values = 0  # built inside an alias (a value written once, built again)
        self.inside = 0  # how many aliases the current value is inside
        self.aliases = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        if self.inside:
            self.values += 1
        if self.values > MAX_VALUES:
            raise StrictYamlError(f"the document expands to more than {MAX_VALUES} values "
                                  "(aliases inside aliases?)", "write the values out, or use "
                                  "fewer aliases", _line(node))
        if depth > MAX_DEPTH:
            raise StrictYamlError(f"values nest more than {MAX_DEPTH} deep", "flatten it",
                                  _line(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        key = id(node)
        if key in self.active:
            raise StrictYamlError("an alias refers to a value that contains it (a cycle)",
                                  "an anchor's value may not use its own alias", _line(node))
        alias = key in self.seen
        if alias:
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise StrictYamlError(f"more than {MAX_ALIASES} aliases are followed",
                                      "write the values out, or use fewer aliases",
                                      _line(node))
            self.inside += 1
        self.seen.add(key)
        self.active.add(key)
        try:
            if isinstance(node, yaml.SequenceNode):
                items, out = node.value, []
                for i, item in enumerate(items):
                    out.append(self.build(item, depth + 1))
                    if self.free:  # see _mapping
                        items[i] = None
                return out
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, depth)
        finally:
            self.active.discard(key)
            if alias:
                self.inside -= 1

    def _mapping(self, node: yaml.MappingNode, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        keys: dict[Any, yaml.Node] = {}  # each key's node, for the line of a duplicate
        merged: dict[Any, Any] = {}
        pairs = node.value
        for i, (k, v) in enumerate(pairs):
            if self.free:
                # Let go of the nodes as they are built: a large file's node graph (a mark
                # object per scalar) shrinks while its values grow, instead of both held at
                # their fullest.
                pairs[i] = None
            if k.tag == MERGE_TAG:
                for source in v.value if isinstance(v, yaml.SequenceNode) else [v]:
                    value = self.build(source, depth + 1)
                    if not isinstance(value, dict):
                        raise StrictYamlError("a merge key (<<) takes a mapping or a list of "
                                              "mappings", "merge an anchored mapping",
                                              _line(source))
                    for mk, mv in value.items():
                        merged.setdefault(mk, mv)
                continue
            if isinstance(k, yaml.ScalarNode) and not self.inside:  # the common case, inline
                key = self._scalar(k)
            else:
                key = self.build(k, depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise StrictYamlError("a mapping key is itself a list or a mapping",
                                          "use a plain word as the key", _line(k)) from None
            if key in out:
                raise StrictYamlError(f"key {key!r} is given twice in one mapping (lines "
                                      f"{_line(keys[key])} and {_line(k)}): YAML would keep "
                                      "only the last", "keep one of them", _line(k))
            keys[key] = k
            out[key] = self._scalar(v) if isinstance(v, yaml.ScalarNode) and not self.inside \
                and depth < MAX_DEPTH else self.build(v, depth + 1)
        for mk, mv in merged.items():
            out.setdefault(mk, mv)
        return out

    @staticmethod
    def _scalar(node: yaml.ScalarNode) -> Any:
        text: str = node.value
        if node.style:  # quoted or block (libyaml gives plain ones the style ""): always text
            return text
        if text in _NULL:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if text[:1] in _WORDS:  # a name: no number starts with a letter
            return text
        if _INT.match(text):
            return int(text)
        if _LEADING_ZERO.match(text):
            raise StrictYamlError(f"{text} has a leading zero: YAML 1.1 reads it as an octal "
                                  f"number ({_octal(text)})", f"write {int(text, 10)} (or quote "
                                  "it if it is text)", _line(node))
        return text  # floats, dates, sexagesimal, hex: their text, for the schema to judge


def _octal(text: str) -> str:
    try:
        return str(int(text, 8))
    except ValueError:
        return "not even a valid one"


#: what could start an anchor or an alias (also text that merely looks like one, inside quotes:
#: then the nodes are kept, which is only slower)
_ANCHOR_OR_ALIAS = re.compile(rb"(?:^|[\s,\[{])[&*]\S", re.M)


def may_alias(data: bytes) -> bool:
    """The document may hold an anchor or an alias (or text that merely looks like one). Most
    hold neither ``&`` nor ``*`` at all: two byte searches, not the pattern (0.24 s over 30 MB)."""
    if b"&" not in data and b"*" not in data:
        return False
    return _ANCHOR_OR_ALIAS.search(data) is not None


def load(stream: bytes | str, loader: type) -> Any:
    """Compose with ``loader`` (libyaml's), then build strictly."""
    node = yaml.compose(stream, Loader=loader)
    free = not may_alias(stream.encode() if isinstance(stream, str) else stream)
    return None if node is None else _Builder(free).build(node)
