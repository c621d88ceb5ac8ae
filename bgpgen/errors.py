"""One error root for every stage; user errors carry path-qualified problems.

A :class:`Problem` names the file, the place inside it, the line when the YAML gives one, what is
wrong and what to do. The CLI prints one line per problem and exits 1; nothing else is printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, with where it is and how to fix it."""

    file: str
    path: str
    message: str
    hint: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        head = ": ".join(x for x in (where, self.path) if x)
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{head}: {self.message}{hint}" if head else f"{self.message}{hint}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "path": self.path,
                "message": self.message, "hint": self.hint}


class BgpgenError(Exception):
    """Root of every error bgpgen raises on purpose. The CLI turns these into one-line messages."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(file="", path="", message=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InventoryError(BgpgenError):
    """The inventory cannot be read, does not match the schema, or fails a semantic check."""


class SecretError(BgpgenError):
    """A secret reference does not resolve, or its value cannot be written safely."""


class RenderError(BgpgenError):
    """A template failed, or the output directory cannot be written."""


class CheckError(BgpgenError):
    """A daemon's own checker rejected a rendered file."""
