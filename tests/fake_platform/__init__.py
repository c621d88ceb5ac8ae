"""fakeos: a platform that exists only in the tests, registered by them in bgpgen's registry.

It is a whole platform module as a real one would be (template, context, checker, secret lines,
classifier, driver, state reader, lab setup), so the tests can push it through render, plan and
verify exactly as bgpgen pushes gobgp, BIRD and FRR, with recorded device output in place of a
device. Recordings: written by hand for this made-up OS (there is no real device to record).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bgpgen.artifacts import Artifact
from bgpgen.changes import Action, Cost, DevicePlan, unified
from bgpgen.lock import TARGET_LOCK
from bgpgen.model import Device, Fabric, Passive, Role
from bgpgen.platforms.base import (Checker, Daemon, DeviceFiles, FileSpec, LabSetup, Outcome,
                                   Paths, PlatformSpec, StateReader, Status, escape_error, need,
                                   shown, RUN_ID, Session)
from bgpgen.state import DeviceState, Peer, RibEntry
from bgpgen.targets import Target
from bgpgen.transport import CommandResult, Transport

TEMPLATES = Path(__file__).parent / "templates"
SECRET_LINE = re.compile(r"( key )(\S+)()")


class FakePlatform(StrEnum):
    FAKE = "fakeos"


def fake_word(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise escape_error("a fakeos word", text)
    return text


def context(fabric: Fabric, device: Device) -> dict[str, Any]:
    return {"sessions": fabric.sessions_of(device.name)}


def classify(old: str, new: str, plan: DevicePlan) -> None:
    peers = re.compile(r"^peer (\S+) (.*)$", re.M)
    o, n = dict(peers.findall(old)), dict(peers.findall(new))
    plan.sessions_added = sorted(set(n) - set(o))
    plan.sessions_removed = sorted(set(o) - set(n))
    plan.sessions_changed = sorted(k for k in set(o) & set(n) if o[k] != n[k])
    if plan.sessions_changed:
        plan.raise_cost(Cost.RESET, "changed peers reset")
    elif old != new:
        plan.raise_cost(Cost.HITLESS, "fakeos applies peers live")


def state_command(t: Target, fabric: Fabric) -> str:
    return "show bgp all json"


def parse_state(t: Target, output: str, now: float) -> DeviceState:
    data = json.loads(output)
    view = DeviceState(t.name)
    for addr, p in data["peers"].items():
        view.peers[addr] = Peer(addr, p["state"], p.get("uptime"))
    view.rib = [RibEntry(r["prefix"], r["next_hop"], r["from"]) for r in data["routes"]]
    return view


def parse_sessions(output: str) -> dict[str, str]:
    return {a: p["state"] for a, p in json.loads(output)["peers"].items()}


class FakeDriver:
    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        conf = need(files, "fake.conf")
        running = shown(SECRET_LINE, t.exec("show running-config").stdout, values)
        p = DevicePlan(t.target.name, str(t.target.platform))
        if running != conf.text:
            p.diff = unified(running, conf.text, "fake.conf")
            classify(running, conf.text, p)
            p.action = Action.UPDATE
        return p

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        t.exec("configure replace", stdin=files["fake.conf"].text)
        return Outcome(Status.CHANGED, p.cost_detail)

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        t.exec("commit confirm")

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        t.exec("rollback 1")


def _no_daemons(device: Device) -> list[Daemon]:
    return []


def _bootstrap(device: Device) -> str:
    return f"router {device.asn} id {device.router_id}\n"


def _prepare(device: Device, files: DeviceFiles,
             artifacts: Mapping[str, Artifact]) -> list[tuple[str, ...]]:
    return []


def spec_kwargs() -> dict[str, Any]:
    """Every hook of the fake platform, by PlatformSpec field name."""
    return dict(
        platform=FakePlatform.FAKE, role=Role.SWITCH, inventory_name="fakeos",
        description="a test-only switch OS", configured=True,
        files=(FileSpec("fake.conf", "fakeos/fake.conf.j2", "/etc/fake/fake.conf"),),
        context=context,
        checker=Checker(("grep", "-q", "^router ", "{file}"), "grep", "grep"),
        netmiko_device_type="linux",
        session=Session.SHELL,
        paths=Paths("/etc/fake/fake.conf", "/run/fake", "/etc/fake"),
        secret_line=SECRET_LINE, classify=classify, driver=FakeDriver(),
        state=StateReader(state_command, parse_state, lambda t: "show bgp all json",
                          parse_sessions),
        lab=LabSetup(daemons=_no_daemons, bootstrap=_bootstrap, prepare=_prepare,
                     binaries={}, user=None, cli_port=None, spine=None),
        bfd=False, default_originate=False, route_server=False,
        default_passive=Passive.NONE, drain=None, filters={"fake_word": fake_word},
        part=None, resources=None)


SPEC = PlatformSpec(**spec_kwargs())


@dataclass
class RecordedTransport:
    """A device that answers from recordings: command -> output. Records what was run."""

    target: Target
    answers: dict[str, str]
    ran: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def exec(self, command: str, timeout: float | None = None,
             stdin: str | None = None) -> CommandResult:
        argv = shlex.split(command)
        if argv[:1] == ["timeout"] and argv[2:4] == ["sh", "-c"]:  # as the shell would run it
            command = argv[4]
        if TARGET_LOCK in command:  # bgpgen's device lock, kept as the device would
            if "set -C" in command:
                if TARGET_LOCK in self.files:
                    return CommandResult(3, self.files[TARGET_LOCK])
                self.files[TARGET_LOCK] = stdin or ""
            elif RUN_ID in self.files.get(TARGET_LOCK, ""):
                del self.files[TARGET_LOCK]
            return CommandResult(0, "")
        self.ran.append(command)
        if command in self.answers:
            return CommandResult(0, self.answers[command])
        return CommandResult(127, "", f"{command}: not recorded")

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def write(self, path: str, text: str, mode: int = 0o600, owner: str | None = None) -> None:
        self.files[path] = text

    def rename(self, src: str, dst: str) -> None:
        self.files[dst] = self.files.pop(src)
