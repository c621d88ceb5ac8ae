"""The fleet API: Nornir tasks over bgpgen's platforms, for bgpgen's own commands and for your
own Nornir scripts (your inventory plugin, your filters).

Every task takes the :class:`~bgpgen.artifacts.Build` (or the fabric) and finds the device by
the Nornir host's name. How to reach it comes from the host (hostname, port, username and the
``netmiko`` connection options you give it); where its files are comes from the platform, or
from the host's data ``bgpgen_paths: {config, run, confdir}``. Results are typed objects:
:class:`~bgpgen.changes.DevicePlan`, :class:`DeviceResult`, :class:`~bgpgen.state.DeviceState`.

    nr = InitNornir(...).filter(role="tor")
    plans = nr.run(task=plan_task, build=build, values=values)
"""

from __future__ import annotations

import getpass
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import paramiko
from nornir.core import Nornir
from nornir.core.configuration import Config
from nornir.core.inventory import ConnectionOptions, Defaults, Groups, Host, Hosts, Inventory
from nornir.core.plugins.connections import ConnectionPluginRegister
from nornir.core.task import Result, Task
from nornir.plugins.runners import ThreadedRunner

from .artifacts import Build
from .changes import Action, DevicePlan, Plan
from .errors import BgpgenError, Problem
from .model import Device, Fabric
from .platforms import spec
from .lock import LockedError, command_line, lock_target, unlock_target
from .platforms.base import (RUN_ID, DeployFailed, Interrupted, RestoreFailed, Runs, Session,
                             Status)
from .secrets import redact
from .state import ANSWER_SECONDS, DaemonError, DeviceState
from .reach import Hop
from .targets import Target
from .netos import CliTransport, open_session
from .transport import (RemoteError, SshTransport, Transport, connect_options, describe_ssh,
                        no_delay, open_client, shell)

Progress = Callable[[str, str], None]  #: (device, what happened)
TARGET = "bgpgen_target"  #: host data key of a Target built by bgpgen itself
PATHS = "bgpgen_paths"    #: host data key of per-device path overrides
#: host data key of a transport factory ``(host, target) -> Transport``: your own connection
#: (or a recording) instead of bgpgen's Netmiko session
TRANSPORT = "bgpgen_transport"
BECOME = "bgpgen_become"  #: host data key: privileged steps through sudo -n (default: not root)
#: host data key: seconds one command may take on the device (default 60)
COMMAND_TIMEOUT = "bgpgen_command_timeout"


@dataclass(slots=True)
class DeviceResult:
    """What a push did on one device."""

    device: str
    status: Status
    seconds: float = 0.0
    message: str = ""
    #: which config the device runs now (file and daemon agreeing, as read back)
    runs: Runs = Runs.PREVIOUS

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "status": str(self.status), "runs": str(self.runs),
                "seconds": round(self.seconds, 3), "message": self.message}


class Finish(StrEnum):
    CONFIRM = "confirm"
    ROLLBACK = "rollback"


def nornir_for(devices: list[Device], targets: Mapping[str, Target], workers: int,
               command_timeout: float = 60.0) -> Nornir:
    """A Nornir object over these devices, built in memory from the model and the targets."""
    if workers < 1:
        raise BgpgenError(Problem("", "--workers", f"{workers} is not a number of workers",
                                  "give 1 or more"))
    ConnectionPluginRegister.auto_register()
    hosts = Hosts()
    for d in devices:
        t = targets[d.name]
        opts = connect_options(t)
        extras = {k: v for k, v in opts.items() if k not in ("host", "port", "username",
                                                            "device_type")}
        extras["auto_connect"] = False
        # a network OS is driven through its CLI: Netmiko's device type for it (prompts,
        # paging); a Linux host through exec channels
        ps = spec(d.platform)
        kind = ps.netmiko_device_type if ps.session is Session.CLI else "linux"
        hosts[d.name] = Host(
            name=d.name, hostname=t.host, port=t.port, username=t.user, platform=kind,
            data={TARGET: t, COMMAND_TIMEOUT: command_timeout},
            connection_options={"netmiko": ConnectionOptions(
                hostname=t.host, port=t.port, username=t.user, platform=kind,
                extras=extras)})
    return Nornir(inventory=Inventory(hosts=hosts, groups=Groups(), defaults=Defaults()),
                  runner=ThreadedRunner(num_workers=workers), config=Config())


def target_of(task: Task, fabric: Fabric) -> Target:
    """The target of a task's host: bgpgen's own, or one made from a user's Nornir host."""
    host = task.host
    given = host.data.get(TARGET)
    if isinstance(given, Target):
        return given
    try:
        device = fabric.device(host.name)
    except KeyError:
        raise BgpgenError(Problem("", host.name, f"Nornir host {host.name} is not a device of "
                                  f"fabric {fabric.name}", "name Nornir hosts after the "
                                  "inventory's devices, or filter them out")) from None
    paths = spec(device.platform).paths
    over = host.get(PATHS) or {}
    user = host.username or getpass.getuser()
    become = host.get(BECOME)
    # How to connect is the host's own business (its netmiko connection options).
    ssh = Hop(host.name, host.hostname or host.name, host.port or 22, user, (), ())
    return Target(device.name, device.platform, ssh, (),
                  bool(become) if become is not None else user != "root",
                  over.get("config", paths.config), over.get("run", paths.run),
                  over.get("confdir", paths.confdir), device.api_port)


def transport_for(task: Task, fabric: Fabric) -> Transport:
    """The task host's transport: its factory under ``bgpgen_transport`` if it has one, else
    its SSH session (Netmiko)."""
    target = target_of(task, fabric)
    factory = task.host.data.get(TRANSPORT)
    if factory is not None:
        made: Transport = factory(task.host, target)
        return made
    return ssh_transport(task.host, target, task.nornir.config)


def ssh_transport(host: Host, target: Target, config: Config) -> SshTransport | CliTransport:
    """bgpgen's own transport for a Nornir host: its Netmiko session (opened if need be),
    commands bounded by the host's ``bgpgen_command_timeout``; for a network OS its CLI
    session (:mod:`bgpgen.netos`). A ``bgpgen_transport`` factory may wrap it (to log, record
    or inject faults)."""
    timeout = float(host.get(COMMAND_TIMEOUT) or 60.0)
    if spec(target.platform).session is Session.CLI:
        def reopen() -> Any:
            host.close_connection("netmiko")
            fresh = host.get_connection("netmiko", config)
            open_session(fresh, target)
            return fresh
        conn = host.get_connection("netmiko", config)
        if getattr(conn, "remote_conn", None) is None:
            open_session(conn, target)
        return CliTransport(conn, target, timeout, reopen)
    conn = host.get_connection("netmiko", config)
    if getattr(conn, "remote_conn_pre", None) is None:
        open_client(conn, target)
    else:  # a connection the user's Nornir opened
        no_delay(conn.remote_conn_pre)
    return SshTransport(conn, target, timeout)


def describe(exc: BaseException, target: Target | None = None) -> str:
    """One line for a connection or device failure."""
    if isinstance(exc, BgpgenError):
        p = exc.problems[0]
        return p.message + (f" (hint: {p.hint})" if p.hint else "")
    if target is not None and isinstance(exc, (paramiko.SSHException, OSError)):
        return describe_ssh(exc, target.ssh)
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if isinstance(exc, (socket.timeout, TimeoutError, ConnectionError, OSError)):
        return f"unreachable: {text[:160] or name}"
    # not the device's state, not the user's input: a bug of bgpgen's, said as one
    return f"internal error in bgpgen ({name}: {text[:160]}); please report it"


def _target_or_none(task: Task, fabric: Fabric) -> Target | None:
    try:
        return target_of(task, fabric)
    except BgpgenError:
        return None


# --- tasks -------------------------------------------------------------------------------------

def plan_task(task: Task, build: Build, values: Mapping[str, str],
              progress: Progress | None = None) -> Result:
    """Plan one device against what runs on it. Result: a :class:`DevicePlan` (``failed``
    with the reason when the device cannot be planned)."""
    name = task.host.name
    try:
        t = transport_for(task, build.fabric)
        p = spec(t.target.platform).driver.plan(t, build.files_of(name), values)
    except Exception as exc:  # noqa: BLE001 - every failure becomes this device's plan
        p = DevicePlan(name, _platform_name(build.fabric, name), Action.FAILED,
                       error=redact(describe(exc, _target_or_none(task, build.fabric)), values))
    if progress:
        progress(name, "planned")
    return Result(host=task.host, result=p)


def apply_task(task: Task, plan: Plan, build: Build, values: Mapping[str, str],
               timeout: float, progress: Progress | None = None,
               stop: threading.Event | None = None) -> Result:
    """Push one device as planned (its lock taken, checked on target, backed up, activated,
    read back, sessions checked; restored on failure). A set ``stop`` (Ctrl-C) skips a push
    not yet activated. Result: a :class:`DeviceResult` saying which config the device runs."""
    name = task.host.name
    start = time.monotonic()
    p = plan.device(name)
    t: Transport | None = None
    locked = False
    try:
        if p is None or not p.changed:
            res = DeviceResult(name, Status.UNCHANGED)
        elif stop is not None and stop.is_set():
            res = DeviceResult(name, Status.SKIPPED, message="interrupted: not pushed")
        else:
            p.stop = stop
            t = transport_for(task, build.fabric)
            if spec(t.target.platform).session is Session.SHELL:  # a network OS: its own
                lock_target(t, build.fabric.name, RUN_ID, command_line())  # (config session)
                locked = True
            out = spec(t.target.platform).driver.apply(t, p, build.files_of(name), values,
                                                       timeout)
            res = DeviceResult(name, out.status, message=out.message, runs=Runs.NEW)
    except Interrupted as exc:
        res = DeviceResult(name, Status.SKIPPED, message=exc.problems[0].message)
    except LockedError as exc:
        pr = exc.problems[0]
        res = DeviceResult(name, Status.FAILED, message=f"{pr.message} (hint: {pr.hint})")
    except DeployFailed as exc:
        res = DeviceResult(name, Status.FAILED, message=redact(exc.problems[0].message, values),
                           runs=Runs.UNKNOWN if isinstance(exc, RestoreFailed) else
                           Runs.PREVIOUS)
    except Exception as exc:  # noqa: BLE001 - every failure becomes this device's result
        activated = p is not None and p.extra.get("activated")
        res = DeviceResult(name, Status.FAILED, message=redact(
            describe(exc, _target_or_none(task, build.fabric)), values),
            runs=Runs.UNKNOWN if activated else Runs.PREVIOUS)
    finally:
        if t is not None and locked and not (p is not None and p.defer_confirm
                                             and res.status is Status.CHANGED):
            _unlock(t)
    res.seconds = time.monotonic() - start
    if progress:
        progress(name, str(res.status))
    return Result(host=task.host, result=res)


def _unlock(t: Transport) -> None:
    for _ in range(2):  # a second time over a new session, if the first one stalled
        try:
            unlock_target(t, RUN_ID)
            return
        except RemoteError:  # a lock left behind is taken over by this controller's next run
            continue


def finish_task(task: Task, plan: Plan, build: Build, action: Finish, timeout: float,
                values: Mapping[str, str]) -> Result:
    """Confirm or roll back one pushed device (and release its lock). Result: a
    :class:`DeviceResult` (its status is for the caller to set: ``runs`` and ``message``
    say what the device runs and what went wrong, '' when nothing did)."""
    name = task.host.name
    p = plan.device(name)
    t: Transport | None = None
    res = DeviceResult(name, Status.CHANGED,
                       runs=Runs.NEW if action is Finish.CONFIRM else Runs.PREVIOUS)
    try:
        t = transport_for(task, build.fabric)
        driver = spec(t.target.platform).driver
        if p is not None and action is Finish.CONFIRM:
            driver.confirm(t, p)
        elif p is not None:
            driver.rollback(t, p, timeout)
    except DeployFailed as exc:
        res.message = redact(exc.problems[0].message, values)
        res.runs = Runs.UNKNOWN if isinstance(exc, RestoreFailed) else Runs.PREVIOUS
    except Exception as exc:  # noqa: BLE001 - reported per device
        res.message = redact(describe(exc, _target_or_none(task, build.fabric)), values)
        res.runs = Runs.UNKNOWN
    finally:
        if t is not None and spec(t.target.platform).session is Session.SHELL:
            _unlock(t)
    return Result(host=task.host, result=res)


def read_state_task(task: Task, fabric: Fabric, values: Mapping[str, str]) -> Result:
    """Sessions and RIB of one device. Result: a :class:`DeviceState` (with ``error`` when the
    device cannot be reached, ``down`` when its BGP daemon does not answer)."""
    name = task.host.name
    try:
        t = transport_for(task, fabric)
        reader = spec(t.target.platform).state
        # on the device, a time limit: a stopped daemon is a finding, not an unreachable host
        if spec(t.target.platform).session is Session.CLI:  # show commands, one per line
            res = t.exec(reader.command(t.target, fabric), timeout=ANSWER_SECONDS + 15)
        else:
            res = t.exec(shell(["timeout", str(ANSWER_SECONDS), "sh", "-c",
                                reader.command(t.target, fabric)]), timeout=ANSWER_SECONDS + 15)
        if res.rc == 124:
            view = DeviceState(name, down=f"the BGP daemon did not answer within "
                               f"{ANSWER_SECONDS} s")
            return Result(host=task.host, result=view)
        try:
            view = reader.parse(t.target, res.stdout, time.time())
        except DaemonError as exc:
            view = DeviceState(name, down=redact(" ".join(str(exc).split())[:200], values))
            return Result(host=task.host, result=view)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            view = DeviceState(name, down="the BGP daemon's answer could not be read")
            return Result(host=task.host, result=view)
        if not res.ok and not view.peers:
            text = redact(res.stderr.strip() or res.stdout, values)
            view.down = " ".join(text.split())[:200] or f"exit code {res.rc}"
    except Exception as exc:  # noqa: BLE001 - an unreadable device is reported, not raised
        view = DeviceState(name, error=redact(describe(exc, _target_or_none(task, fabric)),
                                              values))
    return Result(host=task.host, result=view)


def drain_task(task: Task, fabric: Fabric, on: bool) -> Result:
    """Graceful shutdown on (or off) on one switch. Result: "" or what went wrong."""
    try:
        t = transport_for(task, fabric)
        device = fabric.device(task.host.name)
        drain = spec(device.platform).drain
        if drain is None:
            raise BgpgenError(f"{device.platform} cannot be drained")
        drain(t, device, on)
        return Result(host=task.host, result="")
    except Exception as exc:  # noqa: BLE001 - reported per device
        return Result(host=task.host, result=describe(exc, _target_or_none(task, fabric)))


def _platform_name(fabric: Fabric, name: str) -> str:
    try:
        return str(fabric.device(name).platform)
    except KeyError:
        return "?"


# --- the same over a whole Nornir object -------------------------------------------------------

def live_plan(nr: Nornir, build: Build, values: Mapping[str, str], baseline: str,
              progress: Progress | None = None) -> Plan:
    """Every host of ``nr`` planned against what runs, in the model's device order."""
    agg = nr.run(task=plan_task, build=build, values=values, progress=progress)
    order = [d.name for d in build.fabric.devices if d.name in agg]
    return Plan(build.fabric.name, baseline, [agg[name][0].result for name in order])


def read_states(nr: Nornir, fabric: Fabric, values: Mapping[str, str],
                only: set[str] | None = None) -> dict[str, DeviceState]:
    """Every host's (or only these hosts') sessions and RIB, normalised."""
    if only is not None:
        nr = nr.filter(filter_func=lambda h: h.name in only)
    agg = nr.run(task=read_state_task, fabric=fabric, values=values)
    return {name: res[0].result for name, res in agg.items()}


def close(nr: Nornir) -> None:
    """Close every host's connection, and the bastion connections under it."""
    for host in nr.inventory.hosts.values():
        conn = host.connections.get("netmiko")
        for jump in getattr(getattr(conn, "connection", None), "bgpgen_jumps", []):
            jump.close()
    nr.close_connections(on_good=True, on_failed=True)


__all__ = ["COMMAND_TIMEOUT", "DeviceResult", "Finish", "apply_task", "close", "drain_task",
           "finish_task", "live_plan", "nornir_for", "plan_task", "read_state_task",
           "read_states", "ssh_transport", "target_of", "transport_for"]
