"""diff and deploy against labs: real daemons, real SSH (Nornir + Netmiko), real faults."""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgpgen import lab, load_fabric

from .conftest import EXAMPLES, ROOT, Run, SECRET, require_lab_environment, unique_lab_name
from .lab_helpers import (changed_inventory, gobgp_json, timers_inventory, vtysh_json,
                          wait_for)

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
    try:
        yield name
        _no_secret_in_logs(name)
    finally:
        lab.down(name)


@pytest.fixture
def rendered_lab(request: pytest.FixtureRequest) -> Iterator[str]:
    name = _name(request)
    lab.up(load_fabric(EXAMPLES["dc1"]), name, render_configs=True)
    try:
        wait_for(lambda: _all_up(name), 30, "sessions up")
        yield name
        _no_secret_in_logs(name)
    finally:
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


def test_profile_change_runs_on_every_neighbor(rendered_lab: str, cli: Callable[..., Run],
                                               tmp_path: Path) -> None:
    """Hold 9 -> 12, keepalive 3 -> 4 on every session: afterwards every neighbor of every
    device runs the new timers, read from the daemons (gobgpd applies one changed neighbor per
    SIGHUP: the plan says it restarts, and deploy reads back what runs)."""
    name = rendered_lab
    inv = timers_inventory(tmp_path)
    r = _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--format", "json"), 2)
    costs = {d["device"]: (d["cost"], d["cost_detail"]) for d in json.loads(r.out)["devices"]}
    assert costs["node-r1-01"][0] == "daemon restart" and "one changed neighbor per SIGHUP" \
        in costs["node-r1-01"][1], costs["node-r1-01"]
    _check(cli("deploy", "-i", str(inv), "--lab", name, "--yes"), 0)
    fabric = load_fabric(inv)
    info = lab.overlay(name)["devices"]
    nodes = {str(s.node_address) for s in fabric.sessions}

    def running() -> dict[str, tuple[int, int]] | None:
        """(hold, keepalive) per device and peer, as each daemon reports them."""
        got: dict[str, tuple[int, int]] = {}
        for d in fabric.devices:
            e = info[d.name]
            if d.platform.value == "gobgp":
                for n in gobgp_json(e, "neighbor"):
                    tc = n["timers"]["config"]
                    got[f"{d.name}/{n['conf']['neighbor_address']}"] = (
                        tc["hold_time"], tc["keepalive_interval"])
            elif d.platform.value == "bird":
                text = lab.run_on(e, ["birdc", "show", "protocols", "all"]).stdout
                for block in text.split("\n\n"):
                    peer = re.search(r"Neighbor address:\s+(\S+)", block)
                    hold = re.search(r"Hold timer:\s+\S+/(\d+)", block)
                    keep = re.search(r"Keepalive timer:\s+\S+/(\d+)", block)
                    if peer:  # a session that is not up yet shows no negotiated timers
                        got[f"{d.name}/{peer.group(1)}"] = (
                            int(hold.group(1)) if hold else 0, int(keep.group(1)) if keep else 0)
            else:
                for peer, v in vtysh_json(e, "show bgp neighbors json").items():
                    if peer not in nodes:  # its uplinks are the switch's own
                        continue
                    got[f"{d.name}/{peer}"] = (v["bgpTimerHoldTimeMsecs"] // 1000,
                                               v["bgpTimerKeepAliveIntervalMsecs"] // 1000)
        return got if got and set(got.values()) == {(12, 4)} else None
    got = wait_for(running, 45, "every neighbor on the new timers")
    assert len(got) == 2 * len(fabric.sessions), sorted(got)
    _check(cli("diff", "-i", str(inv), "--live", "--lab", name), 0)


class _Watch:
    """inotify on directories: every file created, written, chmodded or renamed in, with its
    mode, group and whether it holds the secret, read the moment the event arrives."""

    IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 2, 4, 8, 128, 256

    def __init__(self, dirs: list[Path]) -> None:
        import ctypes
        import threading
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(0o4000)  # IN_NONBLOCK
        assert self.fd >= 0
        self.dirs = {self.libc.inotify_add_watch(
            self.fd, str(d).encode(), self.IN_MODIFY | self.IN_ATTRIB | self.IN_CLOSE_WRITE
            | self.IN_MOVED_TO | self.IN_CREATE): d for d in dirs}
        self.seen: list[tuple[str, int, int, bool]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        import select
        import struct
        while not self.stop.is_set():
            if not select.select([self.fd], [], [], 0.05)[0]:
                continue
            buf = os.read(self.fd, 65536)
            i = 0
            while i < len(buf):
                wd, _, _, size = struct.unpack_from("iIII", buf, i)
                name = buf[i + 16:i + 16 + size].rstrip(b"\0").decode()
                i += 16 + size
                path = self.dirs[wd] / name
                try:
                    st = path.stat()
                    held = SECRET in path.read_text(errors="replace")
                except OSError:
                    continue
                self.seen.append((name, st.st_mode & 0o7777, st.st_gid, held))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        os.close(self.fd)


def test_a_secret_is_never_in_a_file_with_a_looser_mode(rendered_lab: str,
                                                        cli: Callable[..., Run],
                                                        tmp_path: Path) -> None:
    """Watch the directories of a gobgp node's and a BIRD node's configs while every device
    is pushed: the temporary file is 0600 before the secret is written into it, and no file
    that holds the secret is ever readable by others (bird.conf: root:bird 0640 at most)."""
    import grp
    name = rendered_lab
    inv = timers_inventory(tmp_path)
    gobgp_dir = lab.device_path(name, "node-r1-01", "/etc/gobgpd.conf").parent
    bird_dir = lab.device_path(name, "node-r1-02", "/etc/bird/bird.conf").parent
    watch = _Watch([gobgp_dir, bird_dir])
    try:
        _check(cli("deploy", "-i", str(inv), "--lab", name, "--yes",
                   "--limit", "node-r1-01,node-r1-02"), 0)
    finally:
        watch.close()
    held = [s for s in watch.seen if s[3]]
    assert any(".bgpgen-" in n for n, _, _, _ in held), watch.seen  # temporaries were seen
    bird = grp.getgrnam("bird").gr_gid
    for n, mode, gid, _ in held:
        assert mode & 0o007 == 0, (n, oct(mode))
        assert mode == 0o600 or (mode == 0o640 and gid == bird), (n, oct(mode), gid)


def test_file_and_daemon_apart_is_a_change(rendered_lab: str, cli: Callable[..., Run],
                                           tmp_path: Path) -> None:
    """The new file is in place but gobgpd never reloaded (a lost connection, a stalled push):
    diff --live shows it (exit 2), verify reports drift (exit 3), deploy restarts gobgpd onto
    its file, and then nothing is apart."""
    from bgpgen import render
    from bgpgen.secrets import fill
    name = rendered_lab
    inv = timers_inventory(tmp_path)
    text = fill(render(load_fabric(inv)).files_of("node-r1-01")["gobgpd.toml"].text,
                {"tor-md5": SECRET})
    e = lab.overlay(name)["devices"]["node-r1-01"]
    r = subprocess.run(["sh", "-c", "cat > /etc/gobgpd.conf"], input=text, text=True,
                       preexec_fn=lab.preexec(e["netns"], e["mnt"], e["uts"]))
    assert r.returncode == 0
    r = _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--limit", "node-r1-01",
                   "--format", "json"), 2)
    (dev,) = json.loads(r.out)["devices"]
    assert dev["cost"] == "daemon restart" and "file and daemon apart" in dev["cost_detail"]
    assert any("gobgpd runs other settings than its file" in ln for ln in dev["diff"]), dev
    r = cli("verify", "-i", str(inv), "--lab", name, "--limit", "node-r1-01", "--format", "json")
    drift = [f for f in json.loads(r.out)["findings"] if f["kind"] == "drift"]
    assert r.code == 3 and {f["peer"] for f in drift} == {
        "198.18.11.1", "198.18.12.1", "2001:db8:11::1", "2001:db8:12::1"}, r.out
    _check(cli("deploy", "-i", str(inv), "--lab", name, "--limit", "node-r1-01", "--yes"), 0)
    assert {n["timers"]["config"]["hold_time"] for n in gobgp_json(e, "neighbor")} == {12}
    _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--limit", "node-r1-01"), 0)


def test_bird_undoing_by_itself_is_drift(rendered_lab: str, cli: Callable[..., Run],
                                         tmp_path: Path) -> None:
    """The issue's case: the new file is in place, BIRD ran it under ``configure timeout``
    and undid it when no confirm came. diff --live shows it (exit 2), verify reports drift
    with BIRD's reconfiguration time (exit 3); deploy loads the file; then nothing is apart."""
    from bgpgen import render
    from bgpgen.secrets import fill
    name = rendered_lab
    inv = timers_inventory(tmp_path)
    text = fill(render(load_fabric(inv)).files_of("node-r1-02")["bird.conf"].text,
                {"tor-md5": SECRET})
    e = lab.overlay(name)["devices"]["node-r1-02"]
    r = subprocess.run(["sh", "-c", "cat > /etc/bird/bird.conf && birdc configure timeout 1"],
                       input=text, text=True, capture_output=True,
                       preexec_fn=lab.preexec(e["netns"], e["mnt"], e["uts"]))
    assert r.returncode == 0 and "Undo scheduled" in r.stdout, r.stdout + r.stderr
    time.sleep(2.5)  # BIRD undoes: it runs the old config, its file is the new one
    r = _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--limit", "node-r1-02",
                   "--format", "json"), 2)
    (dev,) = json.loads(r.out)["devices"]
    assert any(ln.startswith("~ BIRD runs another config than its file") for ln in dev["diff"])
    r = cli("verify", "-i", str(inv), "--lab", name, "--limit", "node-r1-02", "--format", "json")
    drift = [f for f in json.loads(r.out)["findings"] if f["kind"] == "drift"]
    assert r.code == 3 and len(drift) == 1 and " since " in drift[0]["message"], r.out
    _check(cli("deploy", "-i", str(inv), "--lab", name, "--limit", "node-r1-02", "--yes"), 0)
    _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--limit", "node-r1-02"), 0)
    r = cli("verify", "-i", str(inv), "--lab", name, "--limit", "node-r1-02", "--format", "json")
    assert not [f for f in json.loads(r.out)["findings"] if f["kind"] == "drift"], r.out


def test_frr_saved_config_apart_from_running_is_drift(rendered_lab: str,
                                                      cli: Callable[..., Run],
                                                      tmp_path: Path) -> None:
    """A push saves what bgpd runs as frr.conf (FRR's restart loads it). When the saved file
    and the running config part, diff --live shows it (exit 2) and verify reports drift
    (exit 3); deploy saves the running config again."""
    name = rendered_lab
    inv = timers_inventory(tmp_path)
    _check(cli("deploy", "-i", str(inv), "--lab", name, "--limit", "tor-r1-a", "--yes"), 0)
    e = lab.overlay(name)["devices"]["tor-r1-a"]
    saved = lab.run_on(e, ["cat", "/etc/frr/frr.conf"]).stdout
    assert saved.startswith("! Saved by bgpgen") and "timers 4 12" in saved
    assert "timers 3 9" in lab.run_on(e, ["cat", "/etc/frr/frr.conf.bgpgen-prev"]).stdout
    r = cli("verify", "-i", str(inv), "--lab", name, "--limit", "tor-r1-a", "--format", "json")
    assert not [f for f in json.loads(r.out)["findings"] if f["kind"] == "drift"], r.out
    r = lab.run_on(e, ["cp", "-p", "/etc/frr/frr.conf.bgpgen-prev", "/etc/frr/frr.conf"])
    assert r.returncode == 0, r.stderr
    r = _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--limit", "tor-r1-a",
                   "--format", "json"), 2)
    (dev,) = json.loads(r.out)["devices"]
    assert dev["diff"] and dev["diff"][0].startswith("~ frr.conf differs from the running"), dev
    r = cli("verify", "-i", str(inv), "--lab", name, "--limit", "tor-r1-a", "--format", "json")
    drift = [f for f in json.loads(r.out)["findings"] if f["kind"] == "drift"]
    assert r.code == 3 and len(drift) == 1 and drift[0]["device"] == "tor-r1-a", r.out
    _check(cli("deploy", "-i", str(inv), "--lab", name, "--limit", "tor-r1-a", "--yes"), 0)
    assert "timers 4 12" in lab.run_on(e, ["cat", "/etc/frr/frr.conf"]).stdout
    _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--limit", "tor-r1-a"), 0)


def test_a_saved_plan_is_applied_and_a_drifted_one_refused(rendered_lab: str,
                                                           cli: Callable[..., Run],
                                                           tmp_path: Path) -> None:
    """diff --live --out FILE, then deploy --plan FILE applies exactly that plan; if a device
    changed in between, deploy refuses and pushes nothing."""
    name = rendered_lab
    inv = changed_inventory(tmp_path)
    plan = tmp_path / "plan.json"
    _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--out", str(plan)), 2)
    saved = json.loads(plan.read_text())
    assert {d["device"] for d in saved["devices"] if d["action"] != "none"} == \
        {"node-r1-03", "tor-r1-a", "tor-r1-b"}
    assert SECRET not in plan.read_text()
    # Someone withdraws a route on node-r1-03 by hand after the plan was reviewed.
    e = lab.overlay(name)["devices"]["node-r1-03"]
    assert lab.run_on(e, ["gobgp", "global", "rib", "del", "-a", "ipv4",
                          "10.244.3.0/24"]).returncode == 0
    before = _mtimes(name)
    r = cli("deploy", "-i", str(inv), "--lab", name, "--plan", str(plan))
    assert r.code == 1 and "changed since this plan" in r.err and "node-r1-03:" in r.err, r.err
    assert r.err.count("\n") == 1 and _mtimes(name) == before
    # Plan again, review, apply: exactly the planned devices change, with no prompt.
    _check(cli("diff", "-i", str(inv), "--live", "--lab", name, "--out", str(plan)), 2)
    r = _check(cli("deploy", "-i", str(inv), "--lab", name, "--plan", str(plan), "--format",
                   "json"), 0)
    assert {x["device"] for x in json.loads(r.out)["results"] if x["status"] == "changed"} == \
        {"node-r1-03", "tor-r1-a", "tor-r1-b"}
    r = cli("deploy", "--lab", name, "--plan", str(tmp_path / "nope.json"))
    assert r.code == 1 and "--plan: no such file" in r.err
