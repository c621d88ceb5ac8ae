"""How a device is reached: the OpenSSH client config first, the inventory's mgmt fills in,
ProxyJump chains in order, ~/.ssh/config by default; bad configs are one-line errors."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path

import pytest

from bgpgen import load_fabric
from bgpgen.model import Mgmt
from bgpgen.reach import ReachError, load_config, reach
from bgpgen.targets import from_inventory

from .conftest import EXAMPLES, Run

CONFIG = """\
Host bastion-1
  HostName 10.9.0.1
  User jump
  IdentityFile ~/.ssh/jump_key
Host bastion-2
  HostName 10.9.0.2
  ProxyJump bastion-1
Host tor-*
  User netops
  Port 2222
  IdentityFile %d/.ssh/%r_key
  UserKnownHostsFile /etc/bgpgen/known_hosts
  ProxyJump bastion-2
Host node-r1-01
  HostName 10.1.1.101
Host loop-a
  ProxyJump loop-b
Host loop-b
  ProxyJump loop-a
"""


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text(CONFIG)
    return path


def test_ssh_config_comes_first_and_inventory_fills_in(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(_config(tmp_path))
    way = reach(cfg, "tor-r1-a", Mgmt(host="192.0.2.50", port=22, user="bgpgen",
                                      key="~/inventory_key"))
    assert (way.ssh.host, way.ssh.port, way.ssh.user) == ("192.0.2.50", 2222, "netops")
    assert way.ssh.keys == (f"{tmp_path}/.ssh/netops_key",)  # %d and %r expanded
    assert way.ssh.known_hosts == ("/etc/bgpgen/known_hosts",)
    # ProxyJump bastion-2, whose own ProxyJump is bastion-1: bastion-1 first.
    assert [(h.alias, h.host, h.user) for h in way.jumps] == [
        ("bastion-1", "10.9.0.1", "jump"), ("bastion-2", "10.9.0.2", getpass.getuser())]
    assert way.jumps[0].keys == (f"{tmp_path}/.ssh/jump_key",)
    # Nothing in the config for this one's user or key: the inventory's.
    node = reach(cfg, "node-r1-01", Mgmt(host="192.0.2.99", port=2201, user="bgpgen",
                                         key="/keys/k", jump="root@10.9.0.9:2022"))
    assert (node.ssh.host, node.ssh.port, node.ssh.user, node.ssh.keys) == (
        "10.1.1.101", 2201, "bgpgen", ("/keys/k",))
    assert [(h.host, h.port, h.user) for h in node.jumps] == [("10.9.0.9", 2022, "root")]
    # An ssh config alias chosen in the inventory.
    aliased = reach(cfg, "anything", Mgmt(ssh_host="node-r1-01"))
    assert aliased.ssh.host == "10.1.1.101"


def test_proxyjump_loops_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReachError, match="ProxyJump loops"):
        reach(load_config(_config(tmp_path)), "x", Mgmt(ssh_host="loop-a"))


def test_home_ssh_config_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host tor-r1-a\n  HostName 10.7.7.7\n  Port 2200\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    targets = from_inventory(load_fabric(EXAMPLES["dc1"]))
    assert (targets["tor-r1-a"].host, targets["tor-r1-a"].port) == ("10.7.7.7", 2200)
    # dc1's fabric.management.user is bgpgen: not root, so privileged steps go through sudo
    assert targets["tor-r1-a"].user == "bgpgen" and targets["tor-r1-a"].become


def test_bad_ssh_config_is_one_line(cli: Callable[..., Run], tmp_path: Path,
                                    secret_env: str) -> None:
    r = cli("diff", "--live", "--ssh-config", str(tmp_path / "missing"))
    assert r.code == 1 and r.err.count("\n") == 1 and "--ssh-config: no such file" in r.err
    assert "Traceback" not in r.err
