"""Load stage: read every ``*.yaml`` of an inventory directory into one document, with provenance.

Files are merged by top-level key: lists (``nodes``, ``switches``, ...) are concatenated in file
order, mappings of named entries (``profiles``, ``secrets``) are merged with duplicates refused,
and single objects (``fabric``, ``cluster``) must appear in exactly one file. The :class:`Source`
remembers where every merged entry came from, so a problem found later names the file, the place
inside that file and its line.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import parse_cache, strict_yaml
from .errors import InventoryError, Problem

if not hasattr(yaml, "CSafeLoader"):  # pragma: no cover - libyaml is required; fail clearly
    raise ImportError("PyYAML was built without libyaml; reinstall PyYAML with its C extension")

LIST_KEYS = ("racks", "switches", "node_groups", "nodes", "sessions")
MAP_KEYS = ("profiles", "secrets")
SINGLE_KEYS = ("fabric", "cluster")
MAX_FILE_BYTES = 64 * 1024 * 1024

PathT = tuple[str | int, ...]


class _Loader(yaml.CSafeLoader):
    """The C safe loader, composing only: :mod:`bgpgen.strict_yaml` reads plain scalars itself
    (YAML 1.2's core schema, never dates), so a scalar's implicit tag is text, or the merge
    key's for a plain ``<<``. PyYAML's resolver tries its patterns on every scalar, in Python
    (a third of composing a 10,000-node file)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode:
            return strict_yaml.MERGE_TAG if implicit[0] and value == "<<" else _STR
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


_STR = "tag:yaml.org,2002:str"


def format_path(path: PathT) -> str:
    """``('nodes', 3, 'pod_cidrs', 0)`` -> ``nodes[3].pod_cidrs[0]``.

    >>> format_path(("secrets", "tor-md5", "env"))
    'secrets.tor-md5.env'
    """
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(slots=True)
class Source:
    """Where each part of the merged document came from."""

    root: Path
    files: list[Path] = field(default_factory=list)
    single: dict[str, Path] = field(default_factory=dict)
    named: dict[tuple[str, str], Path] = field(default_factory=dict)
    items: dict[str, list[tuple[Path, int]]] = field(default_factory=dict)
    #: each file's top-level keys (None: its top level is not a mapping)
    keys: dict[Path, tuple[Any, ...] | None] = field(default_factory=dict)

    def locate(self, path: PathT) -> tuple[Path | None, PathT]:
        """Map a path in the merged document to (file, path inside that file)."""
        if not path:
            return None, path
        head = str(path[0])
        if head in self.single:
            return self.single[head], path
        if head in MAP_KEYS and len(path) > 1 and (head, str(path[1])) in self.named:
            return self.named[(head, str(path[1]))], path
        if head in self.items and len(path) > 1 and isinstance(path[1], int):
            entries = self.items[head]
            if 0 <= path[1] < len(entries):
                file, local = entries[path[1]]
                return file, (head, local, *path[2:])
        return None, path

    def problem(self, path: PathT, message: str, hint: str = "") -> Problem:
        """A problem at a path of the merged document, placed in its file with its line."""
        file, local = self.locate(path)
        if file is None:
            shown = str(self.files[0] if len(self.files) == 1 else self.root)
            return Problem(shown, format_path(path), message, hint)
        return Problem(str(file), format_path(local), message, hint,
                       line_of(file, local))


@functools.lru_cache(maxsize=64)
def _compose(file: Path) -> yaml.Node | None:
    with file.open("rb") as fh:
        return yaml.compose(fh, Loader=_Loader)


def line_of(file: Path, path: PathT) -> int | None:
    """The 1-based line of ``path`` in ``file`` (the key's line for a mapping entry, else the
    deepest node found). The file is composed again, on the error path only."""
    try:
        node = _compose(file)
    except (yaml.YAMLError, OSError, UnicodeError):
        return None
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not match:
                return line
            key, node = match[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def read_bytes(file: Path) -> bytes:
    """An inventory file's bytes (refused over :data:`MAX_FILE_BYTES`)."""
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InventoryError(Problem(str(file), "", f"file is {size} bytes, over the "
                                     f"{MAX_FILE_BYTES // 2**20} MiB limit",
                                     "split the inventory into smaller files"))
    return file.read_bytes()


def _read(file: Path, data: bytes | None = None, cached: bool = True) -> Any:
    if data is None:
        data = read_bytes(file)
    try:
        if not cached:
            return strict_yaml.load(data, _Loader)
        return parse_cache.load(data, lambda b: strict_yaml.load(b, _Loader))
    except strict_yaml.StrictYamlError as exc:
        raise InventoryError(Problem(str(file), "", exc.message, exc.hint, exc.line)) from None
    except RecursionError:
        raise InventoryError(Problem(str(file), "", "values nest too deep to read",
                                     "flatten it")) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise InventoryError(Problem(str(file), "", f"YAML syntax error: {what}",
                                     "fix the YAML syntax at that line",
                                     mark.line + 1 if mark else None)) from None
    except (yaml.YAMLError, UnicodeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InventoryError(Problem(str(file), "", f"cannot read as YAML: {first}",
                                     "inventory files are UTF-8 YAML mappings")) from None


def read_file(file: Path, data: bytes | None = None, cached: bool = True) -> Any:
    """One inventory file's value (from ``data``, its bytes, when they were read already),
    read strictly (one-line errors with file and line); ``cached``: through the parse cache."""
    return _read(file, data, cached)


def inventory_files(root: Path) -> list[Path]:
    """The ``*.yaml`` / ``*.yml`` files directly in ``root`` (not in subdirectories), sorted."""
    if not root.exists():
        raise InventoryError(Problem(str(root), "", "inventory directory does not exist",
                                     "pass -i DIR pointing at a directory of *.yaml files"))
    if not root.is_dir():
        raise InventoryError(Problem(str(root), "", "is not a directory",
                                     "pass -i DIR pointing at a directory of *.yaml files"))
    files = []
    problems = []
    top = root.resolve()
    for p in sorted(root.iterdir()):
        if p.suffix not in (".yaml", ".yml") or p.name.startswith("."):
            continue
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError):
            problems.append(Problem(str(p), "", "is a symlink to nothing (" +
                                    os.readlink(p) + ")" if p.is_symlink() else
                                    "cannot be resolved", "remove it or fix its target"))
            continue
        if real.parent != top and top not in real.parents:
            problems.append(Problem(str(p), "", f"is a symlink to {real}, outside the "
                                    "inventory directory", "copy the file into the inventory "
                                    "(an inventory is self-contained)"))
        elif not real.is_file():
            problems.append(Problem(str(p), "", "is not a regular file (a directory, FIFO or "
                                    "device)", "inventory files are regular *.yaml files"))
        elif not os.access(real, os.R_OK):
            problems.append(Problem(str(p), "", "cannot be read (permission denied)",
                                    "make it readable by the user running bgpgen"))
        else:
            files.append(p)
    if problems:
        raise InventoryError(problems)
    if not files:
        raise InventoryError(Problem(str(root), "", "no *.yaml files in the inventory directory",
                                     "add fabric, cluster, switches and nodes files, "
                                     "as in the shipped inventory/"))
    return files


def load(root: Path | str, blobs: dict[Path, bytes] | None = None
         ) -> tuple[dict[str, Any], Source]:
    """Read and merge an inventory directory (``blobs``: files' bytes read already). Raises
    :class:`InventoryError` on any problem."""
    root = Path(root)
    src = Source(root=root, files=inventory_files(root) if blobs is None else list(blobs))
    doc: dict[str, Any] = {}
    problems: list[Problem] = []
    for file in src.files:
        data = _read(file, None if blobs is None else blobs[file])
        src.keys[file] = tuple(data) if isinstance(data, dict) else () if data is None else None
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.append(Problem(str(file), "", f"top level is a {type(data).__name__}, "
                                    "not a mapping", "start the file with keys such as nodes:",
                                    1))
            continue
        for key, value in data.items():
            _merge(doc, src, file, key, value, problems)
    parse_cache.prune()
    if problems:
        raise InventoryError(problems)
    return doc, src


def _merge(doc: dict[str, Any], src: Source, file: Path, key: Any, value: Any,
           problems: list[Problem]) -> None:
    where = functools.partial(Problem, str(file), str(key))
    if key in LIST_KEYS and isinstance(value, list):
        doc.setdefault(key, []).extend(value)
        src.items.setdefault(key, []).extend((file, i) for i in range(len(value)))
    elif key in MAP_KEYS and isinstance(value, dict):
        into = doc.setdefault(key, {})
        for name, entry in value.items():
            if name in into:
                problems.append(where(f"{key}.{name} is defined again (first in "
                                      f"{src.named[(key, str(name))]})",
                                      "keep one definition", line_of(file, (key, name))))
                continue
            into[name] = entry
            src.named[(key, str(name))] = file
    elif key in doc and key in SINGLE_KEYS:
        problems.append(where(f"'{key}' is defined again (first in {src.single[key]})",
                              "keep one definition", line_of(file, (key,))))
    else:
        # Wrong types and unknown keys are left for the schema, with their provenance kept.
        if key in doc:
            problems.append(where(f"'{key}' is defined in more than one file with "
                                  "incompatible types", "keep one definition",
                                  line_of(file, (key,))))
            return
        doc[key] = value
        src.single[str(key)] = file
