"""Deploy stage: one transaction, plan -> apply -> verify gate -> confirm or roll back.

``bgpgen deploy`` (with or without ``--verify``) and every playbook batch run the same
:class:`Transaction`. A device whose config equals what runs is neither written nor reloaded;
a failure on one device restores that device and does not stop the others. Switches are pushed
before nodes, so a node's push is checked against switches that are already settled.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from nornir.core import Nornir

from . import verify
from .artifacts import Build
from .changes import Action, Plan
from .fleet import (DeviceResult, Finish, Progress, apply_task, finish_task, live_plan,
                    read_states)
from .model import Role
from .platforms.base import Runs, Status


@dataclass(slots=True)
class DeployReport:
    """Per device, what the transaction did; and the gate's verdict when there was one."""

    results: list[DeviceResult] = field(default_factory=list)
    gate: verify.VerifyReport | None = None
    interrupted: bool = False  #: Ctrl-C: pushes not started were skipped

    @property
    def failed_hosts(self) -> list[str]:
        return [r.device for r in self.results if r.status is Status.FAILED]

    @property
    def ok(self) -> bool:
        return not self.interrupted and not any(
            r.status in (Status.FAILED, Status.ROLLED_BACK, Status.SKIPPED) for r in self.results)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)


class Transaction:
    """Plan, push, gate and settle the hosts of ``nr``.

    ``observer`` is what the gate reads (the whole fabric's Nornir in a playbook batch, so that
    the batch's peers are judged too); by default the pushed hosts themselves.
    """

    def __init__(self, nr: Nornir, build: Build, values: Mapping[str, str], *,
                 timeout: float = 60.0, observer: Nornir | None = None,
                 baseline: str = "the running devices",
                 stop: threading.Event | None = None) -> None:
        self.nr, self.build, self.values = nr, build, values
        self.timeout = timeout
        self.observer = observer or nr
        self.baseline = baseline
        self.plan: Plan | None = None
        self.report = DeployReport()
        self.stop = stop or threading.Event()  #: shared with a playbook run's other batches

    def interrupt(self) -> None:
        """Stop starting pushes (Ctrl-C): pushes in flight finish or restore themselves, the
        gate stops waiting, and :meth:`run` rolls back what it left unconfirmed. Safe to
        call from a signal handler."""
        self.stop.set()

    @property
    def interrupted(self) -> bool:
        return self.stop.is_set()

    def make_plan(self, progress: Progress | None = None) -> Plan:
        self.plan = live_plan(self.nr, self.build, self.values, self.baseline, progress)
        return self.plan

    def apply(self, defer_confirm: bool = False,
              progress: Progress | None = None) -> DeployReport:
        """Push every device the plan says changed; the others are reported unchanged.

        ``defer_confirm``: leave pushes unconfirmed (BIRD's configure timeout) for the gate.
        """
        plan = self.plan or self.make_plan()
        for p in plan.devices:
            p.defer_confirm = defer_confirm
        todo = {p.device for p in plan.devices if p.changed}
        fabric = self.build.fabric
        done: dict[str, DeviceResult] = {}
        for role in (Role.SWITCH, Role.NODE):
            wave = {d for d in todo if fabric.device(d).role is role}
            if wave:
                agg = self.nr.filter(filter_func=lambda h, w=wave: h.name in w).run(
                    task=apply_task, plan=plan, build=self.build, values=self.values,
                    timeout=self.timeout, progress=progress, stop=self.stop)
                done.update({name: r[0].result for name, r in agg.items()})
        self.report = DeployReport(interrupted=self.interrupted)
        for p in plan.devices:
            if p.action is Action.FAILED:
                self.report.results.append(DeviceResult(p.device, Status.FAILED,
                                                        message=p.error))
            else:
                self.report.results.append(done.get(p.device,
                                                    DeviceResult(p.device, Status.UNCHANGED)))
        return self.report

    def health(self, devices: set[str] | None = None) -> set[str]:
        """The sessions up on both ends now (before a push: what the gate must keep up)."""
        fabric = self.build.fabric
        scope = devices if devices is not None else set(self.observer.inventory.hosts)
        views = read_states(self.observer, fabric, self.values, scope)
        return verify.healthy_sessions(verify.evaluate(fabric, views, scope))

    def gate(self, wait: float, devices: set[str] | None = None,
             pending: set[str] | None = None,
             healthy: set[str] | None = None) -> verify.VerifyReport:
        """The fabric's verify, polled until it holds or ``wait`` passes. Sessions to
        ``pending`` devices are judged only if they were ``healthy`` before."""
        fabric = self.build.fabric
        scope = devices if devices is not None else set(self.observer.inventory.hosts)
        result = verify.wait(fabric, lambda only: read_states(self.observer, fabric,
                                                              self.values, only),
                             wait, scope, pending, healthy, self.stop)
        self.report.gate = result
        return result

    def _finish(self, action: Finish, reason: str = "") -> None:
        changed = [r.device for r in self.report.results if r.status is Status.CHANGED]
        if not changed or self.plan is None:
            return
        agg = self.nr.filter(filter_func=lambda h: h.name in changed).run(
            task=finish_task, plan=self.plan, build=self.build, action=action,
            timeout=self.timeout, values=self.values)
        for res in self.report.results:
            if res.device not in agg:
                continue
            done: DeviceResult = agg[res.device][0].result
            res.runs = done.runs
            if action is Finish.ROLLBACK:
                res.status = Status.ROLLED_BACK if done.runs is Runs.PREVIOUS else Status.FAILED
                res.message = f"{reason}; " + (
                    f"rollback: {done.message}" if done.message else "previous config restored")
            elif done.message:
                res.status, res.message = Status.FAILED, f"confirm failed: {done.message}"

    def confirm(self) -> None:
        """Make every push of this transaction final."""
        self._finish(Finish.CONFIRM)

    def rollback(self, reason: str) -> None:
        """Put every device this transaction changed back on its previous config."""
        self._finish(Finish.ROLLBACK, reason)

    def settle(self, result: verify.VerifyReport) -> None:
        """Confirm when the gate held, else roll back."""
        if result.ok:
            self.confirm()
        elif self.interrupted:
            self.rollback("interrupted before the verify gate held")
        else:
            self.rollback("verify failed (" + "; ".join(f.message for f in result.findings[:3])
                          + ")")

    def run(self, gate_wait: float | None = None,
            progress: Progress | None = None) -> DeployReport:
        """The whole transaction: plan (if not made yet), apply, and with ``gate_wait`` the
        verify gate that confirms or rolls back every changed device."""
        self.apply(defer_confirm=gate_wait is not None, progress=progress)
        if gate_wait is not None:
            if self.interrupted:  # nothing was judged: what was pushed goes back
                self.rollback("interrupted before the verify gate")
            else:
                self.settle(self.gate(gate_wait))
        self.report.interrupted = self.interrupted
        return self.report


__all__ = ["DeployReport", "DeviceResult", "Transaction"]
