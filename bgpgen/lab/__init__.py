"""``bgpgen lab``: an inventory on real gobgpd, BIRD and FRR in network namespaces.

:func:`up` builds namespaces and links from the model, writes each device's config (bootstrap,
or rendered with ``render_configs``), starts a supervisor that runs every daemon and an sshd per
device, and returns once all are ready. :func:`down` removes everything a lab made, whatever
state it was left in (a killed ``up`` included), and is idempotent. :func:`overlay` gives the
connection details that deploy / verify use to reach lab devices as they reach real ones.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..artifacts import Build
from ..errors import Problem
from ..model import Device, Fabric, Manage, Platform, Switch
from ..netutil import Tagged, overlaps, parse_network
from ..platforms import lab_of, spec
from ..render import render
from ..secrets import fill, resolve_all
from . import daemons, limits, mounts, netns
from .daemons import Post, Proc
from .layout import LabError, LabLayout, check_name, layout, netns_name, tag_of
from .mounts import DeviceFs
from .nsenter import preexec
from .service import SYSTEMCTL
from .supervisor import starttime

DEFAULT_NAME = "lab"
DEFAULT_MGMT = "198.51.100.0/24"
UP_TIMEOUT = 60.0


def root() -> Path:
    return Path(os.environ.get("BGPGEN_LAB_ROOT", "/run/bgpgen/labs"))


def lab_dir(name: str) -> Path:
    return root() / name


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(Problem("", "lab", "the lab needs root (network namespaces, daemons)",
                               "run it as root, e.g. sudo .venv/bin/bgpgen lab up"))


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: Any, mode: int = 0o644) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.chmod(mode)
    tmp.rename(path)


def _alive(pid: int | None, start: int | None) -> bool:
    return bool(pid) and start is not None and starttime(pid or 0) == start


def _check_fabric_overlap(fabric: Fabric, mgmt_net: str) -> None:
    want = ipaddress.ip_network(mgmt_net)
    nets: list[Tagged[str]] = [Tagged(want, "--mgmt-range")]
    nets += [Tagged(n, "a pod CIDR") for n in fabric.cluster.pod_cidrs]
    nets += [Tagged(n, "a service CIDR") for n in fabric.cluster.service_cidrs]
    nets += [Tagged(p.cidr, f"VIP pool {p.name}") for p in fabric.cluster.vip_pools]
    nets += [Tagged(i.network, f"{d.name}'s peering subnet")
             for d in (*fabric.devices, *fabric.spines) for i in d.interfaces
             if not i.ip.is_loopback]
    for a, b in overlaps(nets):
        if "--mgmt-range" in (a.tag, b.tag):
            other = b if a.tag == "--mgmt-range" else a
            raise LabError(Problem("", "--mgmt-range", f"{want} overlaps {other.net} "
                                   f"({other.tag}) of the inventory",
                                   "pick a management range the fabric does not use"))


def _ssh_keys(d: Path) -> None:
    ssh = d / "ssh"
    ssh.mkdir(mode=0o700)
    for key in ("id_ed25519", "host_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"bgpgen-{key}",
                        "-f", str(ssh / key)], check=True, stdin=subprocess.DEVNULL)


def _install(fs: DeviceFs, inside: str, text: str, mode: int, owner: str) -> None:
    path = fs.mkdirs(inside)
    path.write_text(text)
    path.chmod(mode)
    user, _, group = owner.partition(":")
    shutil.chown(path, user, group or None)


def _with_line(host_file: str, line: str) -> str:
    try:
        text = Path(host_file).read_text()
    except OSError:
        text = ""
    return text + ("" if not text or text.endswith("\n") else "\n") + line + "\n"


def _free_uid() -> int:
    used = {int(ln.split(":")[2]) for ln in Path("/etc/passwd").read_text().splitlines()
            if ln.count(":") >= 6}
    return next(u for u in range(2000, 60000) if u not in used)


def _host_files(fs: DeviceFs, sshd_config: str, d: Path, deploy_user: str | None) -> None:
    """What makes a lab device a host: its sshd, keys, name, service manager and users."""
    _install(fs, "/etc/ssh/sshd_config", sshd_config, 0o644, "root")
    _install(fs, "/etc/ssh/ssh_host_ed25519_key", (d / "ssh" / "host_ed25519").read_text(),
             0o600, "root")
    _install(fs, "/etc/ssh/ssh_host_ed25519_key.pub",
             (d / "ssh" / "host_ed25519.pub").read_text(), 0o644, "root")
    pub = (d / "ssh" / "id_ed25519.pub").read_text()
    _install(fs, "/etc/ssh/authorized_keys/root", pub, 0o644, "root")
    _install(fs, "/etc/hostname", fs.name + "\n", 0o644, "root")
    _install(fs, "/etc/hosts", _with_line("/etc/hosts", f"127.0.1.1\t{fs.name}"), 0o644,
             "root")
    _install(fs, "/usr/local/sbin/systemctl", SYSTEMCTL, 0o755, "root")
    if deploy_user:
        uid = _free_uid()
        _install(fs, "/etc/passwd", _with_line(
            "/etc/passwd", f"{deploy_user}:x:{uid}:{uid}:bgpgen deploy user:/:/bin/sh"),
            0o644, "root")
        _install(fs, "/etc/group", _with_line("/etc/group", f"{deploy_user}:x:{uid}:"), 0o644,
                 "root")
        _install(fs, "/etc/shadow", _with_line("/etc/shadow", f"{deploy_user}:*:20000::::::"),
                 0o640, "root:shadow")
        _install(fs, f"/etc/ssh/authorized_keys/{deploy_user}", pub, 0o644, "root")
        _install(fs, "/etc/sudoers.d/bgpgen-lab", f"{deploy_user} ALL=(root) NOPASSWD: ALL\n",
                 0o440, "root")


def _device_files(p: LabLayout, fabric: Fabric, d: Path, build: Build | None,
                  values: Mapping[str, str], deploy_user: str | None = None
                  ) -> tuple[list[Proc], list[Post]]:
    """Each device's filesystem (its overlays' upper layers): the platform's files, rendered
    or bootstrap, and the host's own; and what the supervisor runs."""
    procs: list[Proc] = []
    post: list[Post] = []
    for dev in p.devices:
        device = model_of(fabric, dev.name)
        ps = spec(device.platform)
        setup = lab_of(device.platform)
        fs = DeviceFs(d / "dev" / dev.name, dev.name)
        fs.make()
        files = build.files_of(dev.name) if build else {}
        spine = device in fabric.spines
        for f in ps.files:
            art = files.get(f.name)
            if spine and f.target == ps.paths.config and setup.spine is not None:
                _install(fs, f.target, setup.spine(fabric, device), f.mode, f.owner)
            elif art is not None and ps.part is not None and f.target == ps.paths.config \
                    and isinstance(device, Switch) and device.manage is Manage.PART:
                # as if deployed: the switch's own config with bgpgen's part in it
                _install(fs, f.target, ps.part(device.name, setup.bootstrap(device),
                                               fill(art.text, values)), f.mode, f.owner)
            elif art is not None:
                _install(fs, f.target, fill(art.text, values), f.mode, f.owner)
            elif f.target == ps.paths.config:
                _install(fs, f.target, setup.bootstrap(device), f.mode, f.owner)
        only = p.bastion.mgmt_ip if p.bastion else None
        _host_files(fs, daemons.sshd_config(dev, device, only_from=only), d, deploy_user)
        mnt, uts = (str(x) for x in mounts.ns_files(d, dev.name))
        post += [Post(dev.name, dev.netns, mnt, uts, list(argv))
                 for argv in setup.prepare(device, fs, files)]
        procs += daemons.processes(dev, device, mnt, uts, str(fs.log))
    if p.bastion is not None:  # a host with an sshd and nothing else
        b = p.bastion
        fs = DeviceFs(d / "dev" / b.name, b.name)
        fs.make()
        _host_files(fs, daemons.sshd_config(None, None, f"{b.mgmt_ip}:22"), d, None)
        mnt, uts = (str(x) for x in mounts.ns_files(d, b.name))
        procs.append(Proc(b.name, "sshd", b.netns, mnt, uts,
                          ["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"],
                          str(fs.log / "sshd.log"), {"listen": 22}))
    return procs, post


def model_of(fabric: Fabric, name: str) -> Device:
    """A lab device's model: a device of the fabric, or a spine the lab runs for it."""
    spine = next((s for s in fabric.spines if s.name == name), None)
    return spine if spine is not None else fabric.device(name)


def run_dirs(device: Device) -> list[tuple[str, str, int]]:
    """The platform's runtime directory under the device's fresh /run, owned by its daemon."""
    ps = spec(device.platform)
    user = lab_of(device.platform).user
    run = "/run/" + ps.paths.run.removeprefix("/var/run/").removeprefix("/run/")
    owner = f"{user}:{user}" if user else "root:root"
    return [(run, owner, 0o755)]


def _namespaces(p: LabLayout, fabric: Fabric, d: Path) -> None:
    mounts.prepare(d)
    hosts = [(dev.name, run_dirs(model_of(fabric, dev.name))) for dev in p.devices]
    hosts += [(p.bastion.name, [])] if p.bastion else []
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda h: mounts.create(d, DeviceFs(d / "dev" / h[0], h[0]), h[1],
                                              root()), hosts))


def up(fabric: Fabric, name: str = DEFAULT_NAME, mgmt_net: str = DEFAULT_MGMT,
       render_configs: bool = False, templates: Path | None = None,
       deploy_user: str | None = None, bastion: bool = False,
       inventory: Path | None = None) -> dict[str, Any]:
    """Start a lab for ``fabric``. Returns its connection overlay. Rolls back on any failure."""
    _require_root()
    check_name(name)
    daemons.check_binaries()
    for device in fabric.devices:  # before anything exists: a switch no lab can run
        if spec(device.platform).lab is None:
            raise LabError(Problem("", device.name, f"{device.name} runs "
                                   f"{device.platform.value}, which no lab can run here (no "
                                   "image of it runs on this machine)",
                                   "give its rack an frr, cumulus or sonic switch in a copy of "
                                   "the inventory for the lab"))
    try:
        parse_network(mgmt_net)
    except ValueError as exc:
        raise LabError(Problem("", "--mgmt-range", str(exc), "give a network such as "
                               "198.51.100.0/24")) from None
    if deploy_user is not None and not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", deploy_user):
        raise LabError(Problem("", "--deploy-user", f"{deploy_user!r} is not a user name",
                               "use lower-case letters, digits, '-' and '_', e.g. bgpgen"))
    d = lab_dir(name)
    if d.exists():
        raise LabError(Problem(str(d), "lab", f"lab {name} exists already",
                               f"use it, or remove it with bgpgen lab down --name {name}"))
    _check_fabric_overlap(fabric, mgmt_net)
    netns.check_range(mgmt_net)
    build = render(fabric, templates) if render_configs else None
    values = resolve_all(build.secrets) if build else {}
    p = layout(fabric, name, mgmt_net, bastion)
    d.mkdir(parents=True, mode=0o711)  # daemons running as frr must traverse it
    state: dict[str, Any] = {"name": name, "tag": p.tag, "status": "creating", "namespaces": list(p.namespaces),
             "root_links": [p.bridge, *(v for _, v in p.mgmt_links)], "mgmt_net": mgmt_net,
             "plan": asdict(p)}
    _write(d / "state.json", state)  # written before anything is made: down can always undo
    try:
        netns.create(p)
        _ssh_keys(d)
        procs, post = _device_files(p, fabric, d, build, values, deploy_user)
        raised = limits.acquire(root(), name, limits.needs(p, len(procs)))
        if raised:
            state["kernel"] = {k: list(v) for k, v in raised.items()}
            _write(d / "state.json", state)
        _namespaces(p, fabric, d)
        _write(d / "spec.json", {"procs": daemons.as_json(procs), "post": daemons.as_json(post)})
        with open(d / "supervisor.log", "ab") as log:
            sup = subprocess.Popen([sys.executable, "-m", "bgpgen.lab.supervisor", str(d)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True, close_fds=True)
        state.update(supervisor=sup.pid, supervisor_start=starttime(sup.pid))
        _write(d / "state.json", state)
        _wait_ready(d, sup)
        info = overlay_for(p, fabric, d, deploy_user)
        if inventory is not None:  # fleet commands with --lab and no -i use it
            info["inventory"] = str(Path(inventory).resolve())
        info["external"] = sorted(d.name for d in fabric.nodes
                                  if not spec(d.platform).configured)
        _write(d / "overlay.json", info)
        state["status"] = "up"
        _write(d / "state.json", state)
        return info
    except BaseException:
        down(name)
        raise


def _wait_ready(d: Path, sup: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + UP_TIMEOUT
    while time.monotonic() < deadline:
        status = _read(d / "supervisor.json")
        if status.get("status") == "ready":
            return
        if status.get("status") == "failed":
            raise LabError(Problem("", "lab", f"a daemon failed: {status.get('error')}",
                                   "fix the config or the environment; the lab was removed"))
        if sup.poll() is not None:
            tail = (d / "supervisor.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError(Problem("", "lab", f"the supervisor exited: {' | '.join(tail)}",
                                   "see the message; the lab was removed"))
        time.sleep(0.02)
    raise LabError(Problem("", "lab", f"not ready after {UP_TIMEOUT:.0f} s",
                           "see bgpgen lab status; the lab was removed"))


def overlay_for(p: LabLayout, fabric: Fabric, d: Path,
                deploy_user: str | None = None) -> dict[str, Any]:
    """Per device: how to reach it (host, port, user, key, known_hosts) and its namespaces."""
    devices = {}
    lines = []
    hostkey = (d / "ssh" / "host_ed25519.pub").read_text().split()
    for dev in p.devices:
        device = model_of(fabric, dev.name)
        mnt, uts = mounts.ns_files(d, dev.name)
        entry: dict[str, Any] = {
            "host": dev.mgmt_ip, "port": dev.ssh_port, "user": deploy_user or "root",
            "key": str(d / "ssh" / "id_ed25519"), "known_hosts": str(d / "known_hosts"),
            "netns": dev.netns, "mnt": str(mnt), "uts": str(uts),
            "platform": dev.platform.value, "root": str(d / "dev" / dev.name),
            "api_port": dev.api_port}
        cli_port = lab_of(device.platform).cli_port
        ports = [dev.ssh_port]
        if cli_port is not None:
            entry["cli_port"] = cli_port
            ports.append(cli_port)
        devices[dev.name] = entry
        for port in ports:
            host = dev.mgmt_ip if port == 22 else f"[{dev.mgmt_ip}]:{port}"
            lines.append(f"{host} {hostkey[0]} {hostkey[1]}")
    jump: dict[str, Any] | None = None
    if p.bastion is not None:
        mnt, uts = mounts.ns_files(d, p.bastion.name)
        jump = {"name": p.bastion.name, "host": p.bastion.mgmt_ip, "port": 22, "user": "root",
                "key": str(d / "ssh" / "id_ed25519"), "known_hosts": str(d / "known_hosts"),
                "netns": p.bastion.netns, "mnt": str(mnt), "uts": str(uts)}
        lines.append(f"{p.bastion.mgmt_ip} {hostkey[0]} {hostkey[1]}")
    (d / "known_hosts").write_text("\n".join(lines) + "\n")
    (d / "ssh_config").write_text(ssh_config(devices, jump))
    return {"lab": p.name, "mgmt_net": p.mgmt_net, "devices": devices, "bastion": jump,
            "ssh_config": str(d / "ssh_config")}


def ssh_config(devices: Mapping[str, Mapping[str, Any]],
               bastion: Mapping[str, Any] | None = None) -> str:
    """An OpenSSH client config with a Host per lab device (and the bastion they are reached
    through): all that bgpgen (or ssh -F) needs to reach the lab as it reaches a real fleet."""
    out = ["# Written by bgpgen lab up: ssh -F THIS-FILE DEVICE, or bgpgen ... --ssh-config "
           "THIS-FILE", ""]
    hosts = sorted(devices.items()) + ([(bastion["name"], bastion)] if bastion else [])
    for name, e in hosts:
        out += [f"Host {name}", f"  HostName {e['host']}", f"  Port {e['port']}",
                f"  User {e['user']}", f"  IdentityFile {e['key']}", "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {e['known_hosts']}", "  StrictHostKeyChecking yes"]
        if bastion is not None and name != bastion["name"]:
            out.append(f"  ProxyJump {bastion['name']}")
        out.append("")
    return "\n".join(out)


def overlay(name: str = DEFAULT_NAME) -> dict[str, Any]:
    """The connection overlay of a running lab (what ``--lab NAME`` reads)."""
    data = _read(lab_dir(name) / "overlay.json")
    if not data:
        raise LabError(Problem(str(lab_dir(name)), "lab", f"lab {name} is not up",
                               f"start it with bgpgen lab up --name {name}"))
    return data


def down(name: str = DEFAULT_NAME) -> list[str]:
    """Remove every namespace, link, process and file of a lab. Idempotent. Returns what it did."""
    _require_root()
    check_name(name)
    d = lab_dir(name)
    state = _read(d / "state.json")
    done: list[str] = []
    sup = _read(d / "supervisor.json")
    pid, start = int(state.get("supervisor") or 0), state.get("supervisor_start")
    if _alive(pid, start):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 8
        while _alive(pid, start) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid, start):
            os.kill(pid, signal.SIGKILL)
        done.append(f"stopped supervisor {pid}")
    prefix = netns_name(name, "")
    spaces = set(state.get("namespaces", [])) | {n for n in netns.existing_namespaces()
                                                  if n.startswith(prefix)}
    for proc in sup.get("procs", []):  # daemons a killed supervisor left behind
        if _alive(proc["pid"], proc["starttime"]):
            os.kill(proc["pid"], signal.SIGKILL)
    for p in netns.netns_pids(sorted(spaces)):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if d.exists() and mounts.unmount_all(d):  # the devices' namespace files: their mounts go
        done.append("unmounted the devices' namespaces")
    tag = state.get("tag") or tag_of(name)
    links = sorted(set(state.get("root_links", [])) | set(netns.lab_links(tag)))
    netns.destroy(sorted(spaces), links)
    if spaces or links:
        done.append(f"removed {len(spaces)} namespaces and {len(links)} root links")
    back = limits.release(root(), name)
    if back:
        done.append("kernel limits back: " + ", ".join(f"{k.replace('/', '.')}={v}"
                                                       for k, v in sorted(back.items())))
    if d.exists():
        shutil.rmtree(d)
        done.append(f"removed {d}")
    return done


def run_on(e: Mapping[str, Any], argv: list[str],
           timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """Run a command on a lab device (its network, mount and UTS namespaces), given its
    overlay entry; output captured."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec(e["netns"], e["mnt"], e["uts"]),
                          stdin=subprocess.DEVNULL)


def device_path(name: str, device: str, inside: str) -> Path:
    """Where a file of a lab device (under /etc, /var or /usr/local) is on the host."""
    return DeviceFs(lab_dir(name) / "dev" / device, device).path(inside)


def sessions(name: str = DEFAULT_NAME) -> dict[str, dict[str, str]]:
    """BGP session states read from each daemon: device -> peer address -> state."""
    return _read_all(overlay(name)["devices"])


def _read_all(devices: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Every device's sessions, read in parallel (each read is a process in its namespaces,
    mostly waiting on the daemon)."""
    names = sorted(devices)
    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip(names, pool.map(lambda n: read_sessions(devices[n]), names),
                        strict=True))


def read_sessions(e: Mapping[str, Any]) -> dict[str, str]:
    """Peer -> state, read from the device's daemon on the device (what ``lab status``
    shows); a daemon that is down or answers garbage gives no sessions."""
    from ..reach import Hop
    from ..targets import Target
    ps = spec(Platform(e["platform"]))
    t = Target(e.get("name", "?"), ps.platform, Hop("", e["host"], e["port"], e["user"], (), ()),
               (), False, ps.paths.config, ps.paths.run, ps.paths.confdir, e["api_port"])
    try:
        r = run_on(e, ["sh", "-c", ps.state.sessions_command(t)])
    except subprocess.TimeoutExpired:  # a stopped daemon: no sessions to show
        return {}
    try:
        return ps.state.parse_sessions(r.stdout) if r.returncode == 0 else {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def exec_in(name: str, device: str, argv: list[str]) -> int:
    """Run a command on a lab device (its namespace and hostname), with this terminal."""
    e = _entry(name, device)
    return subprocess.call(argv, preexec_fn=preexec(e["netns"], e["mnt"], e["uts"]))


def ssh_argv(name: str, device: str, cli: bool = False) -> list[str]:
    """ssh to a lab device as anyone would: through the lab's ssh config."""
    e = _entry(name, device)
    port = ["-p", str(e["cli_port"])] if cli and "cli_port" in e else []
    return ["ssh", "-F", str(lab_dir(name) / "ssh_config"), "-o", "BatchMode=yes", *port,
            device]


def _entry(name: str, device: str) -> dict[str, Any]:
    devices: dict[str, Any] = overlay(name)["devices"]
    if device not in devices:
        raise LabError(Problem("", device, f"no device {device} in lab {name}",
                               f"one of: {', '.join(sorted(devices))}"))
    entry: dict[str, Any] = devices[device]
    return entry


def status(name: str = DEFAULT_NAME) -> dict[str, Any]:
    d = lab_dir(name)
    state = _read(d / "state.json")
    if not state:
        raise LabError(Problem(str(d), "lab", f"lab {name} is not up",
                               f"start it with bgpgen lab up --name {name}"))
    sup = _read(d / "supervisor.json")
    info = _read(d / "overlay.json")
    procs: dict[str, list[dict[str, Any]]] = {}
    for p in sup.get("procs", []):
        procs.setdefault(p["device"], []).append(
            {"name": p["name"], "pid": p["pid"], "alive": _alive(p["pid"], p["starttime"])})
    devices = {}
    states = _read_all(info.get("devices", {}))
    for dev, e in sorted(info.get("devices", {}).items()):
        devices[dev] = {"netns": e["netns"], "mgmt": e["host"], "platform": e["platform"],
                        "processes": procs.get(dev, []), "sessions": states[dev]}
    return {"lab": name, "status": state.get("status"), "supervisor": state.get("supervisor"),
            "supervisor_alive": _alive(state.get("supervisor"), state.get("supervisor_start")),
            "devices": devices}


__all__ = ["LabError", "device_path", "down", "exec_in", "overlay", "run_on", "sessions",
           "ssh_argv", "status", "up"]
