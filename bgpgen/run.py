"""``bgpgen run``: execute a playbook, batch after batch, with verify gates and rollback.

Everything is checked before anything is touched: the playbook, every selection and every
batch. A batch's deploy defers BIRD's confirm when a verify step follows, so the gate decides:
a failed gate (or more failed devices than ``max_fail_percentage`` allows) rolls that batch
back, and no later batch starts. Earlier batches keep their new config.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nornir.core import Nornir

from . import verify
from .artifacts import Build
from .deploy import Transaction
from .errors import BgpgenError, Problem
from .fleet import drain_task, live_plan, nornir_for
from .model import Device, Fabric
from .plan import as_text
from .platforms import REGISTRY, spec
from .platforms.base import Status
from .playbook import Play, Playbook, PlaybookError, batches, select
from .targets import Target

Say = Callable[[str], None]


class BatchStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    NOT_RUN = "not run"
    CHECKED = "checked"
    INTERRUPTED = "interrupted"  #: Ctrl-C: its pushes rolled back (or never started)


@dataclass(slots=True)
class BatchResult:
    play: str
    index: int
    devices: list[str]
    status: BatchStatus = BatchStatus.NOT_RUN
    steps: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"play": self.play, "batch": self.index, "devices": self.devices,
                "status": str(self.status), "steps": self.steps, "failed": self.failed,
                "results": self.results, "started": self.started, "finished": self.finished}


def prepare(pb: Playbook, fabric: Fabric, interactive: bool,
            limit: set[str] | None = None) -> list[tuple[Play, list[list[Device]]]]:
    """Selections and batches of every play; every problem found before anything runs.
    ``limit`` (the CLI's --limit) narrows every play; a play it leaves empty is skipped."""
    out = []
    problems: list[Problem] = []
    for play in pb.plays:
        try:
            devs = select(pb, play, fabric)
            if limit is not None:
                devs = [d for d in devs if d.name in limit]
                if not devs:
                    continue
            cut = batches(pb, play, fabric, devs)
        except PlaybookError as exc:
            problems += exc.problems
            continue
        for step in play.steps:
            if step.kind in ("drain", "undrain"):
                bad = [d for d in devs if spec(d.platform).drain is None]
                if bad:
                    can = sorted(str(p) for p, s in REGISTRY.items() if s.drain is not None)
                    problems.append(pb.problem(step.path, f"{step.kind}: {bad[0].name} runs "
                                               f"{bad[0].platform}, which bgpgen cannot drain",
                                               f"drain devices of: {', '.join(can)}"))
            if step.kind == "pause" and "prompt" in step.params and not interactive:
                problems.append(pb.problem(step.path, "this pause asks for a confirmation and "
                                           "there is no terminal", "run it from a terminal, "
                                           "or pass --yes to confirm every pause"))
        out.append((play, cut))
    if problems:
        raise PlaybookError(problems)
    return out


def execute(pb: Playbook, fabric: Fabric, build: Build, targets: Mapping[str, Target],
            values: Mapping[str, str], *, check: bool, yes: bool, workers: int,
            say: Say, limit: set[str] | None = None, stop: threading.Event | None = None,
            command_timeout: float = 60.0) -> list[BatchResult]:
    """Run the playbook's batches in order, each gated; the first failed batch stops the run.
    A set ``stop`` (Ctrl-C) starts no new batch and no new push; the batch under way rolls back
    what it pushed."""
    stop = stop or threading.Event()
    interactive = yes or sys.stdin.isatty()
    plays = prepare(pb, fabric, interactive, limit)
    missing = sorted({d.name for _, cut in plays for b in cut for d in b} - set(targets))
    if missing:
        raise BgpgenError(Problem(str(pb.file), "", f"no way to reach {missing[0]}",
                                  "give it mgmt: in the inventory, or run against a lab"))
    order = [(play, i, b) for play, cut in plays for i, b in enumerate(cut, 1)]
    results = [BatchResult(play.name, i, [d.name for d in b]) for play, i, b in order]
    nr = nornir_for([d for d in fabric.devices if d.name in targets], dict(targets), workers,
                    command_timeout)
    try:
        for k, ((play, i, batch), res) in enumerate(zip(order, results)):
            if stop.is_set():
                say("interrupted: later batches will not run")
                break
            later = {d.name for _, _, b in order[k + 1:] for d in b}
            res.started = time.time()
            say(f"[{play.name}] batch {i}/{sum(1 for p, _, _ in order if p is play)}: "
                + ", ".join(res.devices))
            ok = _batch(play, batch, res, nr, fabric, build, values, later, check, yes, say,
                        stop)
            res.finished = time.time()
            if not ok:
                say(f"[{play.name}] batch {i} failed: later batches will not run")
                break
    finally:
        nr.close_connections(on_good=True, on_failed=True)
    return results


@dataclass(slots=True)
class _Batch:
    """One batch of a play, run step by step; each step returns False when the gate fails.

    A deploy step opens the batch's :class:`Transaction` (pushes left unconfirmed when a verify
    step follows); verify steps are its gates; the batch ends by confirming it, or by rolling
    it back at the first failed gate.
    """

    play: Play
    names: list[str]
    res: BatchResult
    nr: Nornir
    fabric: Fabric
    build: Build
    values: Mapping[str, str]
    later: set[str]
    yes: bool
    say: Say
    stop: threading.Event
    tx: Transaction | None = None
    healthy: set[str] | None = None  #: sessions up before the batch's push

    @property
    def scope(self) -> set[str]:
        """The batch and every device it has a session with."""
        return set(self.names) | {x for d in self.names for s in self.fabric.sessions_of(d)
                                  for x in (s.node, s.switch)}

    @property
    def sub(self) -> Nornir:
        names = self.names
        return self.nr.filter(filter_func=lambda h: h.name in names)

    def diff(self, params: dict[str, Any]) -> bool:
        self.say(as_text(live_plan(self.sub, self.build, self.values, "the running devices"),
                         self.fabric))
        return True

    def deploy(self, params: dict[str, Any]) -> bool:
        self.tx = Transaction(self.sub, self.build, self.values,
                              timeout=float(params.get("timeout", 60)), observer=self.nr,
                              stop=self.stop)
        gate_follows = any(s.kind == "verify" for s in self.play.steps)
        if gate_follows:  # what is up now must still be up after the push
            self.healthy = self.tx.health(self.scope)
        report = self.tx.apply(defer_confirm=gate_follows)
        self.res.results = [r.as_dict() for r in report.results]
        failed = [r for r in report.results if r.status is Status.FAILED]
        self.say(f"  deploy: {report.count(Status.CHANGED)} changed, {len(failed)} failed")
        if 100.0 * len(failed) / len(self.names) <= self.play.max_fail_percentage:
            return True
        self.res.failed += [{"device": r.device, "gate": "deploy", "message": r.message}
                            for r in failed]
        self.rollback("the batch's deploy failed")
        return False

    def verify(self, params: dict[str, Any]) -> bool:
        tx = self.tx or Transaction(self.sub, self.build, self.values, observer=self.nr)
        rep = tx.gate(float(params.get("wait", 60)), self.scope, self.later, self.healthy)
        self.say(f"  verify: {verify.summary(rep)}")
        if rep.ok:
            return True
        self.res.failed += [{"device": f.device, "gate": "verify", "message": f.message}
                            for f in rep.findings]
        if self.tx is not None:
            self.rollback("verify failed (" + "; ".join(f.message for f in rep.findings[:2])
                          + ")")
        return False

    def pause(self, params: dict[str, Any]) -> bool:
        if "seconds" in params:
            self.stop.wait(float(params["seconds"]))  # Ctrl-C ends it at once
        elif not self.yes and input(f"{params['prompt']} [yes/no] ").strip() != "yes":
            self.res.failed.append({"device": "", "gate": "pause", "message": "not confirmed"})
            return False
        return True

    def drain(self, params: dict[str, Any], on: bool = True) -> bool:
        agg = self.sub.run(task=drain_task, fabric=self.fabric, on=on)
        errors = {name: r[0].result for name, r in agg.items() if r[0].result}
        self.res.failed += [{"device": name, "gate": "drain" if on else "undrain",
                             "message": f"{name}: {text}"} for name, text in sorted(errors.items())]
        return not errors

    def undrain(self, params: dict[str, Any]) -> bool:
        return self.drain(params, on=False)

    def confirm(self) -> None:
        if self.tx is not None:
            self.tx.confirm()
            self.res.results = [r.as_dict() for r in self.tx.report.results]

    def rollback(self, reason: str) -> None:
        assert self.tx is not None
        self.tx.rollback(reason)
        self.res.results = [r.as_dict() for r in self.tx.report.results]
        rolled = [r.device for r in self.tx.report.results if r.status is Status.ROLLED_BACK]
        self.say(f"  rolled back: {', '.join(rolled) or 'nothing had changed'}")


def _batch(play: Play, batch: list[Device], res: BatchResult, nr: Nornir, fabric: Fabric,
           build: Build, values: Mapping[str, str], later: set[str], check: bool, yes: bool,
           say: Say, stop: threading.Event) -> bool:
    run = _Batch(play, [d.name for d in batch], res, nr, fabric, build, values, later, yes, say,
                 stop)
    steps: dict[str, Callable[[dict[str, Any]], bool]] = {
        "diff": run.diff, "deploy": run.deploy, "verify": run.verify, "pause": run.pause,
        "drain": run.drain, "undrain": run.undrain}
    planned = False
    for step in play.steps:
        if check:  # print the batch's plan once, touch nothing
            if step.kind in ("diff", "deploy") and not planned:
                say(as_text(live_plan(run.sub, build, values, "the running devices"), fabric))
                planned = True
            res.steps.append(f"{step.kind} (checked)")
            continue
        if stop.is_set():
            if run.tx is not None:
                run.rollback("interrupted")
            res.status = BatchStatus.INTERRUPTED
            return False
        if not steps[step.kind](step.params):
            res.status = BatchStatus.INTERRUPTED if stop.is_set() else BatchStatus.FAILED
            return False
        res.steps.append(step.kind)
    if stop.is_set() and not check:  # interrupted during the last step: nothing confirmed
        if run.tx is not None:
            run.rollback("interrupted")
        res.status = BatchStatus.INTERRUPTED
        return False
    if not check:
        run.confirm()  # every gate of the batch held: its pushes are final
    res.status = BatchStatus.CHECKED if check else BatchStatus.OK
    return True


__all__ = ["BatchResult", "BatchStatus", "execute", "prepare"]
