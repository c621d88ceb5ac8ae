"""Fleet commands as against a real fleet: no --lab anywhere. The lab only supplies hosts that
look real (their own /etc, hostname, sshd, systemctl) and an OpenSSH client config; deploy,
diff --live and verify reach them through that config alone: (a) directly, (b) through a
bastion with ProxyJump, (c) as a non-root user with sudo. Then one test per failure that
operators meet: unknown host key, wrong user, key refused, sudo wanting a password, bastion
unreachable."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bgpgen import lab, load_fabric, render
from bgpgen.secrets import fill

from .conftest import EXAMPLES, ROOT, SECRET, Run, require_lab_environment, unique_lab_name
from .lab_helpers import changed_inventory, vtysh_json, wait_for

CONFIG = {"gobgp": "/etc/gobgpd.conf", "bird": "/etc/bird/bird.conf", "frr": "/etc/frr/frr.conf"}


def _check(r: Run, code: int) -> Run:
    assert r.code == code, f"exit {r.code}, wanted {code}:\n{r.out}\n{r.err}"
    assert SECRET not in r.out + r.err and "Traceback" not in r.out + r.err
    return r


def _lab(request: pytest.FixtureRequest, **kw: Any) -> Iterator[str]:
    require_lab_environment("fleet tests")
    name = unique_lab_name("f", request)
    lab.up(load_fabric(EXAMPLES["dc1"]), name, **kw)
    try:
        yield name
    finally:
        lab.down(name)


def _on(name: str, device: str, *argv: str) -> str:
    r = lab.run_on(lab.overlay(name)["devices"][device], list(argv))
    assert r.returncode == 0, r.stderr
    return r.stdout


def _pids(name: str) -> dict[str, list[int]]:
    st = lab.status(name)
    return {d: sorted(p["pid"] for p in v["processes"]) for d, v in st["devices"].items()}




def _results(r: Run) -> dict[str, dict[str, Any]]:
    return {x["device"]: x for x in json.loads(r.out)["results"]}


def _whole_job(cli: Callable[..., Run], name: str, cfg: str, tmp_path: Path) -> None:
    """deploy, diff --live, a no-op deploy, a changed pod CIDR, verify: without --lab."""
    fleet = ("--ssh-config", cfg)
    r = _check(cli("deploy", *fleet, "--yes", "--format", "json"), 0)
    assert {d for d, x in _results(r).items() if x["status"] == "changed"}, r.out
    build = render(load_fabric(EXAMPLES["dc1"]))
    for d in build.fabric.devices:  # the files at their real paths, seen on the device
        conf = next(a for a in build.files_of(d.name).values()
                    if a.target == CONFIG[d.platform.value.split("-")[0]])
        text = _on(name, d.name, "cat", conf.target)
        want = fill(conf.text, {"tor-md5": SECRET})
        if d.platform.value == "frr":  # FRR writes its file back from what runs, reordered
            lines = [ln.strip() for ln in want.splitlines()
                     if ln.strip().startswith(("neighbor", "ip prefix-list", "route-map"))]
            assert lines and all(ln in text for ln in lines), d.name
        else:
            assert text == want, d.name
    _check(cli("diff", "--live", *fleet), 0)
    wait_for(lambda: cli("verify", *fleet).code == 0, 60, "the fleet verifies")
    pids, mtimes = _pids(name), {
        d.name: lab.device_path(name, d.name, CONFIG[d.platform.value.split("-")[0]]
                                ).stat().st_mtime for d in build.fabric.devices}
    r = _check(cli("deploy", *fleet, "--yes"), 0)
    assert "No changes: nothing written, nothing reloaded." in r.out
    assert _pids(name) == pids
    assert all(lab.device_path(name, d, CONFIG[lab.overlay(name)["devices"][d]["platform"]
                                             .split("-")[0]]).stat().st_mtime == m
               for d, m in mtimes.items())
    inv = changed_inventory(tmp_path)
    r = _check(cli("deploy", "-i", str(inv), *fleet, "--yes", "--format", "json"), 0)
    assert {d for d, x in _results(r).items() if x["status"] == "changed"} == \
        {"node-r1-03", "tor-r1-a", "tor-r1-b"}
    info = lab.overlay(name)["devices"]
    wait_for(lambda: "10.244.33.0/24" in vtysh_json(info["tor-r1-a"], "show bgp ipv4 unicast "
                                                    "json").get("routes", {}), 30, "new route")
    r = _check(cli("verify", "-i", str(inv), *fleet, "--wait", "60", "--format", "json"), 0)
    assert json.loads(r.out)["ok"]


@pytest.fixture
def direct_lab(request: pytest.FixtureRequest, secret_env: str) -> Iterator[str]:
    yield from _lab(request)


@pytest.fixture
def bastion_lab(request: pytest.FixtureRequest, secret_env: str) -> Iterator[str]:
    yield from _lab(request, bastion=True)


@pytest.fixture
def sudo_lab(request: pytest.FixtureRequest, secret_env: str) -> Iterator[str]:
    yield from _lab(request, deploy_user="bgpgen")


def test_a_direct(direct_lab: str, cli: Callable[..., Run], tmp_path: Path) -> None:
    _whole_job(cli, direct_lab, lab.overlay(direct_lab)["ssh_config"], tmp_path)


def test_b_through_a_bastion(bastion_lab: str, cli: Callable[..., Run], tmp_path: Path) -> None:
    name = bastion_lab
    info = lab.overlay(name)
    cfg = Path(info["ssh_config"]).read_text()
    assert "ProxyJump bgpgen-bastion" in cfg
    _whole_job(cli, name, info["ssh_config"], tmp_path)
    # Every session came through the bastion: the devices refuse anyone else.
    bastion_ip = info["bastion"]["host"]
    log = (lab.lab_dir(name) / "dev" / "tor-r1-a" / "log" / "sshd.log").read_text()
    assert f"Accepted publickey for root from {bastion_ip}" in log
    assert not re.search(r"Accepted publickey for \S+ from (?!" + re.escape(bastion_ip) + r" )",
                         log)
    e = info["devices"]["tor-r1-a"]
    direct = subprocess.run(["ssh", "-F", "/dev/null", "-i", e["key"], "-o", "BatchMode=yes",
                             "-o", f"UserKnownHostsFile={e['known_hosts']}", "-o",
                             "ConnectTimeout=5", f"root@{e['host']}", "true"],
                            capture_output=True, text=True, timeout=20)
    assert direct.returncode != 0, "a device is reachable around the bastion"


def test_c_as_a_non_root_user_with_sudo(sudo_lab: str, cli: Callable[..., Run],
                                        tmp_path: Path) -> None:
    name = sudo_lab
    assert "User bgpgen" in Path(lab.overlay(name)["ssh_config"]).read_text()
    _whole_job(cli, name, lab.overlay(name)["ssh_config"], tmp_path)
    # Files keep their owners and modes: secrets never world-readable, bird can read its own.
    stat = {d: _on(name, d, "stat", "-c", "%U:%G %a", path).strip()
            for d, path in (("node-r1-01", "/etc/gobgpd.conf"),
                            ("node-r1-02", "/etc/bird/bird.conf"),
                            ("tor-r1-a", "/etc/frr/frr.conf"))}
    assert stat == {"node-r1-01": "root:root 600", "node-r1-02": "root:bird 640",
                    "tor-r1-a": "frr:frr 640"}, stat
    log = (lab.lab_dir(name) / "dev" / "node-r1-02" / "log" / "sshd.log").read_text()
    assert "Accepted publickey for bgpgen" in log and "for root" not in log


# --- failures: one line for the device, exit 1, the others deployed ----------------------------

def _break(case: str, name: str, cfg: Path, tmp_path: Path) -> str:
    """Break how node-r1-03 is reached; returns what its error line must say."""
    text = cfg.read_text()
    block = re.search(r"^Host node-r1-03\n(?:  .*\n)*", text, re.M)
    assert block
    host = block.group(0)
    if case == "unknown-host-key":
        kh = tmp_path / "known_hosts"
        ip = re.search(r"HostName (\S+)", host)
        assert ip
        src = re.search(r"UserKnownHostsFile (\S+)", host)
        assert src
        kh.write_text("".join(ln + "\n" for ln in Path(src.group(1)).read_text().splitlines()
                              if not ln.startswith(ip.group(1) + " ")))
        new = re.sub(r"UserKnownHostsFile \S+", f"UserKnownHostsFile {kh}", host)
        expect = "unknown host key"
    elif case == "wrong-user":
        new = re.sub(r"User \S+", "User nosuchuser", host)
        expect = "authentication failed as nosuchuser@"
    elif case == "key-refused":
        key = tmp_path / "other_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        new = re.sub(r"IdentityFile \S+", f"IdentityFile {key}", host)
        expect = "authentication failed as bgpgen@"
    elif case == "sudo-asks-a-password":
        _on(name, "node-r1-03", "sh", "-c",
            "echo 'bgpgen ALL=(root) ALL' > /etc/sudoers.d/bgpgen-lab")
        new = host
        expect = "sudo -n on node-r1-03 refuses bgpgen"
    else:  # bastion-unreachable: a bastion on an address nobody has
        new = host + "  ProxyJump root@198.51.100.250:22\n"
        expect = "bastion 198.51.100.250: root@198.51.100.250:22 unreachable"
    cfg.write_text(text.replace(host, new))
    return expect


@pytest.mark.parametrize("case", ["unknown-host-key", "wrong-user", "key-refused",
                                  "sudo-asks-a-password", "bastion-unreachable"])
def test_reach_failures(case: str, sudo_lab: str, cli: Callable[..., Run],
                        tmp_path: Path) -> None:
    name = sudo_lab
    cfg = tmp_path / "ssh_config"
    cfg.write_text(Path(lab.overlay(name)["ssh_config"]).read_text())
    expect = _break(case, name, cfg, tmp_path)
    before = lab.device_path(name, "node-r1-03", "/etc/gobgpd.conf").read_text()
    r = _check(cli("deploy", "--ssh-config", str(cfg), "--limit", "rack:r1", "--yes",
                   "--format", "json"), 1)
    res = _results(r)
    assert res["node-r1-03"]["status"] == "failed", res["node-r1-03"]
    message = res["node-r1-03"]["message"]
    assert expect in message and "\n" not in message, message
    assert all(x["status"] == "changed" for d, x in res.items() if d != "node-r1-03"), res
    assert lab.device_path(name, "node-r1-03", "/etc/gobgpd.conf").read_text() == before
    text = _check(cli("deploy", "--ssh-config", str(cfg), "--limit", "node-r1-03", "--yes"), 1)
    errors = [ln for ln in text.out.splitlines() if "error:" in ln]
    assert len(errors) == 1 and expect in errors[0], text.out


def test_readme_lab_walkthrough(request: pytest.FixtureRequest, secret_env: str) -> None:
    """The README's fleet lab, line by line, as root (the lab's name made unique)."""
    from .test_library import readme_block
    require_lab_environment("fleet tests")
    name = unique_lab_name("w", request)
    lines = [ln.replace("--name lab", f"--name {name}").replace("/labs/lab/", f"/labs/{name}/")
             for ln in readme_block("fleet-lab-example").splitlines() if ln.strip()]
    try:
        outs = [subprocess.run(["bash", "-c", ln], cwd=ROOT, capture_output=True, text=True,
                               timeout=180) for ln in lines]
    finally:
        lab.down(name)
    for ln, r in zip(lines, outs):
        assert r.returncode == 0, f"{ln}: {r.stdout[-1500:]}{r.stderr[-1500:]}"
        assert SECRET not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert "BGP router identifier 198.18.0.11" in outs[1].stdout
    assert "No changes" in outs[2].stdout and "28/28 sessions Established" in outs[3].stdout
