"""Playbooks: staged, topology-aware rollouts. Loading, checking and batching (pure).

A playbook is a list of plays; a play selects devices, cuts them into batches (a count, a
percentage, one rack at a time, or ``per: switch-pair`` so that the two ToRs of a rack never
change together) and runs steps on each batch: diff, deploy, verify, pause, drain, undrain.
:mod:`bgpgen.run` executes them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs

from . import selection
from .errors import BgpgenError, Problem
from .loader import PathT, Source, _read, format_path, line_of
from .model import Device, Fabric, Role
from .problems import Collector
from .schema import playbook_schema
from .validate import check_schema

STEPS = ("diff", "deploy", "verify", "pause", "drain", "undrain")
_HINTS = {
    "serial": "a count (>= 1), a percentage such as '25%', {per: rack} or {per: switch-pair}",
    "roles": "node or switch",
    "max_fail_percentage": "a number from 0 to 100",
}


class PlaybookError(BgpgenError):
    """A playbook cannot be read, or selects or batches devices it cannot."""


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    path: PathT = ()


@dataclass(frozen=True, slots=True)
class Play:
    name: str
    select: dict[str, Any]
    serial: int | str | dict[str, str]
    max_fail_percentage: float
    steps: tuple[Step, ...]
    index: int


@dataclass(frozen=True, slots=True)
class Playbook:
    name: str
    file: Path
    plays: tuple[Play, ...]
    source: Source

    def problem(self, path: PathT, message: str, hint: str) -> Problem:
        return Problem(str(self.file), format_path(path), message, hint,
                       line_of(self.file, path))


@functools.cache
def _validator() -> Any:
    return jsonschema_rs.Draft202012Validator(playbook_schema())


def load(file: Path | str) -> Playbook:
    file = Path(file)
    if not file.is_file():
        raise PlaybookError(Problem(str(file), "", "playbook file does not exist",
                                    "pass the path of a YAML playbook, e.g. playbooks/rollout.yaml"))
    data = _read(file)
    source = Source(root=file.parent, files=[file])
    if not isinstance(data, dict):
        raise PlaybookError(Problem(str(file), "", "a playbook is a mapping with plays:",
                                    "start the file with plays:", 1))
    source.single.update({str(k): file for k in data})
    try:
        check_schema(data, source, _validator(), _HINTS)
    except BgpgenError as exc:
        raise PlaybookError(list(_step_hints(exc.problems))) from None
    out = Collector(source)
    plays = []
    for i, raw in enumerate(data["plays"]):
        serial = raw.get("serial", 1)
        if isinstance(serial, str) and int(serial[:-1]) not in range(1, 101):
            out.add(("plays", i, "serial"), f"{serial} is not a percentage from 1% to 100%",
                    "use a percentage such as 25%, or a count")
        steps = []
        for j, step in enumerate(raw["steps"]):
            kind, params = (step, {}) if isinstance(step, str) else next(iter(step.items()))
            steps.append(Step(kind, params or {}, ("plays", i, "steps", j)))
        plays.append(Play(raw["name"], raw["select"], serial,
                          float(raw.get("max_fail_percentage", 0)), tuple(steps), i))
    if out.problems:
        raise PlaybookError(out.problems)
    return Playbook(data.get("name", file.stem), file, tuple(plays), source)


def _step_hints(problems: tuple[Problem, ...]) -> list[Problem]:
    """Schema problems on a step say which steps exist."""
    fixed = []
    for p in problems:
        if ".steps[" in p.path or p.path.startswith("plays[") and "steps[" in p.path:
            fixed.append(Problem(p.file, p.path, p.message, "a step is one of: "
                                 + ", ".join(STEPS) + " (deploy/verify/pause take options)",
                                 p.line))
        else:
            fixed.append(p)
    return fixed


def select(pb: Playbook, play: Play, fabric: Fabric) -> list[Device]:
    """The devices a play selects, in model order (switches first, then nodes)."""
    sel = play.select
    path: PathT = ("plays", play.index, "select")
    problems = []
    racks, groups = set(fabric.racks), {getattr(n, "group", None) for n in fabric.nodes}
    for key, known in (("racks", racks), ("groups", groups),
                       ("names", {d.name for d in fabric.devices})):
        for k, value in enumerate(sel.get(key, [])):
            if key == "names" and any(c in value for c in "*?["):
                continue
            if value not in known:
                problems.append(pb.problem((*path, key, k), f"{key[:-1]} '{value}' is not in "
                                           "the inventory", f"use one of: {', '.join(sorted(str(x) for x in known if x))}"))
    if problems:
        raise PlaybookError(problems)
    from fnmatch import fnmatchcase
    chosen = []
    for d in fabric.devices:
        if "roles" in sel and d.role.value not in sel["roles"]:
            continue
        if "racks" in sel and d.rack not in sel["racks"]:
            continue
        if "groups" in sel and getattr(d, "group", None) not in sel["groups"]:
            continue
        if "names" in sel and not any(fnmatchcase(d.name, n) for n in sel["names"]):
            continue
        chosen.append(d)
    if "pattern" in sel:
        try:
            chosen = selection.select(fabric, [sel["pattern"]], among=chosen)
        except selection.PatternError as exc:
            raise PlaybookError(pb.problem((*path, "pattern"), str(exc), "names and globs, "
                                           "rack:NAME, role:node|switch, group:NAME; ',' joins, "
                                           "'&' intersects, '!' excludes")) from None
    chosen = chosen[sel.get("skip", 0):]
    if "first" in sel:
        chosen = chosen[:sel["first"]]
    if not chosen:
        raise PlaybookError(pb.problem(path, f"play '{play.name}' selects no device",
                                       "check names, racks, groups and roles"))
    return chosen


def batches(pb: Playbook, play: Play, fabric: Fabric, devices: list[Device]) -> list[list[Device]]:
    """Cut a play's devices into batches, in order."""
    serial = play.serial
    if isinstance(serial, int):
        size = serial
    elif isinstance(serial, str):
        size = max(1, math.ceil(len(devices) * int(serial[:-1]) / 100))
    elif serial["per"] == "rack":
        by: dict[str | None, list[Device]] = {}
        for d in devices:
            by.setdefault(d.rack, []).append(d)
        return list(by.values())
    else:  # switch-pair: the i-th switch of every rack together, never both of one rack
        nodes = [d for d in devices if d.role is Role.NODE]
        if nodes:
            raise PlaybookError(pb.problem(("plays", play.index, "serial"),
                                           f"per: switch-pair batches switches, and play "
                                           f"'{play.name}' selects node {nodes[0].name}",
                                           "select roles: [switch], or use per: rack"))
        by = {}
        for d in devices:
            by.setdefault(d.rack, []).append(d)
        width = max(len(v) for v in by.values())
        return [[v[i] for v in by.values() if i < len(v)] for i in range(width)]
    return [devices[i:i + size] for i in range(0, len(devices), size)]
