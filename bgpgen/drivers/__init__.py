"""Per platform: read what runs on a device (plan) and push the desired config (apply), the
safest way the platform has. Every apply checks the candidate on the target with the daemon's
own checker, keeps the previous config, activates, verifies that no session which was up went
down, and restores the previous config when any step fails.

| platform | check | activate | undo |
|---|---|---|---|
| gobgp, gobgp-rs | ``gobgpd -d`` | SIGHUP, or a restart when ``[global]`` changed; then originated routes reconciled | previous file back, SIGHUP / restart, routes reconciled |
| bird | ``birdc configure check`` | ``configure timeout``; ``configure confirm`` after verification | ``configure undo``, previous file back |
| frr | ``frr-reload.py --test`` | ``frr-reload.py --reload`` | reload of the saved running config |
"""

from __future__ import annotations

from ..model import Platform
from .base import (
                                   FRR_RELOAD,
                                   PREV,
                                   DeployFailed,
                                   Driver,
                                   Outcome,
                                   sessions,
                                   wait_sessions,
)
from .bird import BirdDriver
from .frr import FrrDriver
from .gobgp import GobgpDriver

DRIVERS: dict[Platform, Driver] = {Platform.GOBGP: GobgpDriver(),
                                   Platform.GOBGP_RS: GobgpDriver(),
                                   Platform.BIRD: BirdDriver(), Platform.FRR: FrrDriver()}


__all__ = ["DRIVERS", "FRR_RELOAD", "PREV", "BirdDriver", "DeployFailed", "Driver", "FrrDriver",
           "GobgpDriver", "Outcome", "sessions", "wait_sessions"]
