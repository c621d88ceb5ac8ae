"""What rendering produces: one :class:`Artifact` per file, and the :class:`Build` of a fabric
(what ``bgpgen render`` writes into ``build/``). Secrets are tokens here, never values."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from .model import Fabric, SecretRef


@dataclass(frozen=True, slots=True)
class Artifact:
    """One rendered file. ``text`` holds secret tokens, never values."""

    device: str
    name: str
    target: str
    text: str
    secrets: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"{self.device}/{self.name}"

    @property
    def mode(self) -> int:
        return 0o600 if self.secrets else 0o644

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Build:
    """Every artifact of a fabric, in device then file order."""

    fabric: Fabric
    artifacts: tuple[Artifact, ...]
    secrets: tuple[SecretRef, ...] = field(default=())
    _by_device: dict[str, dict[str, Artifact]] = field(default_factory=dict, init=False,
                                                       compare=False, repr=False)

    def __post_init__(self) -> None:
        for a in self.artifacts:
            self._by_device.setdefault(a.device, {})[a.name] = a

    def files_of(self, device: str) -> dict[str, Artifact]:
        """A device's artifacts by file name."""
        return self._by_device.get(device, {})

    def __iter__(self) -> Iterator[Artifact]:
        return iter(self.artifacts)
