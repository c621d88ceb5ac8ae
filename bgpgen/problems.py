"""Collecting problems while checking, so a user sees all of them in one run."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InventoryError, Problem
from .loader import PathT, Source


@dataclass(slots=True)
class Collector:
    """Gathers :class:`Problem` objects placed through the inventory's :class:`Source`."""

    source: Source
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: PathT, message: str, hint: str = "") -> None:
        problem = self.source.problem(path, message, hint)
        if problem not in self.problems:  # e.g. a group's fault, met once per member node
            self.problems.append(problem)

    def where(self, path: PathT) -> str:
        """``file:line path`` of a place, to point at the other half of a conflict."""
        p = self.source.problem(path, "")
        return f"{p.file}:{p.line} {p.path}" if p.line else f"{p.file} {p.path}"

    def raise_if_any(self) -> None:
        if self.problems:
            raise InventoryError(self.problems)
