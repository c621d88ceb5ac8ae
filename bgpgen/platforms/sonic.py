"""sonic: a ToR switch running SONiC, its BGP in FRR's split mode (inventory: a switch with
``platform: sonic``).

SONiC runs FRR in its ``bgp`` container; ``vtysh`` on the host reaches it. By default SONiC's
bgpcfgd renders FRR's config from CONFIG_DB, and anything typed into vtysh is lost at the next
reload; with ``docker_routing_config_mode: split`` in ``DEVICE_METADATA|localhost`` each FRR
daemon keeps its own file (``/etc/sonic/frr/bgpd.conf``) and vtysh's ``write memory`` is what
persists. bgpgen supports split mode only, and refuses (one line, before anything changes) a
switch whose ``/etc/sonic/config_db.json`` says otherwise.

There is no ``frr-reload.py`` on a SONiC host, so bgpgen computes the delta itself, with FRR's own
``frr-reload.py --test --input`` run on this machine (Debian's ``frr-pythontools``) against
``show running-config bgpd`` read over SSH. The push: the aimed config is checked on the switch
(``vtysh -C``), the running config kept (``bgpd.conf.bgpgen-prev``), the delta fed to ``vtysh -f``
on stdin (so no secret is ever on a command line), read back until nothing is left to change,
sessions awaited, then ``write memory``. Any failure puts the previous running config back the
same way and saves it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ..artifacts import Artifact
from ..changes import DevicePlan
from ..errors import Problem
from ..model import Device, Platform
from ..secrets import fill, redact
from ..transport import RemoteError, Transport, check, shell
from . import frr, ownership
from .base import (
    DeployFailed,
    DeviceFiles,
    FileSpec,
    Outcome,
    Paths,
    StateReader,
    Status,
    last_error,
    need,
    persist,
    proceed,
    read_sessions,
    shown,
    wait_sessions,
)

CONFIG = "bgpd.conf"
PATHS = Paths("/etc/sonic/frr/bgpd.conf", "/var/run/frr", "/etc/sonic/frr")
CONFIG_DB = "/etc/sonic/config_db.json"
PREV = ".bgpgen-prev"
SPLIT = "split"
RUNNING = "show running-config bgpd"
CONFIG_FILE = FileSpec(CONFIG, "sonic/bgpd.conf.j2", PATHS.config, mode=0o640, owner="frr:frr")


class LocalToolError(DeployFailed):
    """What this machine needs to compute a SONiC delta is missing or failed."""


# --- CONFIG_DB: is FRR's config bgpgen's to write? ---------------------------------------------

def routing_mode(config_db: str | None) -> str | None:
    """``docker_routing_config_mode`` of a saved CONFIG_DB (None: not said)."""
    if config_db is None:
        return None
    try:
        db = json.loads(config_db)
        mode = db["DEVICE_METADATA"]["localhost"].get("docker_routing_config_mode")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return mode if isinstance(mode, str) else None


def require_split(t: Transport) -> None:
    name = t.target.name
    mode = routing_mode(t.read(CONFIG_DB))
    if mode != SPLIT:
        said = f"'{mode}'" if mode else "not set (SONiC's default: separated)"
        raise DeployFailed(Problem("", name, f"{name}'s {CONFIG_DB} says "
                                   f"docker_routing_config_mode {said}: its BGP is managed "
                                   "through CONFIG_DB, and vtysh changes would be lost",
                                   "set DEVICE_METADATA|localhost docker_routing_config_mode "
                                   f"to 'split' on {name} ('config save', then restart the bgp "
                                   "container), or leave this switch out of bgpgen"))


# --- the delta, computed here by FRR's own frr-reload --------------------------------------------

def blocks(lines: list[str]) -> list[list[str]]:
    """frr-reload's printed commands -> one block per command: its context lines and itself
    (a block starts with an unindented line)."""
    out: list[list[str]] = []
    for ln in lines:
        if not ln.startswith(" ") or not out:
            out.append([ln])
        else:
            out[-1].append(ln)
    return out


def local_delta(name: str, aim: str, running: str) -> tuple[list[str], list[str]]:
    """What frr-reload would delete and add to turn ``running`` into ``aim``, as it prints the
    commands (context lines repeated per command). Both texts go into a private temporary
    directory of this machine that is removed at once (they may hold secrets)."""
    tool = frr.FRR_RELOAD
    if not Path(tool).is_file() or shutil.which("vtysh") is None:
        raise LocalToolError(Problem("", name, f"planning a SONiC switch needs FRR's {tool} "
                                     "and vtysh on this machine",
                                     "apt install frr frr-pythontools"))
    with tempfile.TemporaryDirectory(prefix="bgpgen-sonic-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o700)
        (d / "vtysh.conf").write_text("no service integrated-vtysh-config\n")
        (d / "running.conf").write_text(running)
        (d / "aim.conf").write_text(aim)
        try:
            res = subprocess.run([tool, "--test", "--stdout", "--input", str(d / "running.conf"),
                                  "--confdir", str(d), "--rundir", str(d), "--bindir",
                                  str(Path(shutil.which("vtysh") or "/usr/bin/vtysh").parent),
                                  str(d / "aim.conf")],
                                 capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LocalToolError(Problem("", name, f"{tool} --test could not run here: "
                                         f"{exc}", "")) from None
    if res.returncode != 0:
        raise LocalToolError(Problem("", name, f"{tool} --test failed here: "
                                     + last_error(res.stdout + res.stderr), ""))
    return frr.reload_lines(res.stdout)


# --- on the switch -----------------------------------------------------------------------------

def _running(t: Transport) -> str:
    """bgpd's running config, without the headers vtysh prints before it."""
    text = check(t, frr._vtysh(t.target, RUNNING), RUNNING)
    return "".join(ln + "\n" for ln in text.splitlines()
                   if not ln.startswith(("Building configuration", "Current configuration")))


def _feed(t: Transport, commands: list[str]) -> str:
    """Commands into vtysh's configure mode on stdin (never on a command line); its output."""
    argv = ["vtysh", "--vty_socket", t.target.run, "-f", "/dev/stdin"]
    res = t.exec(shell(argv), stdin="\n".join(commands) + "\n")
    return "" if res.ok else last_error(res.output)


def _check(t: Transport, text: str, values: Mapping[str, str]) -> None:
    """The config a push aims at, checked by the switch's own vtysh (dry run)."""
    argv = ["vtysh", "--vty_socket", t.target.run, "-C", "-f", "/dev/stdin"]
    res = t.exec(shell(argv), stdin=text)
    if not res.ok:
        raise DeployFailed(Problem("", t.target.name, "vtysh -C rejects the config: "
                                   + last_error(redact(res.output, values)) + "; nothing "
                                   "changed", ""))


def _converge(t: Transport, aim: str, values: Mapping[str, str]) -> None:
    """Make bgpd run ``aim``: the delta fed to vtysh, twice at most (as frr-reload does: a
    line added can make another necessary), then read back: nothing may be left."""
    said = ""
    for _ in range(2):
        delete, add = local_delta(t.target.name, aim, _running(t))
        if not delete and not add:
            return
        said = _feed(t, delete + add) or said
    delete, add = local_delta(t.target.name, aim, _running(t))
    if delete or add:
        why = f" (vtysh: {redact(said, values)})" if said else ""
        raise DeployFailed(Problem("", t.target.name, "read back: bgpd does not run the new "
                                   f"config ({len(blocks(delete))} lines to delete, "
                                   f"{len(blocks(add))} to add){why}", ""))


def _save(t: Transport) -> None:
    check(t, frr._vtysh(t.target, "write memory"), "write memory")


def config_paths(text: str) -> set[tuple[str, ...]]:
    """A bgpd config as the set of its lines, each with its context (``router bgp``, address
    family): comments, headers and vtysh's own lines left out. bgpd's ``write memory`` stamps
    its file with the time and writes some objects in another order than ``show
    running-config`` prints them; neither is a difference."""
    out: set[tuple[str, ...]] = set()

    def walk(tree: ownership.Tree, at: tuple[str, ...]) -> None:
        for line, sub in tree.items():
            if line.startswith(VTYSH_OWN) or line.startswith("frr version"):
                continue
            out.add((*at, line))
            walk(sub, (*at, line))
    walk(ownership.parse(text, frr.SYNTAX), ())
    return out


#: vtysh's lines in ``show running-config``, never in a daemon's own file
VTYSH_OWN = ("service integrated-vtysh-config", "no service integrated-vtysh-config")


def apart(file_text: str | None, running: str) -> str:
    """'' when the saved bgpd.conf holds what bgpd runs (what it would load at a restart)."""
    if file_text is None:
        return f"{CONFIG} is missing: a restart of the bgp container would lose its BGP"
    saved, runs = config_paths(file_text), config_paths(running)
    if saved == runs:
        return ""
    return (f"{CONFIG} differs from the running config ({len(saved - runs)} lines only saved, "
            f"{len(runs - saved)} only running): a restart of the bgp container would change "
            "its BGP")


class SonicDriver:
    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        target = t.target
        require_split(t)
        p = DevicePlan(target.name, target.platform.value)
        running = _running(t)
        aim = frr._aim(target.name, fill(need(files, CONFIG).text, values), running)
        delete, add = local_delta(target.name, aim, running)
        delete, add = ([shown(frr.SECRET_LINE, ln, values) for ln in frr.collapsed(delete)],
                       [shown(frr.SECRET_LINE, ln, values) for ln in frr.collapsed(add)])
        return frr.delta_plan(p, delete, add, lambda: apart(t.read(target.config), running),
                              "the running config is saved (write memory)")

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        target = t.target
        if p.extra.get("drift"):
            proceed(t, p)
            _save(t)
            return Outcome(Status.CHANGED, "the running config saved (write memory)")
        require_split(t)
        running = _running(t)
        aim = frr._aim(target.name, fill(need(files, CONFIG).text, values), running)
        _check(t, aim, values)
        before = read_sessions(t, frr.READ)
        t.write(target.config + PREV, running, 0o600)
        proceed(t, p)
        p.extra["activated"] = True
        try:
            _converge(t, aim, values)
            frr._soft_in(t)
            wait_sessions(t, frr.READ, before, timeout)
            _save(t)
        except RemoteError as exc:
            message = redact(exc.problems[0].message, values)
            self._restore(t, timeout)
            raise DeployFailed(Problem("", target.name, f"{message}; the previous running "
                                       "config was put back and saved", "")) from None
        return Outcome(Status.CHANGED, p.cost_detail)

    def _restore(self, t: Transport, timeout: float) -> None:
        prev = t.read(t.target.config + PREV)
        if prev is None:
            raise DeployFailed(Problem("", t.target.name, "the previous running config "
                                       f"({t.target.config}{PREV}) is gone: nothing to put "
                                       "back", ""))

        def step() -> None:
            _converge(t, prev, {})
            frr._soft_in(t)
            _save(t)
        persist(t, "putting the previous running config back", step, timeout)

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        return None  # saved at apply; the previous running config stays as bgpd.conf.bgpgen-prev

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        if not p.extra.get("drift"):
            self._restore(t, timeout)


# --- the lab -----------------------------------------------------------------------------------

def prepare(device: Device, files: DeviceFiles,
            artifacts: Mapping[str, Artifact]) -> list[tuple[str, ...]]:
    """What a SONiC host has around FRR: the saved CONFIG_DB in split mode, FRR's directory
    with zebra's own file, vtysh told the config is split; and the switch CLI over SSH."""
    frr.prepare(device, files, artifacts)
    files.mkdirs("/etc/frr/vtysh.conf").write_text("no service integrated-vtysh-config\n")
    zebra = files.mkdirs(PATHS.confdir + "/zebra.conf")
    zebra.write_text(f"hostname {device.name}\n!\n")
    for path in (zebra.parent, zebra, files.path(PATHS.config)):
        if path.exists():
            shutil.chown(path, "frr", "frr")
    zebra.parent.chmod(0o750)
    db = {"DEVICE_METADATA": {"localhost": {
        "hostname": device.name, "bgp_asn": str(device.asn), "type": "LeafRouter",
        "docker_routing_config_mode": SPLIT}}}
    files.mkdirs(CONFIG_DB).write_text(json.dumps(db, indent=4) + "\n")
    return []  # in split mode each daemon reads its own file when it starts


READ = StateReader(frr.state_command_with(RUNNING), frr.parse_state_with(apart),
                   frr.sessions_command, frr.parse_sessions)

SPEC = replace(
    frr.SPEC,
    platform=Platform.SONIC,
    inventory_name="sonic",
    description="a ToR switch running SONiC (its FRR in split mode)",
    files=(CONFIG_FILE,),
    checker=replace(frr.SPEC.checker,
                    scratch={"vtysh.conf": "no service integrated-vtysh-config\n"}),
    netmiko_device_type="linux",
    paths=PATHS,
    driver=SonicDriver(),
    state=READ,
    lab=replace(frr.LAB, daemons=frr.daemons_with(confdir=PATHS.confdir),
                bootstrap=frr.bootstrap_with(split=True), prepare=prepare),
)
