"""Deploy stage: plan every selected device over SSH, then push the changed ones, in parallel.

Nornir's inventory is built in memory from bgpgen's model (no second inventory to keep in sync)
and Nornir's threaded runner drives the hosts; Netmiko carries each SSH session. A device whose
rendered config equals what runs is neither written nor reloaded. A failure on one device
restores that device and does not stop the others.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nornir.core import Nornir
from nornir.core.configuration import Config
from nornir.core.inventory import (ConnectionOptions, Defaults, Groups, Host, Hosts, Inventory)
from nornir.core.plugins.connections import ConnectionPluginRegister
from nornir.core.task import Result, Task
from nornir.plugins.runners import ThreadedRunner

from .drivers import DRIVERS, DeployFailed
from .errors import BgpgenError
from .model import Device
from .plan import DevicePlan, Plan
from .remote import Remote, connect_options
from .render import Artifact, Build
from .secrets import redact
from .targets import Target

Progress = Callable[[str, str], None]  #: (device, what happened)


@dataclass(slots=True)
class DeviceResult:
    device: str
    status: str           #: changed | unchanged | failed | skipped
    seconds: float = 0.0
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "status": self.status,
                "seconds": round(self.seconds, 3), "message": self.message}


@dataclass(slots=True)
class Report:
    results: list[DeviceResult] = field(default_factory=list)

    @property
    def failed_hosts(self) -> list[str]:
        return [r.device for r in self.results if r.status == "failed"]


def nornir_for(devices: list[Device], targets: Mapping[str, Target], workers: int) -> Nornir:
    """A Nornir object over these devices, built from the model and the targets."""
    ConnectionPluginRegister.auto_register()
    hosts = Hosts()
    for d in devices:
        t = targets[d.name]
        opts = connect_options(t)
        extras = {k: v for k, v in opts.items() if k not in ("host", "port", "username",
                                                            "device_type")}
        extras["auto_connect"] = False
        hosts[d.name] = Host(
            name=d.name, hostname=t.host, port=t.port, username=t.user, platform="linux",
            data={"target": t},
            connection_options={"netmiko": ConnectionOptions(
                hostname=t.host, port=t.port, username=t.user, platform="linux",
                extras=extras)})
    return Nornir(inventory=Inventory(hosts=hosts, groups=Groups(), defaults=Defaults()),
                  runner=ThreadedRunner(num_workers=workers), config=Config())


def describe(exc: BaseException) -> str:
    """One line for a connection or device failure."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if isinstance(exc, BgpgenError):
        return exc.problems[0].message
    if "BadHostKey" in name or "host key" in text.lower() or "not found in known_hosts" in text:
        return f"host key verification failed ({text[:160]}); check known_hosts"
    if "Authentication" in name:
        return f"authentication failed: {text[:160]}"
    if "Timeout" in name or isinstance(exc, (socket.timeout, TimeoutError, ConnectionError,
                                             OSError)):
        return f"unreachable: {text[:160] or name}"
    return f"{name}: {text[:200]}"


def _remote(task: Task) -> Remote:
    conn = task.host.get_connection("netmiko", task.nornir.config)
    if getattr(conn, "remote_conn_pre", None) is None:
        # Netmiko builds the SSH client (its host key policy and known_hosts, its key and agent
        # handling) and connects it; bgpgen uses exec channels and SFTP on that session, so the
        # interactive shell and its prompt discovery (a login shell per device, ~0.2 s of
        # sleeps) are left out.
        conn.remote_conn_pre = conn._build_ssh_client()
        conn.remote_conn_pre.connect(**conn._connect_params_dict())
    return Remote(conn, task.host.data["target"])


def _plan_task(task: Task, arts: dict[str, list[Artifact]], values: Mapping[str, str],
               progress: Progress | None) -> Result:
    t: Target = task.host.data["target"]
    try:
        p = DRIVERS[t.platform].plan(_remote(task), arts[t.name], values)
    except Exception as exc:  # noqa: BLE001 - every failure becomes this device's result
        p = DevicePlan(t.name, t.platform.value, "failed", error=redact(describe(exc), values))
    if progress:
        progress(t.name, "planned")
    return Result(host=task.host, result=p)


def _apply_task(task: Task, plans: dict[str, DevicePlan], arts: dict[str, list[Artifact]],
                values: Mapping[str, str], timeout: float, progress: Progress | None) -> Result:
    t: Target = task.host.data["target"]
    start = time.monotonic()
    try:
        out = DRIVERS[t.platform].apply(_remote(task), plans[t.name], arts[t.name], values,
                                        timeout)
        res = DeviceResult(t.name, out.status, message=out.message)
    except DeployFailed as exc:
        res = DeviceResult(t.name, "failed", message=redact(exc.problems[0].message, values))
    except Exception as exc:  # noqa: BLE001
        res = DeviceResult(t.name, "failed", message=redact(describe(exc), values))
    res.seconds = time.monotonic() - start
    if progress:
        progress(t.name, res.status)
    return Result(host=task.host, result=res)


def _artifacts(build: Build) -> dict[str, list[Artifact]]:
    out: dict[str, list[Artifact]] = {}
    for a in build.artifacts:
        out.setdefault(a.device, []).append(a)
    return out


def live_plan(nr: Nornir, build: Build, values: Mapping[str, str], baseline: str,
              progress: Progress | None = None) -> Plan:
    arts = _artifacts(build)
    agg = nr.run(task=_plan_task, arts=arts, values=values, progress=progress)
    order = [d.name for d in build.fabric.devices if d.name in agg]
    return Plan(build.fabric.name, baseline, [agg[name][0].result for name in order])


def apply(nr: Nornir, build: Build, plan: Plan, values: Mapping[str, str], timeout: float,
          progress: Progress | None = None) -> Report:
    """Push every device the plan says changed; the others are reported unchanged."""
    plans = {p.device: p for p in plan.devices}
    todo = [p.device for p in plan.devices if p.changed]
    report = Report()
    agg: dict[str, Any] = {}
    # Switches first, then nodes: a node's push is verified against switches that are already
    # settled (pushed, or restored), never against one that is mid-change.
    switches = {d.name for d in build.fabric.switches}
    for wave in ([d for d in todo if d in switches], [d for d in todo if d not in switches]):
        if wave:
            agg.update(nr.filter(filter_func=lambda h, w=wave: h.name in w).run(
                task=_apply_task, plans=plans, arts=_artifacts(build), values=values,
                timeout=timeout, progress=progress))
    for p in plan.devices:
        if p.action == "failed":
            report.results.append(DeviceResult(p.device, "failed", message=p.error))
        elif p.device in agg:
            report.results.append(agg[p.device][0].result)
        else:
            report.results.append(DeviceResult(p.device, "unchanged"))
    return report


def _finish_task(task: Task, plans: dict[str, DevicePlan], action: str, timeout: float,
                 values: Mapping[str, str]) -> Result:
    t: Target = task.host.data["target"]
    driver = DRIVERS[t.platform]
    try:
        r = _remote(task)
        if action == "confirm":
            driver.confirm(r, plans[t.name])
        else:
            driver.rollback(r, plans[t.name], timeout)
        return Result(host=task.host, result="")
    except Exception as exc:  # noqa: BLE001
        return Result(host=task.host, result=redact(describe(exc), values))


def finish(nr: Nornir, plan: Plan, report: Report, action: str, timeout: float,
           values: Mapping[str, str], reason: str = "") -> None:
    """Confirm or roll back every device this run changed, after the fabric's verify."""
    plans = {p.device: p for p in plan.devices}
    changed = [r.device for r in report.results if r.status == "changed"]
    if not changed:
        return
    agg = nr.filter(filter_func=lambda h: h.name in changed).run(
        task=_finish_task, plans=plans, action=action, timeout=timeout, values=values)
    for res in report.results:
        if res.device not in agg:
            continue
        problem = agg[res.device][0].result
        if action == "rollback":
            res.status = "failed" if problem else "rolled_back"
            res.message = f"verify failed ({reason}); " + (
                f"rollback failed: {problem}" if problem else "previous config restored")
        elif problem:
            res.status, res.message = "failed", f"confirm failed: {problem}"


def close(nr: Nornir) -> None:
    nr.close_connections(on_good=True, on_failed=True)


def _collect_task(task: Task, fabric: Any, values: Mapping[str, str]) -> Result:
    from .verify import SEP, DeviceView, command, parse
    t: Target = task.host.data["target"]
    try:
        r = _remote(task)
        rc, out, err = r.run3(command(t, fabric), timeout=30)
        try:
            view = parse(t, out)
        except (ValueError, KeyError, IndexError):  # a daemon mid-restart answers half
            view = DeviceView(t.name, down="the BGP daemon's answer could not be read")
            return Result(host=task.host, result=view)
        if rc != 0 and not view.peers:
            text = redact(out + err, values).replace(SEP, " ")
            view.down = " ".join(text.split())[:200] or f"exit code {rc}"
    except Exception as exc:  # noqa: BLE001 - an unreadable device is reported, not raised
        view = DeviceView(t.name, error=redact(describe(exc), values))
    return Result(host=task.host, result=view)


def collect(nr: Nornir, fabric: Any, values: Mapping[str, str],
            only: set[str] | None = None) -> dict[str, Any]:
    """Every selected device's sessions and RIB (or only these devices'), normalised (see
    :mod:`bgpgen.verify`)."""
    if only is not None:
        nr = nr.filter(filter_func=lambda h: h.name in only)
    agg = nr.run(task=_collect_task, fabric=fabric, values=values)
    return {name: res[0].result for name, res in agg.items()}
