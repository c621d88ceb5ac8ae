"""What a plan is made of: per device, the action, the diff, the sessions touched and what
activating the change costs. Platform modules fill these; :mod:`bgpgen.plan` shows them."""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Cost(IntEnum):
    """What activating a change costs, least to most disruptive."""

    NONE = 0
    HITLESS = 1
    SOFT = 2
    RESET = 3
    RESTART = 4

    @property
    def label(self) -> str:
        return _COST_LABELS[self]


_COST_LABELS = {Cost.NONE: "none", Cost.HITLESS: "hitless", Cost.SOFT: "soft reset",
                Cost.RESET: "session reset", Cost.RESTART: "daemon restart"}


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    NONE = "none"
    FAILED = "failed"


class Exit(IntEnum):
    NO_CHANGES = 0
    ERROR = 1
    CHANGES = 2


@dataclass(slots=True)
class DevicePlan:
    device: str
    platform: str
    action: Action = Action.NONE
    diff: list[str] = field(default_factory=list)
    sessions_added: list[str] = field(default_factory=list)
    sessions_removed: list[str] = field(default_factory=list)
    sessions_changed: list[str] = field(default_factory=list)
    cost: Cost = Cost.NONE
    cost_detail: str = ""
    error: str = ""
    #: what the platform module learnt while planning and needs to apply; never shown
    extra: dict[str, Any] = field(default_factory=dict)
    #: deploy --verify and playbook gates: keep the push unconfirmed until the gate decides
    defer_confirm: bool = False
    #: set when the deploy is interrupted (Ctrl-C): a push not yet activated stops untouched
    stop: threading.Event | None = field(default=None, compare=False, repr=False)

    @property
    def changed(self) -> bool:
        return self.action in (Action.CREATE, Action.UPDATE)

    def raise_cost(self, cost: Cost, detail: str) -> None:
        """Record a cost; the most disruptive one found wins."""
        if cost > self.cost:
            self.cost, self.cost_detail = cost, detail

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "platform": self.platform, "action": str(self.action),
                "diff": self.diff, "sessions_added": self.sessions_added,
                "sessions_removed": self.sessions_removed,
                "sessions_changed": self.sessions_changed, "cost": self.cost.label,
                "cost_detail": self.cost_detail, "error": self.error}


@dataclass(slots=True)
class Plan:
    fabric: str
    baseline: str
    devices: list[DevicePlan]

    def counts(self) -> dict[str, int]:
        out = {str(a): 0 for a in Action}
        for d in self.devices:
            out[str(d.action)] += 1
        return out

    @property
    def exit(self) -> Exit:
        c = self.counts()
        if c["failed"]:
            return Exit.ERROR
        return Exit.CHANGES if c["create"] or c["update"] else Exit.NO_CHANGES

    def device(self, name: str) -> DevicePlan | None:
        return next((d for d in self.devices if d.device == name), None)


def unified(old: str, new: str, name: str) -> list[str]:
    """A unified diff of one file, running against desired."""
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"running/{name}",
                                     f"desired/{name}", lineterm="", n=2))
