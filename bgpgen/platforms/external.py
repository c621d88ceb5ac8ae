"""external: a node whose BGP speaker bgpgen does not configure (inventory: ``speaker:
external``): a program of one's own (a MetalLB- or OpenELB-like controller embedding gobgp, a
hand-written gobgpd or ExaBGP), or anything else that announces the node's prefixes.

bgpgen renders and pushes the switch side of its sessions as for any node, renders nothing for
the node itself, never connects to it, and verify judges its sessions from the switches alone:
session state, the prefixes received from it and their next hops, nothing it should not
announce. In a lab the node gets its namespace, addresses, routes and sshd, and no daemon: one
starts one's own program in it with ``bgpgen lab exec NODE -- PROGRAM``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..artifacts import Artifact
from ..changes import DevicePlan
from ..errors import BgpgenError, Problem
from ..model import Device, Fabric, Passive, Platform, Role
from ..state import DeviceState
from ..transport import Transport
from .base import (Checker, Daemon, DeviceFiles, LabSetup, Outcome, Paths, PlatformSpec,
                   StateReader)

if TYPE_CHECKING:
    from ..targets import Target

#: where a lab gives the node's own program a runtime directory
PATHS = Paths(config="", run="/run/bgp", confdir="")
NEVER = re.compile(r"(?!)(.)(.)(.)")  #: no line of an external speaker holds a secret of ours


class NotConfigured(BgpgenError):
    """bgpgen has no target for an external speaker: nothing may try to push to it."""


def _refuse(what: str) -> NotConfigured:
    return NotConfigured(Problem("", "external", f"bgpgen does not {what} an external speaker",
                                 "it has no target: select its switches instead"))


class ExternalDriver:
    """Never called: an external speaker has no target (see :mod:`bgpgen.targets`)."""

    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        raise _refuse("plan")

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        raise _refuse("push to")

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        raise _refuse("confirm on")

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        raise _refuse("roll back")


def _no_state(t: Target, fabric: Fabric) -> str:
    raise _refuse("read")


def _parse(t: Target, text: str, seconds: float) -> DeviceState:
    raise _refuse("read")


def _classify(old: str, new: str, plan: DevicePlan) -> None:
    """No files, nothing to classify."""


def _context(fabric: Fabric, device: Device) -> dict[str, Any]:
    return {}


def _no_daemons(device: Device) -> list[Daemon]:
    return []


def _no_bootstrap(device: Device) -> str:
    return ""


def _nothing(device: Device, fs: DeviceFiles, files: Mapping[str, Artifact]
             ) -> list[tuple[str, ...]]:
    return []


SPEC = PlatformSpec(
    platform=Platform.EXTERNAL,
    role=Role.NODE,
    inventory_name="external",
    description="a node whose BGP speaker bgpgen does not configure",
    configured=False,
    files=(),
    context=_context,
    checker=Checker((), "true", "coreutils"),
    netmiko_device_type="linux",
    paths=PATHS,
    secret_line=NEVER,
    classify=_classify,
    driver=ExternalDriver(),
    # lab status asks every device for its sessions: an external one has none bgpgen can read
    state=StateReader(_no_state, _parse, lambda t: "true", lambda text: {}),
    lab=LabSetup(daemons=_no_daemons, bootstrap=_no_bootstrap, prepare=_nothing, binaries={},
                 user=None, cli_port=None, spine=None),
    bfd=True,  # whatever the program does: bgpgen renders only the switch side
    default_originate=False,
    route_server=False,
    default_passive=Passive.NONE,
    drain=None,
    filters={},
    part=None,
)
