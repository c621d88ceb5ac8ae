"""``bgpgen run``: execute a playbook, batch after batch, with verify gates and rollback.

Everything is checked before anything is touched: the playbook, every selection and every
batch. A batch's deploy defers BIRD's confirm when a verify step follows, so the gate decides:
a failed gate (or more failed devices than ``max_fail_percentage`` allows) rolls that batch
back, and no later batch starts. Earlier batches keep their new config.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import verify
from .collect import shell
from .deploy import DeviceResult, Report, apply, collect, finish, live_plan, nornir_for
from .errors import BgpgenError, Problem
from .model import Device, Fabric, Platform
from .plan import as_text
from .playbook import Play, Playbook, PlaybookError, batches, select
from .remote import Remote
from .render import Build
from .targets import Target

Say = Callable[[str], None]


@dataclass(slots=True)
class BatchResult:
    play: str
    index: int
    devices: list[str]
    status: str = "not run"            #: ok | failed | not run | checked
    steps: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"play": self.play, "batch": self.index, "devices": self.devices,
                "status": self.status, "steps": self.steps, "failed": self.failed,
                "results": self.results, "started": self.started, "finished": self.finished}


def prepare(pb: Playbook, fabric: Fabric, interactive: bool
            ) -> list[tuple[Play, list[list[Device]]]]:
    """Selections and batches of every play; every problem found before anything runs."""
    out = []
    problems: list[Problem] = []
    for play in pb.plays:
        try:
            devs = select(pb, play, fabric)
            cut = batches(pb, play, fabric, devs)
        except PlaybookError as exc:
            problems += exc.problems
            continue
        for step in play.steps:
            if step.kind in ("drain", "undrain"):
                bad = [d for d in devs if d.platform is not Platform.FRR]
                if bad:
                    problems.append(pb.problem(step.path, f"{step.kind}: {bad[0].name} runs "
                                               f"{bad[0].platform}, which bgpgen cannot drain",
                                               "drain frr switches only (bgp graceful-shutdown)"))
            if step.kind == "pause" and "prompt" in step.params and not interactive:
                problems.append(pb.problem(step.path, "this pause asks for a confirmation and "
                                           "there is no terminal", "run it from a terminal, "
                                           "or pass --yes to confirm every pause"))
        out.append((play, cut))
    if problems:
        raise PlaybookError(problems)
    return out


def _drain(nr: Any, fabric: Fabric, names: list[str], on: bool) -> list[str]:
    """bgp graceful-shutdown on FRR switches: peers see GRACEFUL_SHUTDOWN and move away."""
    from nornir.core.task import Result, Task

    def task(t: Task) -> Result:
        target: Target = t.host.data["target"]
        r = Remote(t.host.get_connection("netmiko", t.nornir.config), target)
        fabric_asn = t.host.data["asn"]
        r.check(shell(["vtysh", "--vty_socket", target.run, "-c", "conf t", "-c",
                       f"router bgp {fabric_asn}", "-c",
                       ("" if on else "no ") + "bgp graceful-shutdown"]), "graceful-shutdown")
        return Result(host=t.host)
    sub = nr.filter(filter_func=lambda h: h.name in names)
    for name in names:
        sub.inventory.hosts[name].data["asn"] = fabric.device(name).asn
    agg = sub.run(task=task)
    return [f"{n}: {agg[n].exception}" for n in names if n in agg and agg[n].failed]


def execute(pb: Playbook, fabric: Fabric, build: Build, targets: Mapping[str, Target],
            values: Mapping[str, str], *, check: bool, yes: bool, workers: int,
            say: Say) -> list[BatchResult]:
    interactive = yes or sys.stdin.isatty()
    plays = prepare(pb, fabric, interactive)
    missing = sorted({d.name for _, cut in plays for b in cut for d in b} - set(targets))
    if missing:
        raise BgpgenError(Problem(str(pb.file), "", f"no way to reach {missing[0]}",
                                  "give it mgmt: in the inventory, or run against a lab"))
    order = [(play, i, b) for play, cut in plays for i, b in enumerate(cut, 1)]
    results = [BatchResult(play.name, i, [d.name for d in b]) for play, i, b in order]
    nr = nornir_for([d for d in fabric.devices if d.name in targets], dict(targets), workers)
    try:
        for k, ((play, i, batch), res) in enumerate(zip(order, results)):
            later = {d.name for _, _, b in order[k + 1:] for d in b}
            res.started = time.time()
            say(f"[{play.name}] batch {i}/{sum(1 for p, _, _ in order if p is play)}: "
                + ", ".join(res.devices))
            ok = _batch(play, batch, res, nr, fabric, build, values, later, check, yes, say)
            res.finished = time.time()
            if not ok:
                say(f"[{play.name}] batch {i} failed: later batches will not run")
                break
    finally:
        nr.close_connections(on_good=True, on_failed=True)
    return results


@dataclass(slots=True)
class _Batch:
    """One batch of a play, run step by step; each step returns False when the gate fails."""

    play: Play
    names: list[str]
    res: BatchResult
    nr: Any
    fabric: Fabric
    build: Build
    values: Mapping[str, str]
    later: set[str]
    yes: bool
    say: Say
    report: Report = field(default_factory=Report)
    plan: Any = None

    @property
    def sub(self) -> Any:
        names = self.names
        return self.nr.filter(filter_func=lambda h: h.name in names)

    def diff(self, params: dict[str, Any]) -> bool:
        self.say(as_text(live_plan(self.sub, self.build, self.values, "the running devices"),
                         self.fabric))
        return True

    def deploy(self, params: dict[str, Any]) -> bool:
        self.plan = live_plan(self.sub, self.build, self.values, "the running devices")
        gate_follows = any(s.kind == "verify" for s in self.play.steps)
        for p in self.plan.devices:
            p.extra["defer_confirm"] = gate_follows
        self.report = apply(self.sub, self.build, self.plan, self.values,
                            float(params.get("timeout", 60)))
        self.res.results = [r.as_dict() for r in self.report.results]
        failed = [r for r in self.report.results if r.status == "failed"]
        self.say(f"  deploy: {sum(r.status == 'changed' for r in self.report.results)} "
                 f"changed, {len(failed)} failed")
        if 100.0 * len(failed) / len(self.names) <= self.play.max_fail_percentage:
            return True
        self.res.failed += [{"device": r.device, "gate": "deploy", "message": r.message}
                            for r in failed]
        self.rollback("the batch's deploy failed")
        return False

    def verify(self, params: dict[str, Any]) -> bool:
        fabric = self.fabric
        scope = set(self.names) | {x for d in self.names for s in fabric.sessions_of(d)
                                   for x in (s.node, s.switch)}
        rep = verify.wait(fabric, lambda only: collect(self.nr, fabric, self.values, only),
                          float(params.get("wait", 60)), scope, self.later)
        self.say(f"  verify: {verify.summary(rep)}")
        if rep.ok:
            if self.plan is not None:
                finish(self.sub, self.plan, self.report, "confirm", 60, self.values)
            return True
        self.res.failed += [{"device": _device_of(x, self.names), "gate": "verify",
                             "message": x} for x in rep.problems + rep.errors]
        if self.plan is not None:
            self.rollback("; ".join(rep.problems[:2]))
        return False

    def pause(self, params: dict[str, Any]) -> bool:
        if "seconds" in params:
            time.sleep(float(params["seconds"]))
        elif not self.yes and input(f"{params['prompt']} [yes/no] ").strip() != "yes":
            self.res.failed.append({"device": "", "gate": "pause", "message": "not confirmed"})
            return False
        return True

    def drain(self, params: dict[str, Any], on: bool = True) -> bool:
        errors = _drain(self.sub, self.fabric, self.names, on)
        self.res.failed += [{"device": e.split(":")[0], "gate": "drain" if on else "undrain",
                             "message": e} for e in errors]
        return not errors

    def undrain(self, params: dict[str, Any]) -> bool:
        return self.drain(params, on=False)

    def rollback(self, reason: str) -> None:
        finish(self.sub, self.plan, self.report, "rollback", 60, self.values, reason)
        self.res.results = [r.as_dict() for r in self.report.results]
        rolled = [r.device for r in self.report.results if r.status == "rolled_back"]
        self.say(f"  rolled back: {', '.join(rolled) or 'nothing had changed'}")


def _batch(play: Play, batch: list[Device], res: BatchResult, nr: Any, fabric: Fabric,
           build: Build, values: Mapping[str, str], later: set[str], check: bool, yes: bool,
           say: Say) -> bool:
    run = _Batch(play, [d.name for d in batch], res, nr, fabric, build, values, later, yes, say)
    steps: dict[str, Callable[[dict[str, Any]], bool]] = {
        "diff": run.diff, "deploy": run.deploy, "verify": run.verify, "pause": run.pause,
        "drain": run.drain, "undrain": run.undrain}
    for step in play.steps:
        if check:  # print the batch's plan once, touch nothing
            if step.kind in ("diff", "deploy") and run.plan is None:
                run.plan = live_plan(run.sub, build, values, "the running devices")
                say(as_text(run.plan, fabric))
            res.steps.append(f"{step.kind} (checked)")
            continue
        if not steps[step.kind](step.params):
            res.status = "failed"
            return False
        res.steps.append(step.kind)
    res.status = "checked" if check else "ok"
    return True


def _device_of(problem: str, names: list[str]) -> str:
    return next((n for n in names if n in problem), "")


__all__ = ["BatchResult", "DeviceResult", "execute", "prepare"]
