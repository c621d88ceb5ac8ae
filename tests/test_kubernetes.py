"""The Kubernetes speakers' resources: every object bgpgen renders for the k8s-speakers example
validates against a JSON Schema derived from its upstream CRD (tests/crds/README.md names each
file, commit and version), passwords are Secret references, and what a speaker cannot take is
refused in one line."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from .conftest import EXAMPLES, ROOT, SECRET, Run

CRDS = ROOT / "tests" / "crds"
EXAMPLE = EXAMPLES["k8s-speakers"]
#: the upstream CRD of each (apiVersion, kind) bgpgen renders
UPSTREAM = {
    ("metallb.io/v1beta2", "BGPPeer"): "metallb.io_bgppeers.yaml",
    ("metallb.io/v1beta1", "BGPAdvertisement"): "metallb.io_bgpadvertisements.yaml",
    ("metallb.io/v1beta1", "IPAddressPool"): "metallb.io_ipaddresspools.yaml",
    ("projectcalico.org/v3", "BGPPeer"): "projectcalico.org_bgppeers.yaml",
    ("projectcalico.org/v3", "BGPConfiguration"): "projectcalico.org_bgpconfigurations.yaml",
    ("network.kubesphere.io/v1alpha2", "BgpConf"): "network.kubesphere.io_bgpconfs.yaml",
    ("network.kubesphere.io/v1alpha2", "BgpPeer"): "network.kubesphere.io_bgppeers.yaml",
    ("cilium.io/v2", "CiliumBGPClusterConfig"): "cilium.io_ciliumbgpclusterconfigs.yaml",
    ("cilium.io/v2", "CiliumBGPPeerConfig"): "cilium.io_ciliumbgppeerconfigs.yaml",
    ("cilium.io/v2", "CiliumBGPAdvertisement"): "cilium.io_ciliumbgpadvertisements.yaml",
}


def structural(schema: Any) -> Any:
    """A CRD's openAPIV3Schema as JSON Schema, stricter where Kubernetes is lenient: an object
    with properties accepts no others (the API server would prune a misspelt field silently);
    ``x-kubernetes-int-or-string`` is either; ``nullable`` admits null; other ``x-kubernetes-*``
    markers and formats are annotations."""
    if isinstance(schema, list):
        return [structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: structural(v) for k, v in schema.items()
           if not k.startswith("x-kubernetes-") and k not in ("nullable", "format", "default")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def validator(api: str, kind: str) -> Any:
    crd = yaml.safe_load((CRDS / UPSTREAM[(api, kind)]).read_text())
    assert crd["spec"]["names"]["kind"] == kind and api.startswith(crd["spec"]["group"] + "/")
    version = next(v for v in crd["spec"]["versions"] if f"{crd['spec']['group']}/{v['name']}"
                   == api)
    assert version["served"]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {  # what the API server checks of every object's metadata
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 253,
                                "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                       "namespace": {"type": "string",
                                     "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                       "labels": {"type": "object", "additionalProperties": {"type": "string"}}},
        "additionalProperties": False}
    namespaced = crd["spec"]["scope"] == "Namespaced"
    schema.setdefault("required", [])
    schema["required"] = sorted({*schema["required"], "apiVersion", "kind", "metadata", "spec"})
    schema["properties"]["metadata"]["required"] = ["name", "namespace"] if namespaced \
        else ["name"]
    if not namespaced:
        schema["properties"]["metadata"]["properties"].pop("namespace")
    return jsonschema_rs.validator_for(structural(schema))


#: the CRDs' CEL rules (x-kubernetes-validations) that bear on what bgpgen renders, by hand:
#: (kind, rule as upstream writes it, the same in Python on the object's spec)
CEL: list[tuple[str, str, Callable[[dict[str, Any]], bool]]] = [
    ("CiliumBGPPeerConfig", "self.keepAliveTimeSeconds <= self.holdTimeSeconds",
     lambda s: s["timers"]["keepAliveTimeSeconds"] <= s["timers"]["holdTimeSeconds"]),
    ("CiliumBGPAdvertisement", "self.advertisementType != 'Service' || has(self.service)",
     lambda s: all(a["advertisementType"] != "Service" or "service" in a
                   for a in s["advertisements"])),
    ("CiliumBGPAdvertisement", "self.advertisementType == 'Service' || !has(self.service)",
     lambda s: all(a["advertisementType"] == "Service" or "service" not in a
                   for a in s["advertisements"])),
    ("CiliumBGPAdvertisement", "self.advertisementType != 'PodCIDR' || !has(self.selector)",
     lambda s: all(a["advertisementType"] != "PodCIDR" or "selector" not in a
                   for a in s["advertisements"])),
    ("CiliumBGPClusterConfig", "has(self.peerAddress) || has(self.autoDiscovery)",
     lambda s: all("peerAddress" in p or "autoDiscovery" in p
                   for i in s["bgpInstances"] for p in i.get("peers", []))),
]


def rendered(tmp_path: Path, cli: Callable[..., Run], inv: Path = EXAMPLE) -> dict[str, Any]:
    out = tmp_path / "build"
    r = cli("render", "-i", str(inv), "-o", str(out))
    assert r.code == 0, r.err
    return {p.name: (p.read_text(), list(yaml.safe_load_all(p.read_text())))
            for p in sorted((out / "_kubernetes").iterdir())}


def test_every_resource_validates_against_its_upstream_crd(tmp_path: Path, secret_env: str,
                                                           cli: Callable[..., Run]) -> None:
    files = rendered(tmp_path, cli)
    assert sorted(files) == ["calico.yaml", "cilium.yaml", "metallb.yaml", "openelb.yaml"]
    seen = set()
    for name, (text, objects) in files.items():
        assert SECRET not in text  # a reference to a Secret, never the value
        for obj in objects:
            key = (obj["apiVersion"], obj["kind"])
            errors = [f"{e.instance_path}: {e.message}"
                      for e in validator(*key).iter_errors(obj)]
            assert not errors, (name, obj["metadata"]["name"], errors)
            for kind, rule, holds in CEL:
                assert obj["kind"] != kind or holds(obj["spec"]), (obj["metadata"]["name"], rule)
            seen.add(key)
    assert seen == set(UPSTREAM)  # every kind bgpgen renders was checked


def test_the_validator_catches_a_misspelt_field() -> None:
    """The derived schema is strict enough to matter."""
    good = {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": "x", "namespace": "metallb-system"},
            "spec": {"myASN": 65001, "peerASN": 65002, "peerAddress": "198.18.1.1"}}
    check = validator("metallb.io/v1beta2", "BGPPeer")
    assert check.is_valid(good)
    bad = copy.deepcopy(good)
    bad["spec"]["peerAdress"] = bad["spec"].pop("peerAddress")
    assert not check.is_valid(bad)
    assert not check.is_valid({**good, "metadata": {"name": "x"}})  # namespaced: needs one


def test_peerings_select_racks_and_share_the_sessions_of_the_switch_side(
        tmp_path: Path, secret_env: str, cli: Callable[..., Run]) -> None:
    from bgpgen import load_fabric
    fabric = load_fabric(EXAMPLE)
    files = rendered(tmp_path, cli)
    peers = [o for o in files["metallb.yaml"][1] if o["kind"] == "BGPPeer"]
    sessions = [s for s in fabric.sessions if s.node.startswith("lb-")]
    assert {(p["spec"]["peerAddress"], p["spec"]["peerASN"], p["spec"]["myASN"]) for p in peers} \
        == {(str(s.switch_address), s.switch_asn, s.node_asn) for s in sessions}
    (sel,) = peers[0]["spec"]["nodeSelectors"]
    assert sel == {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In",
                                         "values": ["rack-metallb"]}]}
    assert peers[0]["spec"]["passwordSecret"] == {"name": "bgpgen-tor-md5",
                                                  "namespace": "metallb-system"}
    calico = {o["kind"]: o for o in files["calico.yaml"][1]}
    assert calico["BGPPeer"]["spec"]["nodeSelector"] == \
        "topology.kubernetes.io/zone in {'rack-calico'}"
    assert calico["BGPConfiguration"]["spec"]["nodeToNodeMeshEnabled"] is False


def test_a_password_openelb_cannot_take_as_a_secret_is_refused(
        tmp_path: Path, secret_env: str, cli: Callable[..., Run]) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inv)
    text = (inv / "nodes.yaml").read_text()
    (inv / "nodes.yaml").write_text(text.replace("asn: 65103, profile: open}", "asn: 65103}"))
    sw = (inv / "switches.yaml").read_text()
    (inv / "switches.yaml").write_text(sw.replace(", profile: open}", "}"))
    r = cli("render", "-i", str(inv), "-o", str(tmp_path / "out"))
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1, r.err
    assert "authPassword" in r.err and "hint:" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "out").exists()


# --- nodes from the cluster -----------------------------------------------------------------------

def kubectl_nodes(fabric: Any) -> dict[str, Any]:
    """What kubectl get nodes -o json prints for dc1's nodes as a dual-stack cluster: each
    node's peering addresses as InternalIPs (IPv4 and IPv6), its pod CIDRs of both families, its
    rack as the topology.kubernetes.io/zone label."""
    items = []
    for n in fabric.nodes:
        items.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n.name, "labels": {"kubernetes.io/hostname": n.name,
                                                    "topology.kubernetes.io/zone": n.rack}},
            "spec": {"podCIDR": str(n.pod_cidrs[0]), "podCIDRs": [str(p) for p in n.pod_cidrs]},
            "status": {"addresses": [{"type": "InternalIP", "address": str(i.ip)}
                                     for i in n.interfaces] + [{"type": "Hostname",
                                                                "address": n.name}]}})
    return {"apiVersion": "v1", "kind": "List", "items": items}


def test_import_writes_nodes_that_validate_and_diff_cluster_finds_changes(
        tmp_path: Path, secret_env: str, cli: Callable[..., Run]) -> None:
    import json

    from bgpgen import load_fabric
    fabric = load_fabric(EXAMPLES["dc1"])
    cluster = tmp_path / "nodes.json"
    cluster.write_text(json.dumps(kubectl_nodes(fabric), indent=1))
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    text = (inv / "nodes.yaml").read_text()
    groups = text.split("\nnodes:\n")[0]  # the node groups, and no node
    (inv / "nodes.yaml").write_text(groups + "\n  - {name: imported, speaker: gobgp, asn: 65099}\n")
    r = cli("import", "-i", str(inv), "--nodes", str(cluster))
    assert r.code == 1 and "--group" in r.err and len(r.err.splitlines()) == 1  # new nodes
    assert (inv / "nodes.yaml").read_text().count("name: node-") == 0  # nothing written
    r = cli("import", "-i", str(inv), "--nodes", str(cluster), "--group", "imported")
    assert r.code == 0, r.err
    assert r.out.count("+ node-") == len(fabric.nodes)
    imported = load_fabric(inv)
    assert {n.name for n in imported.nodes} == {n.name for n in fabric.nodes}
    for n in imported.nodes:
        want = fabric.device(n.name)
        assert isinstance(want, type(n))
        assert n.pod_cidrs == want.pod_cidrs and n.rack == want.rack
        assert {str(i) for i in n.interfaces} == {str(i) for i in want.interfaces}
    assert cli("render", "-i", str(inv), "-o", str(tmp_path / "build")).code == 0
    # the cluster as it is now: the inventory agrees
    r = cli("diff", "-i", str(inv), "--cluster", str(cluster))
    assert r.code == 0 and "agree (8 nodes)" in r.out
    # a pod CIDR changed and a node gone: exactly two lines, exit 2
    data = kubectl_nodes(fabric)
    data["items"][2]["spec"]["podCIDRs"][0] = "10.244.99.0/24"
    gone = data["items"].pop(5)["metadata"]["name"]
    cluster.write_text(json.dumps(data))
    r = cli("diff", "-i", str(inv), "--cluster", str(cluster))
    assert r.code == 2
    assert r.out.splitlines() == [
        f"{gone}: in the inventory, not in the cluster",
        f"{data['items'][2]['metadata']['name']}: pod CIDRs 10.244.3.0/24, 2001:db8:244:3::/64 in "
        "the inventory, 10.244.99.0/24, 2001:db8:244:3::/64 in the cluster"], r.out
    cluster.write_text("{not json")
    r = cli("diff", "-i", str(inv), "--cluster", str(cluster))
    assert r.code == 1 and "not JSON" in r.err and len(r.err.splitlines()) == 1


def test_diff_against_shows_the_resources_that_change(tmp_path: Path, secret_env: str,
                                                      cli: Callable[..., Run]) -> None:
    """A timer changed: the plan against the previous build has the switches' changes and the
    Kubernetes resources' diff (what CI shows on a pull request)."""
    out = tmp_path / "build"
    assert cli("render", "-i", str(EXAMPLE), "-o", str(out)).code == 0
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLE, inv)
    text = (inv / "fabric.yaml").read_text()
    (inv / "fabric.yaml").write_text(text.replace("timers: {hold: 9, keepalive: 3,",
                                                  "timers: {hold: 12, keepalive: 4,", 1))
    r = cli("diff", "-i", str(inv), "--against", str(out))
    assert r.code == 2, r.err
    assert "~ _kubernetes (kubernetes)" in r.out and "+  holdTime: 12s" in r.out
    assert "+    holdTimeSeconds: 12" in r.out  # Cilium's peer config
    r = cli("diff", "-i", str(EXAMPLE), "--against", str(out))
    assert r.code == 0 and "_kubernetes" not in r.out


def test_import_into_an_inventory_keeps_what_the_cluster_does_not_know(
        tmp_path: Path, secret_env: str, cli: Callable[..., Run]) -> None:
    """The cluster reports one InternalIP per family and a moved pod CIDR: the node's second
    ToR link and its management address stay, the pod CIDR follows the cluster; a cluster that
    agrees rewrites nothing (the file and its comments are left as they are)."""
    import json

    from bgpgen import load_fabric
    fabric = load_fabric(EXAMPLES["dc1"])
    data = kubectl_nodes(fabric)
    for item in data["items"]:  # what kubelet reports: one node IP per family
        addrs = item["status"]["addresses"]
        item["status"]["addresses"] = [addrs[0], addrs[2]]
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    cluster = tmp_path / "nodes.json"
    cluster.write_text(json.dumps(data))
    before = (inv / "nodes.yaml").read_text()
    r = cli("import", "-i", str(inv), "--nodes", str(cluster))
    assert r.code == 0 and "nothing written" in r.out, r.out + r.err
    assert (inv / "nodes.yaml").read_text() == before
    data["items"][2]["spec"]["podCIDRs"][0] = "10.244.33.0/24"
    cluster.write_text(json.dumps(data))
    r = cli("import", "-i", str(inv), "--nodes", str(cluster))
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == ("~ node-r1-03: pod_cidrs ['10.244.3.0/24', "
                                     "'2001:db8:244:3::/64'] -> ['10.244.33.0/24', "
                                     "'2001:db8:244:3::/64']")
    now = load_fabric(inv).device("node-r1-03")
    was = fabric.device("node-r1-03")
    assert [str(p) for p in now.pod_cidrs][0] == "10.244.33.0/24"  # type: ignore[attr-defined]
    assert now.interfaces == was.interfaces and now.mgmt == was.mgmt


def test_speakers_bgpgen_does_not_configure_have_no_target_in_a_fleet(
        tmp_path: Path, secret_env: str, cli: Callable[..., Run]) -> None:
    """Without a lab: the fleet's targets are the switches only, and a --limit that selects
    only such nodes is a one-line error before anything connects."""
    from bgpgen import load_fabric
    from bgpgen.targets import from_inventory
    fabric = load_fabric(EXAMPLE)
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host *\n  User root\n")
    assert sorted(from_inventory(fabric, ssh_config)) == sorted(s.name for s in fabric.switches)
    r = cli("diff", "-i", str(EXAMPLE), "--live", "--ssh-config", str(ssh_config), "--limit",
            "lb-*")
    assert r.code == 1 and len(r.err.splitlines()) == 1, r.err
    assert "--limit" in r.err and "hint:" in r.err


def test_import_bad_targets_are_one_line_errors(tmp_path: Path, secret_env: str,
                                                cli: Callable[..., Run]) -> None:
    import json

    from bgpgen import load_fabric
    cluster = tmp_path / "nodes.json"
    cluster.write_text(json.dumps(kubectl_nodes(load_fabric(EXAMPLES["dc1"]))))
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    before = {p.name: p.read_text() for p in inv.iterdir() if p.is_file()}
    for target, words in ((tmp_path / "elsewhere.yaml", "is not a file of the inventory"),
                          (inv / "nodes.txt", "is not a file of the inventory")):
        r = cli("import", "-i", str(inv), "--nodes", str(cluster), "--file", str(target))
        assert r.code == 1 and words in r.err and len(r.err.splitlines()) == 1, r.err
    (inv / "broken.yaml").write_text("nodes: [\n")
    r = cli("import", "-i", str(inv), "--nodes", str(cluster), "--file",
            str(inv / "broken.yaml"))
    assert r.code == 1 and "broken.yaml" in r.err and "Traceback" not in r.err, r.err
    (inv / "broken.yaml").unlink()
    data = kubectl_nodes(load_fabric(EXAMPLES["dc1"]))
    data["items"][0]["spec"]["podCIDRs"] = ["10.244.2.0/24"]  # another node's: refused
    cluster.write_text(json.dumps(data))
    r = cli("import", "-i", str(inv), "--nodes", str(cluster))
    assert r.code == 1 and str(inv) in r.err and "/tmp/tmp" not in r.err, r.err
    assert {p.name: p.read_text() for p in inv.iterdir() if p.is_file()} == before
