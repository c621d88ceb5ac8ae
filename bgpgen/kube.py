"""Nodes from the cluster: ``kubectl get nodes -o json`` into the inventory, and where the two
disagree.

:func:`read_nodes` takes the JSON (a ``List`` of ``Node`` objects) and keeps what bgpgen needs of
each node: its name, InternalIP addresses (IPv4 and IPv6), ``spec.podCIDRs`` and its rack, the
value of the rack label (``cluster.rack_label``, ``topology.kubernetes.io/zone`` by default).
:func:`imported` turns them into the inventory's ``nodes:`` entries: each node's peering
addresses are its InternalIPs with the length of the switch subnet they lie in (so the
inventory's switches are needed), its management address its first InternalIP; whatever the
cluster does not know (speaker, AS number, group, VIPs) is kept from the existing entry, or
taken from ``--group`` for a new node. :func:`differences` lists, one line each, where the
inventory and the cluster disagree.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import BgpgenError, Problem
from .model import Fabric, Node


class ClusterError(BgpgenError):
    """The cluster's node list cannot be used."""


@dataclass(frozen=True, slots=True)
class ClusterNode:
    name: str
    addresses: tuple[str, ...]  #: InternalIP, as the node reports them (IPv4 first)
    pod_cidrs: tuple[str, ...]
    rack: str | None


def read_nodes(text: str, where: str, rack_label: str) -> list[ClusterNode]:
    """The nodes of ``kubectl get nodes -o json`` (``where`` names the file in errors)."""
    hint = "give the output of kubectl get nodes -o json"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClusterError(Problem(where, "", f"not JSON ({exc.msg})", hint, exc.lineno)
                           ) from None
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ClusterError(Problem(where, "items", "no list of nodes (items)", hint))
    out = []
    for i, item in enumerate(items):
        path = f"items[{i}]"
        if not isinstance(item, dict) or item.get("kind", "Node") != "Node":
            raise ClusterError(Problem(where, path, "is not a Node", hint))
        meta, spec, status = (item.get(k) or {} for k in ("metadata", "spec", "status"))
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ClusterError(Problem(where, f"{path}.metadata.name", "missing", hint))
        addrs = [a.get("address", "") for a in status.get("addresses") or []
                 if isinstance(a, dict) and a.get("type") == "InternalIP"]
        for a in addrs:
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise ClusterError(Problem(where, f"{path}.status.addresses", f"{a!r} is not "
                                           "an IP address", hint)) from None
        addrs.sort(key=lambda a: ":" in a)
        pods = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
        labels = meta.get("labels") or {}
        out.append(ClusterNode(name, tuple(addrs), tuple(pods), labels.get(rack_label)))
    return out


Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def switch_subnets(doc: dict[str, Any]) -> list[Subnet]:
    """The switches' peering subnets, from the inventory as written (its nodes may be missing
    or wrong: that is what an import is for)."""
    out = []
    for sw in doc.get("switches") or []:
        for p in (sw.get("peering") or []) if isinstance(sw, dict) else []:
            try:
                out.append(ipaddress.ip_interface(str(p)).network)
            except ValueError:
                continue  # bgpgen validate says what is wrong with it
    return out


def _peering(subnets: list[Subnet], addr: str) -> str | None:
    """``addr`` with the length of the switch subnet it lies in (None: in none)."""
    ip = ipaddress.ip_address(addr)
    for net in subnets:
        if ip.version == net.version and ip in net:
            return f"{addr}/{net.prefixlen}"
    return None


def _subnet_of(subnets: list[Subnet], text: str) -> Subnet | None:
    try:
        ip = ipaddress.ip_interface(str(text)).ip
    except ValueError:
        return None
    return next((n for n in subnets if n.version == ip.version and ip in n), None)


def _merged_peering(subnets: list[Subnet], have: list[str], internal: list[str]) -> list[str]:
    """The node's peering addresses with the cluster's InternalIPs in: an InternalIP takes the
    place of the address on its switch subnet; addresses on other subnets (a second ToR's link,
    which Kubernetes does not report) stay."""
    out = list(have)
    for addr in internal:
        net = _subnet_of(subnets, addr)
        same = [i for i, a in enumerate(out) if net is not None and _subnet_of(subnets, a) == net]
        if same:
            out[same[0]] = addr
        else:
            out.append(addr)
    return out


def imported(subnets: list[Subnet], nodes: list[ClusterNode], existing: list[dict[str, Any]],
             group: str | None, where: str, group_racks: dict[str, str] | None = None
             ) -> tuple[list[dict[str, Any]], list[str]]:
    """The inventory's node entries for the cluster's nodes, and what changed (one line each).
    The management address is the first InternalIP for a new node only (a known node keeps its
    own: bgpgen may reach it another way); the rack is written when it is not the group's."""
    group_racks = group_racks or {}
    before = {e.get("name"): e for e in existing if isinstance(e, dict)}
    out, said = [], []
    for n in nodes:
        entry = dict(before.get(n.name) or {})
        if not entry:
            if group is None:
                raise ClusterError(Problem(where, n.name, "is a new node and bgpgen cannot tell "
                                           "its speaker and AS number from the cluster",
                                           "pass --group NAME (a node_group giving them)"))
            entry = {"name": n.name, "group": group}
            said.append(f"+ {n.name}: added (group {group})")
        peering = []
        for a in n.addresses:
            p = _peering(subnets, a)
            if p is None:
                raise ClusterError(Problem(where, n.name, f"InternalIP {a} is on no switch's "
                                           "peering subnet", "add the rack's switch to the "
                                           "inventory, or peer this node explicitly"))
            peering.append(p)
        known = n.name in before
        if known:
            peering = _merged_peering(subnets, [str(a) for a in entry.get("peering") or []],
                                      peering)
        rack = n.rack
        if rack is not None and not entry.get("rack") and \
                group_racks.get(str(entry.get("group"))) == rack:
            rack = None  # the group says so already
        new = {"peering": peering, "pod_cidrs": list(n.pod_cidrs), "rack": rack,
               "mgmt": None if known or not n.addresses else {"host": n.addresses[0]}}
        for key, value in new.items():
            if value in (None, []) or entry.get(key) == value:
                continue
            if n.name in before:
                said.append(f"~ {n.name}: {key} {entry.get(key)} -> {value}")
            entry[key] = value
        out.append(entry)
    gone = sorted(str(name) for name in set(before) - {n.name for n in nodes})
    said += [f"- {name}: not in the cluster, removed" for name in gone]
    return out, said


def differences(fabric: Fabric, nodes: list[ClusterNode]) -> list[str]:
    """Where the inventory and the cluster disagree, one line each (empty: they agree)."""
    have = {n.name: n for n in fabric.nodes}
    seen = {n.name: n for n in nodes}
    out = [f"{name}: in the inventory, not in the cluster"
           for name in sorted(set(have) - set(seen))]
    out += [f"{name}: in the cluster, not in the inventory"
            for name in sorted(set(seen) - set(have))]
    for name in sorted(set(have) & set(seen)):
        inv, k8s = have[name], seen[name]
        out += _node_differences(inv, k8s)
    return out


def _node_differences(inv: Node, k8s: ClusterNode) -> list[str]:
    out = []
    pods = sorted(str(p) for p in inv.pod_cidrs)
    if k8s.pod_cidrs and sorted(k8s.pod_cidrs) != pods:
        out.append(f"{inv.name}: pod CIDRs {', '.join(pods) or 'none'} in the inventory, "
                   f"{', '.join(sorted(k8s.pod_cidrs))} in the cluster")
    mine = {str(i.ip) for i in inv.interfaces}
    theirs = set(k8s.addresses)
    if theirs and not theirs <= mine:
        out.append(f"{inv.name}: InternalIP {', '.join(sorted(theirs - mine))} is not one of "
                   f"its peering addresses ({', '.join(sorted(mine))})")
    if k8s.rack is not None and inv.rack is not None and k8s.rack != inv.rack:
        out.append(f"{inv.name}: rack {inv.rack} in the inventory, {k8s.rack} in the cluster")
    return out


def load_nodes(path: Path | str, rack_label: str) -> list[ClusterNode]:
    """Read the node list from a file, or from stdin for ``-``."""
    import sys
    where = "<stdin>" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text()
    except (OSError, UnicodeError) as exc:
        raise ClusterError(Problem(where, "", f"cannot read it ({exc})",
                                   "give a file written by kubectl get nodes -o json")) from None
    return read_nodes(text, where, rack_label)


@dataclass(frozen=True, slots=True)
class Imported:
    """What :func:`import_nodes` did."""

    file: Path
    nodes: int
    changes: tuple[str, ...]
    written: bool


def import_nodes(inventory: Path | str, nodes_from: Path | str, group: str | None = None,
                 into: Path | str | None = None) -> Imported:
    """Write the cluster's nodes (``nodes_from``: kubectl get nodes -o json, ``-`` for stdin)
    into the inventory file that holds ``nodes:`` (or ``into``, a file of the inventory). The
    inventory is validated with the new file before it replaces the old one; nothing is written
    when the file already says what the cluster does."""
    from .loader import inventory_files, load, read_file
    from .validate import load_fabric
    inventory = Path(inventory)
    raw, _ = load(inventory)  # its nodes may be missing or wrong: not validated yet
    label = (raw.get("cluster") or {}).get("rack_label") or "topology.kubernetes.io/zone"
    nodes = load_nodes(nodes_from, str(label))
    files = inventory_files(inventory)
    if into is None:
        holding = [f for f in files if "\nnodes:" in "\n" + f.read_text()]
        target = holding[0] if len(holding) == 1 else inventory / "nodes.yaml"
    else:
        target = Path(into)
        if target.resolve().parent != inventory.resolve() or \
                target.suffix not in (".yaml", ".yml") or target.name.startswith("."):
            raise ClusterError(Problem(str(target), "--file", "is not a file of the inventory "
                                       f"{inventory}", f"name a *.yaml file directly in "
                                       f"{inventory}"))
    doc = read_file(target) if target.exists() else None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise ClusterError(Problem(str(target), "", f"top level is a {type(doc).__name__}, not "
                                   "a mapping", "give an inventory file with keys such as "
                                   "nodes:"))
    racks = {str(g.get("name")): str(g.get("rack")) for g in raw.get("node_groups") or []
             if isinstance(g, dict) and g.get("rack")}
    entries, said = imported(switch_subnets(raw), nodes, doc.get("nodes") or [], group,
                             str(nodes_from), racks)
    if entries == (doc.get("nodes") or []):
        return Imported(target, len(entries), tuple(said), False)
    doc["nodes"] = entries
    text = ("# yaml-language-server: $schema=.bgpgen-inventory.schema.json\n"
            "# nodes: written by bgpgen import from the cluster (names, InternalIPs, pod CIDRs,\n"
            "# racks); speaker, asn, group and vips are the inventory's own.\n"
            + yaml.safe_dump(doc, sort_keys=False, width=100))
    with tempfile.TemporaryDirectory() as tmp:  # the inventory as it would be, validated
        trial = Path(tmp) / "inventory"
        trial.mkdir()
        for f in files:
            if f.resolve() != target.resolve():
                shutil.copy2(f, trial / f.name)
        (trial / target.name).write_text(text)
        try:
            load_fabric(trial)
        except BgpgenError as exc:  # said of the real inventory, not of the trial copy
            def real(text: str) -> str:
                return text.replace(str(trial), str(inventory))
            raise type(exc)([dataclasses.replace(p, file=real(p.file), message=real(p.message),
                                                 hint=real(p.hint)) for p in exc.problems]
                            ) from None
    new = target.with_name(f".{target.name}.bgpgen-new")
    new.write_text(text)
    os.replace(new, target)
    return Imported(target, len(entries), tuple(said), True)


__all__ = ["ClusterError", "ClusterNode", "Imported", "differences", "import_nodes", "imported",
           "load_nodes", "read_nodes"]
