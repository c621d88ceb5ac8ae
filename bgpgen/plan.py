"""Plan stage: what would change on each device, what activating it costs, in four formats.

A plan compares desired artifacts (secrets as tokens) with a baseline: a previous build
(``diff --against``, no device access) or what runs on each device (``diff --live``). Secret
values never reach a plan: device text is redacted before it is compared or shown.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from .model import Fabric, Platform
from .render import Build, load_manifest

# Activation costs, least to most disruptive.
NONE, HITLESS, SOFT, RESET, RESTART = range(5)
COST_NAMES = {NONE: "none", HITLESS: "hitless", SOFT: "soft reset",
              RESET: "session reset", RESTART: "daemon restart"}
_SECRET_LINES = {
    Platform.GOBGP: re.compile(r'(auth-password = ")([^"]*)(")'),
    Platform.GOBGP_RS: re.compile(r'(auth-password = ")([^"]*)(")'),
    Platform.BIRD: re.compile(r'(password ")([^"]*)(";)'),
    Platform.FRR: re.compile(r"(password )(\S+)()"),
}


class Exit(IntEnum):
    NO_CHANGES = 0
    ERROR = 1
    CHANGES = 2


def mask(platform: Platform, text: str, values: dict[str, str]) -> str:
    """Device text with every password value replaced: a known value by its token, any other
    by ``<secret:changed>``. Nothing that leaves this function holds a secret."""
    by_value = {v: k for k, v in values.items()}

    def sub(m: re.Match[str]) -> str:
        value = m.group(2)
        if value.startswith("<secret:"):
            return m.group(0)
        return f"{m.group(1)}<secret:{by_value.get(value, 'changed')}>{m.group(3)}"
    return _SECRET_LINES[platform].sub(sub, text)


@dataclass(slots=True)
class DevicePlan:
    device: str
    platform: str
    action: str = "none"            #: create | update | none | failed
    diff: list[str] = field(default_factory=list)
    sessions_added: list[str] = field(default_factory=list)
    sessions_removed: list[str] = field(default_factory=list)
    sessions_changed: list[str] = field(default_factory=list)
    cost: int = NONE
    cost_detail: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  #: driver data for apply; not shown

    @property
    def changed(self) -> bool:
        return self.action in ("create", "update")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["cost"] = COST_NAMES[self.cost]
        return d


@dataclass(slots=True)
class Plan:
    fabric: str
    baseline: str
    devices: list[DevicePlan]

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "none": 0, "failed": 0}
        for d in self.devices:
            out[d.action] += 1
        return out

    @property
    def exit(self) -> Exit:
        c = self.counts()
        if c["failed"]:
            return Exit.ERROR
        return Exit.CHANGES if c["create"] or c["update"] else Exit.NO_CHANGES


# --- classification: which sessions change, and what activating it costs ----------------------

def _neighbors_toml(text: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    try:
        data = tomllib.loads(text) if text else {}
    except tomllib.TOMLDecodeError:
        data = {}
    nbrs = {n.get("config", {}).get("neighbor-address", "?"): n for n in data.get("neighbors", [])}
    rest = {k: v for k, v in data.items() if k not in ("neighbors", "global")}
    return data.get("global", {}), nbrs, rest


_BIRD_PROTO = re.compile(r"^protocol bgp (\w+) \{\n(.*?)^\}", re.S | re.M)


def classify(platform: Platform, old: str, new: str, plan: DevicePlan) -> None:
    """Fill sessions added / removed / changed and the activation cost from two texts."""
    if platform in (Platform.GOBGP, Platform.GOBGP_RS):
        og, on, orest = _neighbors_toml(old)
        ng, nn, nrest = _neighbors_toml(new)
        _sessions(plan, on, nn)
        if og != ng and old:
            _cost(plan, RESTART, "[global] changed: gobgpd restarts, every session resets")
        if plan.sessions_changed:
            _cost(plan, RESET, "changed neighbors reset: " + ", ".join(plan.sessions_changed))
        if orest != nrest or plan.sessions_added or plan.sessions_removed:
            _cost(plan, HITLESS, "SIGHUP: policies and added/removed neighbors, others untouched")
    elif platform is Platform.BIRD:
        ob = dict(_BIRD_PROTO.findall(old))
        nb = dict(_BIRD_PROTO.findall(new))
        _sessions(plan, ob, nb)
        if plan.sessions_changed:
            _cost(plan, RESET, "BIRD restarts changed protocols: "
                  + ", ".join(plan.sessions_changed))
        if old != new:
            _cost(plan, HITLESS, "configure: statics and filters reload without a reset")
    else:
        _classify_frr(old.splitlines(), new.splitlines(), plan)


def classify_frr_delta(delete: list[str], add: list[str], plan: DevicePlan) -> None:
    _classify_frr(delete, add, plan)


_FRR_NBR = re.compile(r"^\s*neighbor (\S+) (\S+)")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_RESETTING = ("password", "timers", "port", "ebgp-multihop", "passive", "update-source",
              "local-as")


def _classify_frr(old: list[str], new: list[str], plan: DevicePlan) -> None:
    removed = [ln for ln in old if ln.strip() and ln not in set(new)]
    added = [ln for ln in new if ln.strip() and ln not in set(old)]

    def remote_as(lines: list[str]) -> set[str]:
        return {m.group(1) for ln in lines if (m := _FRR_NBR.match(ln)) and m.group(2) == "remote-as"}
    ra, rr = remote_as(added), remote_as(removed)
    plan.sessions_added = sorted(ra - rr)
    plan.sessions_removed = sorted(rr - ra)
    touched = {m.group(1) for ln in added + removed if (m := _FRR_NBR.match(ln))
               and m.group(2) in _RESETTING}
    peers = {x for x in touched | (ra & rr) if _is_ip(x)}
    groups = sorted(x for x in touched if not _is_ip(x))
    plan.sessions_changed = sorted(peers - set(plan.sessions_added) - set(plan.sessions_removed))
    if plan.sessions_changed:
        _cost(plan, RESET, "these sessions reset: " + ", ".join(plan.sessions_changed))
    if groups and (rr or not ra):
        _cost(plan, RESET, "peer-group settings change (members reset): " + ", ".join(groups))
    if any("route-map" in ln or "prefix-list" in ln for ln in added + removed):
        _cost(plan, SOFT, "inbound policy re-applied (soft reset), sessions stay up")
    if plan.sessions_removed:
        _cost(plan, RESET, "removed sessions go down: " + ", ".join(plan.sessions_removed))
    if added or removed:
        _cost(plan, HITLESS, "frr-reload applies the delta; new neighbors are hitless")


def _sessions(plan: DevicePlan, old: dict[str, Any], new: dict[str, Any]) -> None:
    plan.sessions_added = sorted(set(new) - set(old))
    plan.sessions_removed = sorted(set(old) - set(new))
    plan.sessions_changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])


def _cost(plan: DevicePlan, cost: int, detail: str) -> None:
    if cost > plan.cost:
        plan.cost, plan.cost_detail = cost, detail


def unified(old: str, new: str, name: str) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"running/{name}",
                                     f"desired/{name}", lineterm="", n=2))


# --- against a previous build ------------------------------------------------------------------

def against(build: Build, previous: Path) -> Plan:
    """Compare a build with a previous one on disk (no device access)."""
    manifest = load_manifest(previous)
    old_devices = manifest.get("devices", {})
    plans = []
    for device in build.fabric.devices:
        arts = [a for a in build.artifacts if a.device == device.name]
        p = DevicePlan(device.name, device.platform.value)
        if device.name not in old_devices:
            p.action = "create"
            p.sessions_added = [str(s.switch_address if s.node == device.name else s.node_address)
                                for s in build.fabric.sessions_of(device.name)]
            _cost(p, HITLESS, "new device")
            for a in arts:
                p.diff += unified("", a.text, a.name)
            plans.append(p)
            continue
        old_files = {f["name"]: f["sha256"] for f in old_devices[device.name]["files"]}
        for a in arts:
            if old_files.get(a.name) == a.sha256:
                continue
            path = previous / device.name / a.name
            old = mask(device.platform, path.read_text(), {}) if path.exists() else ""
            p.diff += unified(old, a.text, a.name)
            if a.name == "originate.json":
                _cost(p, HITLESS, "originated routes added / withdrawn")
            else:
                classify(device.platform, old, a.text, p)
        p.action = "update" if p.diff else "none"
        plans.append(p)
    gone = sorted(set(old_devices) - {d.name for d in build.fabric.devices})
    for name in gone:
        plans.append(DevicePlan(name, old_devices[name]["platform"], "update",
                                ["(device removed from the inventory: bgpgen leaves it as is)"],
                                cost=NONE))
    return Plan(build.fabric.name, f"build {previous}", plans)


# --- output formats ----------------------------------------------------------------------------

_SIGN = {"create": "+", "update": "~", "none": " ", "failed": "!"}


def peer_names(fabric: Fabric, device: str) -> dict[str, str]:
    names = {}
    for s in fabric.sessions_of(device):
        if s.node == device:
            names[str(s.switch_address)] = s.switch
        else:
            names[str(s.node_address)] = s.node
    return names


def _peers(addrs: list[str], names: dict[str, str]) -> str:
    return ", ".join(f"{a} ({names[a]})" if a in names else a for a in addrs)


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    text = f"Plan: {c['create']} to add, {c['update']} to change, {c['none']} unchanged"
    return text + (f", {c['failed']} failed." if c["failed"] else ".")


def as_text(plan: Plan, fabric: Fabric, show_unchanged: bool = False) -> str:
    out = [f"bgpgen plan for {plan.fabric} against {plan.baseline}",
           "Legend: + create, ~ update in place, - remove, ! could not be planned", ""]
    for d in plan.devices:
        if d.action == "none" and not show_unchanged:
            continue
        out.append(f"{_SIGN[d.action]} {d.device} ({d.platform})"
                   + (f"  activation: {COST_NAMES[d.cost]}: {d.cost_detail}" if d.changed else ""))
        if d.error:
            out.append(f"    error: {d.error}")
        names = peer_names(fabric, d.device)
        for sign, label, items in (("+", "sessions added", d.sessions_added),
                                   ("-", "sessions removed", d.sessions_removed),
                                   ("~", "sessions changed", d.sessions_changed)):
            if items:
                out.append(f"    {sign} {label}: {_peers(items, names)}")
        for line in d.diff:
            if line.startswith(("---", "+++")):
                continue
            out.append(f"      {line}")
        out.append("")
    out.append(summary_line(plan))
    return "\n".join(out) + "\n"


def as_unified(plan: Plan) -> str:
    return "".join(line + "\n" for d in plan.devices for line in d.diff)


def as_json(plan: Plan) -> str:
    return json.dumps({"format": 1, "fabric": plan.fabric, "baseline": plan.baseline,
                       "summary": plan.counts(), "exit": int(plan.exit),
                       "devices": [d.as_dict() for d in plan.devices]}, indent=1) + "\n"


def as_markdown(plan: Plan, fabric: Fabric) -> str:
    c = plan.counts()
    out = [f"### bgpgen plan: {plan.fabric}", "",
           f"**{c['create']}** to add, **{c['update']}** to change, {c['none']} unchanged"
           + (f", **{c['failed']} failed**" if c["failed"] else ""), "",
           "| device | platform | action | activation | sessions |", "|---|---|---|---|---|"]
    for d in plan.devices:
        if d.action == "none":
            continue
        sess = "; ".join(f"{k} {len(v)}" for k, v in (("+", d.sessions_added),
                                                      ("-", d.sessions_removed),
                                                      ("~", d.sessions_changed)) if v) or "-"
        out.append(f"| `{d.device}` | {d.platform} | {d.action} | "
                   f"{COST_NAMES[d.cost] if d.changed else '-'} | {sess} |")
    for d in plan.devices:
        if d.diff:
            out += ["", f"<details><summary><code>{d.device}</code></summary>", "", "```diff",
                    *[ln for ln in d.diff if not ln.startswith(("---", "+++"))], "```",
                    "</details>"]
    return "\n".join(out) + "\n"


def render_plan(plan: Plan, fabric: Fabric, fmt: str) -> str:
    if fmt == "json":
        return as_json(plan)
    if fmt == "unified":
        return as_unified(plan)
    if fmt == "markdown":
        return as_markdown(plan, fabric)
    return as_text(plan, fabric)
