"""Plan stage: what would change on each device, what activating it costs, in four formats.

A plan compares desired artifacts (secrets as tokens) with a baseline: a previous build
(``diff --against``, no device access) or what runs on each device (``diff --live``). Secret
values never reach a plan: device text is redacted before it is compared or shown.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from .artifacts import Build
from .changes import Action, Cost, DevicePlan, Exit, Plan, unified
from .errors import BgpgenError, Problem, SecretError
from .model import Fabric
from .platforms import spec
from .platforms.base import mask
from .secrets import resolve
from .render import KUBERNETES, cluster_artifacts, input_digests, load_manifest, render

# --- against a previous build ------------------------------------------------------------------

def against_build(fabric: Fabric, previous: Path, templates: Path | None = None) -> Plan:
    """Compare the fabric's render with a previous build on disk (no device access), in time
    linear in the fleet and in the size of the change: devices whose input digest is the one in
    the previous manifest are unchanged without being rendered (as ``render`` skips them); the
    others are rendered and compared file by file, by SHA-256 first, diffed only when it differs.
    """
    old = load_manifest(previous).get("devices", {})
    digests = input_digests(fabric, templates)
    same: set[str] = set()
    if templates is None:  # overrides may read anything: every device is rendered
        same = {n for n, d in digests.items() if old.get(n, {}).get("inputs") == d}
    build = render(fabric, templates, devices=set(digests) - same)
    build = Build(fabric, build.artifacts + tuple(cluster_artifacts(fabric)))
    # a previous build written with the values: each value this machine has turns back into
    # its token; one it lacks shows as <secret:changed>, as before
    values: dict[str, str] = {}
    for ref in fabric.secrets:
        try:
            values[ref.name] = resolve(ref)
        except SecretError:
            continue
    return against(build, previous, same, values)


def against(build: Build, previous: Path, unchanged: Collection[str] = (),
            values: Mapping[str, str] | None = None) -> Plan:
    """Compare a build with a previous one on disk (no device access). ``unchanged``: devices
    known to be as before (not in ``build``); ``values``: the secrets' values, if known, so that
    a previous build written with them compares as tokens (its passwords as ``<secret:NAME>``)."""
    manifest = load_manifest(previous)
    old_devices = manifest.get("devices", {})
    plans = []
    for device in build.fabric.devices:
        if device.name in unchanged:
            plans.append(DevicePlan(device.name, device.platform.value))
            continue
        ps = spec(device.platform)
        arts = build.files_of(device.name).values()
        p = DevicePlan(device.name, device.platform.value)
        if device.name not in old_devices:
            p.action = Action.CREATE
            p.sessions_added = [str(s.switch_address if s.node == device.name else s.node_address)
                                for s in build.fabric.sessions_of(device.name)]
            p.raise_cost(Cost.HITLESS, "new device")
            for a in arts:
                p.diff += unified("", a.text, a.name)
            plans.append(p)
            continue
        old_files = {f["name"]: f["sha256"] for f in old_devices[device.name]["files"]}
        for a in arts:
            if old_files.get(a.name) == a.sha256:
                continue
            path = previous / device.name / a.name
            old = mask(ps.secret_line, path.read_text(), values or {}) if path.exists() else ""
            p.diff += unified(old, a.text, a.name)
            if a.name == ps.config_file:
                ps.classify(old, a.text, p)
            else:  # a file beside the daemon's config (gobgp's originated routes)
                p.raise_cost(Cost.HITLESS, f"{a.name}: applied without a reset")
        p.action = Action.UPDATE if p.diff else Action.NONE
        plans.append(p)
    kube = _kubernetes(build, previous, manifest.get("kubernetes", []))
    if kube is not None:
        plans.append(kube)
    gone = sorted(set(old_devices) - {d.name for d in build.fabric.devices})
    for name in gone:
        plans.append(DevicePlan(name, old_devices[name]["platform"], Action.UPDATE,
                                ["(device removed from the inventory: bgpgen leaves it as is)"]))
    return Plan(build.fabric.name, f"build {previous}", plans)


def _kubernetes(build: Build, previous: Path, old: list[dict[str, Any]]) -> DevicePlan | None:
    """The cluster's Kubernetes resources as one more entry of the plan (applied with kubectl,
    not by bgpgen: its cost is what the speakers do with them)."""
    now = build.files_of(KUBERNETES)
    was = {f["name"]: f["sha256"] for f in old}
    if not now and not was:
        return None
    p = DevicePlan(KUBERNETES, "kubernetes")
    for name in sorted(set(now) | set(was)):
        a = now.get(name)
        if a is not None and was.get(name) == a.sha256:
            continue
        path = previous / KUBERNETES / name
        text = path.read_text() if name in was and path.exists() else ""
        p.diff += unified(text, a.text if a else "", name)
    if p.diff:
        p.action = Action.UPDATE if was else Action.CREATE
        p.raise_cost(Cost.RESET, "kubectl apply -f: a speaker may reset the sessions of the "
                     "peers whose resources changed")
    return p


# --- output formats ----------------------------------------------------------------------------

_SIGN = {Action.CREATE: "+", Action.UPDATE: "~", Action.NONE: " ", Action.FAILED: "!"}


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
        if d.action is Action.NONE and not show_unchanged:
            continue
        out.append(f"{_SIGN[d.action]} {d.device} ({d.platform})"
                   + (f"  activation: {d.cost.label}: {d.cost_detail}" if d.changed else ""))
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


def load_saved(path: Path) -> dict[str, object]:
    """A plan written by ``diff --out`` (a one-line error for anything else)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BgpgenError(Problem(str(path), "--plan", "no such file",
                                  "write one with bgpgen diff --live --out FILE")) from None
    except (OSError, ValueError) as exc:
        raise BgpgenError(Problem(str(path), "--plan", f"not a bgpgen plan ({type(exc).__name__})",
                                  "write one with bgpgen diff --live --out FILE")) from None
    if not isinstance(data, dict) or data.get("format") != 1 or "devices" not in data:
        raise BgpgenError(Problem(str(path), "--plan", "not a bgpgen plan",
                                  "write one with bgpgen diff --live --out FILE"))
    if str(data.get("baseline", "")).startswith("build "):
        raise BgpgenError(Problem(str(path), "--plan", "is a plan against a build, not against "
                                  "what runs: it cannot be applied",
                                  "write one with bgpgen diff --live --out FILE"))
    return data


def drift(saved: dict[str, object], now: Plan) -> list[str]:
    """How the plan made now differs from a saved one: a device at a time, one line each.
    Empty when the saved plan is exactly what would be applied."""
    if saved.get("fabric") != now.fabric:
        return [f"the plan is for fabric {saved.get('fabric')}, this is {now.fabric}"]
    devices: list[dict[str, Any]] = saved["devices"]  # type: ignore[assignment]
    was = {d["device"]: d for d in devices}
    out = []
    for d in now.devices:
        old = was.pop(d.device, None)
        if old is None:
            out.append(f"{d.device}: not in the saved plan")
        elif (old["action"], old["diff"], old["cost"]) != (str(d.action), d.diff, d.cost.label):
            out.append(f"{d.device}: planned {old['action']} ({len(old['diff'])} lines), now "
                       f"{d.action} ({len(d.diff)} lines)")
    out += [f"{name}: in the saved plan, not selected now" for name in sorted(was)]
    return out


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
        if d.action is Action.NONE:
            continue
        sess = "; ".join(f"{k} {len(v)}" for k, v in (("+", d.sessions_added),
                                                      ("-", d.sessions_removed),
                                                      ("~", d.sessions_changed)) if v) or "-"
        out.append(f"| `{d.device}` | {d.platform} | {d.action} | "
                   f"{d.cost.label if d.changed else '-'} | {sess} |")
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


__all__ = ["Action", "Cost", "DevicePlan", "Exit", "Plan", "against", "as_json", "as_text",
           "render_plan"]
