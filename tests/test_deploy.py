"""diff and deploy against labs: real daemons, real SSH (Nornir + Netmiko), real faults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgpgen import lab, load_fabric

from .conftest import EXAMPLES, ROOT, Run, SECRET, require_lab_environment, unique_lab_name
from .lab_helpers import changed_inventory, vtysh_json, wait_for

CONFIGS = ("gobgpd.conf", "gobgpd.originate.json", "bird.conf", "frr.conf")
#: each platform's config file on a device, as Debian has it
PATHS = {"gobgpd.toml": "/etc/gobgpd.conf", "bird.conf": "/etc/bird/bird.conf",
         "frr.conf": "/etc/frr/frr.conf"}


@pytest.fixture(autouse=True)
def _needs_root(secret_env: str) -> None:
    require_lab_environment("deploy tests")


def _name(request: pytest.FixtureRequest) -> str:
    return unique_lab_name("d", request)


@pytest.fixture
def bootstrap_lab(request: pytest.FixtureRequest) -> Iterator[str]:
    name = _name(request)
    lab.up(load_fabric(EXAMPLES["dc1"]), name)
    yield name
    _no_secret_in_logs(name)
    lab.down(name)


@pytest.fixture
def rendered_lab(request: pytest.FixtureRequest) -> Iterator[str]:
    name = _name(request)
    lab.up(load_fabric(EXAMPLES["dc1"]), name, render_configs=True)
    wait_for(lambda: _all_up(name), 30, "sessions up")
    yield name
    _no_secret_in_logs(name)
    lab.down(name)


def _no_secret_in_logs(name: str) -> None:
    for p in (lab.lab_dir(name) / "dev").rglob("log/*"):
        assert SECRET not in p.read_text(errors="replace"), f"secret in {p}"


def _all_up(name: str) -> bool:
    states = lab.sessions(name)
    return all(s == "Established" for peers in states.values() for s in peers.values())


def _check(r: Run, code: int) -> Run:
    assert r.code == code, f"exit {r.code}, wanted {code}:\n{r.out}\n{r.err}"
    assert SECRET not in r.out + r.err and "Traceback" not in r.err
    return r


def _mtimes(name: str) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in (lab.lab_dir(name) / "dev").rglob("*")
            if p.name in CONFIGS}


def _pids(name: str) -> dict[str, list[int]]:
    st = lab.status(name)
    return {d: sorted(p["pid"] for p in v["processes"]) for d, v in st["devices"].items()}


def _uptimes(name: str) -> dict[str, int]:
    info = lab.overlay(name)["devices"]
    out = {}
    for sw in ("tor-r1-a", "tor-r1-b", "tor-r2-a", "tor-r2-b"):
        data = vtysh_json(info[sw], "show bgp summary json")
        for af in data.values():
            for peer, v in af.get("peers", {}).items():
                out[f"{sw}/{peer}"] = v["peerUptimeMsec"]
    return out


def _changed(r: Run) -> dict[str, str]:
    return {x["device"]: x["status"] for x in json.loads(r.out)["results"]}


def test_deploy_from_bootstrap_then_nothing_to_do(bootstrap_lab: str,
                                                  cli: Callable[..., Run]) -> None:
    name = bootstrap_lab
    r = _check(cli("deploy", "--lab", name, "--yes", "--format", "json"), 0)
    assert set(_changed(r).values()) == {"changed"}
    wait_for(lambda: _all_up(name), 30, "every session up after the first deploy")
    _check(cli("diff", "--live", "--lab", name), 0)
    before = (_mtimes(name), _pids(name), _uptimes(name))
    time.sleep(1.5)
    r = _check(cli("deploy", "--lab", name, "--yes"), 0)
    assert "No changes: nothing written, nothing reloaded." in r.out
    after = (_mtimes(name), _pids(name), _uptimes(name))
    assert after[0] == before[0], "a config file was written"
    assert after[1] == before[1], "a daemon was restarted"
    for peer, up in before[2].items():
        assert after[2][peer] >= up + 1000, f"{peer} session was reset"


def test_pod_cidr_change(rendered_lab: str, cli: Callable[..., Run], tmp_path: Path) -> None:
    name = rendered_lab
    base = tmp_path / "base"
    _check(cli("render", "-o", str(base), "--secrets", "placeholder"), 0)
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    nodes = inv / "nodes.yaml"
    nodes.write_text(nodes.read_text().replace("[10.244.3.0/24,", "[10.244.33.0/24,"))
    touched = {"node-r1-03", "tor-r1-a", "tor-r1-b"}
    for how in (["--against", str(base)], ["--live", "--lab", name]):
        r = _check(cli("diff", "-i", str(inv), *how, "--format", "json"), 2)
        plan = json.loads(r.out)
        assert {d["device"] for d in plan["devices"] if d["action"] != "none"} == touched, how
        text = _check(cli("diff", "-i", str(inv), *how), 2).out
        assert "10.244.33.0/24" in text and "10.244.3.0/24" in text
        assert "Plan: 0 to add, 3 to change, 9 unchanged." in text
    md = _check(cli("diff", "-i", str(inv), "--against", str(base), "--format", "markdown"), 2)
    assert "| `tor-r1-a` | frr | update |" in md.out
    r = _check(cli("deploy", "-i", str(inv), "--lab", name, "--yes", "--format", "json"), 0)
    assert {d for d, s in _changed(r).items() if s == "changed"} == touched
    info = lab.overlay(name)["devices"]
    for sw in ("tor-r1-a", "tor-r1-b"):
        def rib() -> set[str] | None:
            routes = set(vtysh_json(info[sw], "show bgp ipv4 unicast json")["routes"])
            return routes if "10.244.33.0/24" in routes and "10.244.3.0/24" not in routes \
                else None
        wait_for(rib, 20, f"new prefix in {sw}'s RIB and the old one gone")


def _override(tmp_path: Path, platform: str, old: str, new: str) -> Path:
    d = tmp_path / "templates"
    (d / platform).mkdir(parents=True, exist_ok=True)
    name = {"bird": "bird.conf.j2", "frr": "frr.conf.j2", "gobgp": "gobgpd.toml.j2"}[platform]
    text = (ROOT / "templates" / platform / name).read_text()
    assert old in text
    (d / platform / name).write_text(text.replace(old, new))
    return d




def _file(name: str, device: str, file: str) -> str:
    return lab.device_path(name, device, PATHS[file]).read_text()


def test_config_rejected_on_target(rendered_lab: str, cli: Callable[..., Run],
                                   tmp_path: Path) -> None:
    name = rendered_lab
    before = _file(name, "node-r1-02", "bird.conf")
    tpl = _override(tmp_path, "bird", "  hold time", "  bogus_option on;\n  hold time")
    r = _check(cli("deploy", "-i", str(changed_inventory(tmp_path)), "--lab", name, "--yes",
                   "--templates", str(tpl), "--format", "json"), 1)
    res = {x["device"]: x for x in json.loads(r.out)["results"]}
    for node in ("node-r1-02", "node-r1-04", "node-r2-02", "node-r2-04"):
        assert res[node]["status"] == "failed" and "configure check" in res[node]["message"]
    assert {d for d, x in res.items() if x["status"] == "changed"} == \
        {"node-r1-03", "tor-r1-a", "tor-r1-b"}
    assert _file(name, "node-r1-02", "bird.conf") == before
    wait_for(lambda: _all_up(name), 20, "sessions up")


def test_switch_reload_that_breaks_sessions_is_rolled_back(rendered_lab: str,
                                                           cli: Callable[..., Run],
                                                           tmp_path: Path) -> None:
    name = rendered_lab
    tpl = _override(tmp_path, "frr", " neighbor {{ s.node_address }} remote-as {{ s.node_asn }}",
                    " neighbor {{ s.node_address }} remote-as {{ s.node_asn + "
                    "(1000 if device.name == 'tor-r1-a' else 0) }}")
    r = _check(cli("deploy", "-i", str(changed_inventory(tmp_path)), "--lab", name, "--yes",
                   "--templates", str(tpl), "--timeout", "8", "--format", "json"), 1)
    res = {x["device"]: x for x in json.loads(r.out)["results"]}
    assert res["tor-r1-a"]["status"] == "failed"
    assert "did not re-establish" in res["tor-r1-a"]["message"]
    assert "previous running config was reloaded" in res["tor-r1-a"]["message"]
    assert res["tor-r1-b"]["status"] == "changed" and res["node-r1-03"]["status"] == "changed"
    info = lab.overlay(name)["devices"]["tor-r1-a"]

    def back() -> bool:
        states = lab.read_sessions(info)
        return bool(states) and all(s == "Established" for s in states.values())
    wait_for(back, 30, "tor-r1-a's sessions back after the rollback")
    running = subprocess.run(lab.ssh_argv(name, "tor-r1-a", cli=True) + ["show running-config"],
                             capture_output=True, text=True, timeout=20).stdout
    assert "remote-as 66013" not in running and "remote-as 65013" in running


def test_unreachable_node(rendered_lab: str, cli: Callable[..., Run], tmp_path: Path) -> None:
    name = rendered_lab
    hold = lab.lab_dir(name) / "hold"
    hold.mkdir()
    (hold / "node-r1-03.sshd").touch()  # the supervisor leaves it down
    sshd = next(p for p in lab.status(name)["devices"]["node-r1-03"]["processes"]
                if p["name"] == "sshd")
    os.kill(sshd["pid"], 15)
    r = _check(cli("deploy", "-i", str(changed_inventory(tmp_path)), "--lab", name, "--yes",
                   "--format", "json"), 1)
    res = {x["device"]: x for x in json.loads(r.out)["results"]}
    assert res["node-r1-03"]["status"] == "failed"
    assert "unreachable" in res["node-r1-03"]["message"]
    assert res["tor-r1-a"]["status"] == "changed" and res["tor-r1-b"]["status"] == "changed"


def test_changed_host_key_is_refused(rendered_lab: str, cli: Callable[..., Run],
                                     tmp_path: Path) -> None:
    name = rendered_lab
    info = lab.overlay(name)["devices"]["node-r1-03"]
    kh = Path(info["known_hosts"])
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                   check=True)
    other = (tmp_path / "k.pub").read_text().split()
    lines = [f"{info['host']} {other[0]} {other[1]}" if ln.split()[0] == info["host"] else ln
             for ln in kh.read_text().splitlines()]
    kh.write_text("\n".join(lines) + "\n")
    before = _file(name, "node-r1-03", "gobgpd.toml")
    r = _check(cli("deploy", "-i", str(changed_inventory(tmp_path)), "--lab", name, "--yes",
                   "--format", "json"), 1)
    res = {x["device"]: x for x in json.loads(r.out)["results"]}
    assert res["node-r1-03"]["status"] == "failed"
    assert "host key" in res["node-r1-03"]["message"]
    assert _file(name, "node-r1-03", "gobgpd.toml") == before
    assert res["tor-r1-a"]["status"] == "changed"


def test_dry_run_and_confirmation(rendered_lab: str, cli: Callable[..., Run],
                                  tmp_path: Path) -> None:
    name = rendered_lab
    inv = changed_inventory(tmp_path)
    before = _mtimes(name)
    r = _check(cli("deploy", "-i", str(inv), "--lab", name, "--dry-run"), 2)
    assert "~ node-r1-03 (gobgp)" in r.out and _mtimes(name) == before
    r = cli("deploy", "-i", str(inv), "--lab", name)  # no --yes, no terminal
    assert r.code == 1 and "rerun with --yes" in r.err and _mtimes(name) == before


def test_limit_and_bad_limit(rendered_lab: str, cli: Callable[..., Run], tmp_path: Path) -> None:
    inv = changed_inventory(tmp_path)
    r = _check(cli("diff", "-i", str(inv), "--live", "--lab", rendered_lab, "--limit",
                   "tor-r1-*", "--format", "json"), 2)
    assert [d["device"] for d in json.loads(r.out)["devices"]] == ["tor-r1-a", "tor-r1-b"]
    r = cli("diff", "-i", str(inv), "--live", "--lab", rendered_lab, "--limit", "nope*")
    assert r.code == 1 and "matches no device" in r.err and r.err.count("\n") == 1
    r = cli("diff", "--live", "--lab", "no-such-lab")
    assert r.code == 1 and "lab no-such-lab is not up" in r.err
