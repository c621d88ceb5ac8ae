"""The library as users call it: the README's Nornir example, run verbatim against a lab that a
user's own SimpleInventory reaches (hosts.yaml / groups.yaml written here from the lab)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bgpgen import lab, load_fabric

from .conftest import EXAMPLES, ROOT, SECRET, require_lab_environment, unique_lab_name
from .lab_helpers import gobgp_json, wait_for


def readme_block(marker: str) -> str:
    """The code block that follows ``<!-- marker ... -->`` in the README."""
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {re.escape(marker)}[^>]*-->\n```\w*\n(.*?)```", text, re.S)
    assert m, f"no README block marked {marker}"
    return m.group(1)


@pytest.fixture
def rendered_lab(request: pytest.FixtureRequest, secret_env: str) -> Iterator[str]:
    require_lab_environment("library tests")
    name = unique_lab_name("y", request)
    lab.up(load_fabric(EXAMPLES["dc1"]), name, render_configs=True)
    try:
        wait_for(lambda: all(s == "Established" for peers in lab.sessions(name).values()
                             for s in peers.values()), 30, "sessions up")
        yield name
    finally:
        lab.down(name)


def _user_inventory(name: str, where: Path) -> None:
    """What a user's SimpleInventory would hold for this fabric: hosts with their addresses and
    groups, SSH options in a group."""
    info = lab.overlay(name)["devices"]
    fabric = load_fabric(EXAMPLES["dc1"])
    hosts = {}
    for d in fabric.devices:
        e = info[d.name]
        hosts[d.name] = {"hostname": e["host"], "port": e["port"], "username": e["user"],
                         "platform": "linux", "groups": ["lab", f"rack-{d.rack}"]}
    key, known = next(iter(info.values()))["key"], next(iter(info.values()))["known_hosts"]
    groups = {"lab": {"connection_options": {"netmiko": {"extras": {
        "use_keys": True, "key_file": key, "allow_agent": False, "ssh_strict": True,
        "system_host_keys": False, "alt_host_keys": True, "alt_key_file": known}}}},
        **{f"rack-{r}": {} for r in fabric.racks}}
    (where / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    (where / "groups.yaml").write_text(yaml.safe_dump(groups))


def test_readme_nornir_example_drives_the_whole_pipeline(rendered_lab: str,
                                                         tmp_path: Path) -> None:
    name = rendered_lab
    inv = tmp_path / "inventory"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    nodes = inv / "nodes.yaml"
    nodes.write_text(nodes.read_text().replace("[10.244.3.0/24,", "[10.244.33.0/24,"))
    _user_inventory(name, tmp_path)
    script = tmp_path / "example.py"
    script.write_text(readme_block("nornir-example"))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "BGPGEN_TOR_MD5": SECRET})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert SECRET not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    plans = {ln.split()[1]: ln.split()[2] for ln in lines if ln.startswith("plan ")}
    # rack r1 only (the user's filter); the pod CIDR change touches the node and its switches
    assert set(plans) == {"tor-r1-a", "tor-r1-b", "node-r1-01", "node-r1-02", "node-r1-03",
                          "node-r1-04"}, lines
    assert {n for n, action in plans.items() if action != "none"} == \
        {"node-r1-03", "tor-r1-a", "tor-r1-b"}, lines
    assert "failed [] gate True" in lines and "verify exit 0" in lines, lines
    info = lab.overlay(name)["devices"]
    rib = gobgp_json(info["node-r1-03"], "global", "rib", "-a", "ipv4")
    assert "10.244.33.0/24" in rib and "10.244.3.0/24" not in rib
