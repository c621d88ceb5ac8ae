"""The platform contract: a platform is one module behind one registry.

A test-only platform (tests/fake_platform, "fakeos") is registered here and taken through the
same code paths as gobgp, BIRD and FRR: render (and the checker), an offline plan, a live plan
and a push through bgpgen's Nornir tasks, and verify, all against recorded device output. A
spec missing any hook cannot be built; a platform missing from the registry is an error, never
another platform's behaviour.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgpgen import load_fabric, render, write
from bgpgen.changes import Action, Cost
from bgpgen.check import check_build
from bgpgen.deploy import Transaction
from bgpgen.errors import BgpgenError
from bgpgen.fleet import TRANSPORT, live_plan, nornir_for, read_states
from bgpgen.model import Fabric, Node, Platform
from bgpgen.plan import against
from bgpgen.platforms import REGISTRY, spec
from bgpgen.platforms.base import PlatformSpec, Status
from bgpgen.state import DeviceState, Peer, RibEntry
from bgpgen.reach import Hop
from bgpgen.targets import Target
from bgpgen.verify import FindingKind, evaluate

from .conftest import EXAMPLES, ROOT
from .fake_platform import SPEC, TEMPLATES, FakePlatform, RecordedTransport, spec_kwargs

SWITCH = "tor-r1-a"
VALUE = "s3cret-value"  # the recorded device shows the password in clear


@pytest.fixture
def fake() -> Iterator[Fabric]:
    """dc1 with tor-r1-a on the fake platform, registered for the test only."""
    REGISTRY[FakePlatform.FAKE] = SPEC  # type: ignore[index]
    try:
        fabric = load_fabric(EXAMPLES["dc1"])
        switches = tuple(dataclasses.replace(s, platform=FakePlatform.FAKE)
                         if s.name == SWITCH else s for s in fabric.switches)
        yield dataclasses.replace(fabric, switches=switches)
    finally:
        del REGISTRY[FakePlatform.FAKE]  # type: ignore[arg-type]


def _target(fabric: Fabric) -> Target:
    paths = SPEC.paths
    ssh = Hop(SWITCH, "recorded.invalid", 22, "root", (), ())
    return Target(SWITCH, fabric.device(SWITCH).platform, ssh, (), False, paths.config,
                  paths.run, paths.confdir, 0)


def _recorded(fabric: Fabric, text: str, state: dict[str, object]) -> RecordedTransport:
    return RecordedTransport(_target(fabric), {
        "show running-config": text.replace("<secret:tor-md5>", VALUE),
        "show bgp all json": json.dumps(state), "configure replace": "",
        "commit confirm": "", "rollback 1": ""})


def _state(fabric: Fabric, drop: str = "") -> dict[str, object]:
    """What tor-r1-a would answer with every session up and every node's prefix in its RIB,
    but ``drop``."""
    peers = {str(s.node_address): {"state": "Established", "uptime": 30}
             for s in fabric.sessions_of(SWITCH)}
    routes = [{"prefix": str(r.prefix), "next_hop": str(r.next_hop),
               "from": next(str(s.node_address) for s in fabric.sessions_of(SWITCH)
                            if s.id == r.session)}
              for r in fabric.routes_seen_by(SWITCH) if str(r.prefix) != drop]
    return {"peers": peers, "routes": routes}


def _nornir(fabric: Fabric, device: RecordedTransport):  # type: ignore[no-untyped-def]
    nr = nornir_for([fabric.device(SWITCH)], {SWITCH: device.target}, 1)
    nr.inventory.hosts[SWITCH].data[TRANSPORT] = lambda host, target: device
    return nr


def test_render_and_check_through_the_registry(fake: Fabric, tmp_path: Path) -> None:
    build = render(fake, TEMPLATES)
    files = build.files_of(SWITCH)
    assert list(files) == ["fake.conf"]
    text = files["fake.conf"].text
    assert text.startswith("# fakeos config for tor-r1-a")
    for s in fake.sessions_of(SWITCH):
        assert f"peer {s.node_address} as {s.node_asn} hold " in text
    assert files["fake.conf"].secrets == ("tor-md5",)  # the template's secret() was recorded
    out = write(build, tmp_path / "build")
    report = check_build(build, out)
    mine = [r for r in report.results if r.device == SWITCH]
    assert [(r.checker, r.ok) for r in mine] == [("grep", True)]  # the fake's own checker


def test_offline_plan_uses_the_platforms_classifier(fake: Fabric, tmp_path: Path) -> None:
    build = render(fake, TEMPLATES)
    prev = write(build, tmp_path / "prev")
    text = (prev / SWITCH / "fake.conf").read_text()
    peer = str(fake.sessions_of(SWITCH)[0].node_address)
    (prev / SWITCH / "fake.conf").write_text(re.sub(rf"(peer {re.escape(peer)} .* hold )\d+",
                                                    r"\g<1>999", text))
    manifest = json.loads((prev / "manifest.json").read_text())
    manifest["devices"][SWITCH]["files"][0]["sha256"] = "0" * 64
    (prev / "manifest.json").write_text(json.dumps(manifest))
    plan = against(build, prev)
    mine = next(d for d in plan.devices if d.device == SWITCH)
    assert mine.action is Action.UPDATE and mine.platform == "fakeos"
    assert mine.sessions_changed == [peer] and mine.cost is Cost.RESET
    assert all(d.action is Action.NONE for d in plan.devices if d.device != SWITCH)


def test_live_plan_and_push_through_the_nornir_tasks(fake: Fabric) -> None:
    build = render(fake, TEMPLATES)
    values = {"tor-md5": VALUE}
    peer = str(fake.sessions_of(SWITCH)[1].node_address)
    running = re.sub(rf"(peer {re.escape(peer)} .* hold )\d+", r"\g<1>999",
                     build.files_of(SWITCH)["fake.conf"].text)
    device = _recorded(fake, running, _state(fake))
    nr = _nornir(fake, device)
    plan = live_plan(nr, build, values, "recorded")
    mine = plan.devices[0]
    assert mine.action is Action.UPDATE and mine.sessions_changed == [peer], mine
    assert not any(VALUE in line for line in mine.diff), "the device's password was masked"
    assert device.ran == ["show running-config"]
    tx = Transaction(nr, build, values)
    tx.plan = plan
    report = tx.apply()
    assert [(r.device, r.status) for r in report.results] == [(SWITCH, Status.CHANGED)]
    tx.confirm()
    assert device.ran[1:] == ["configure replace", "commit confirm"]


def test_verify_reads_the_platforms_state(fake: Fabric) -> None:
    build = render(fake, TEMPLATES)
    withdrawn = str(next(r.prefix for r in fake.routes_seen_by(SWITCH)))
    device = _recorded(fake, build.files_of(SWITCH)["fake.conf"].text,
                       _state(fake, drop=withdrawn))
    views = read_states(_nornir(fake, device), fake, {})
    assert device.ran == ["show bgp all json"]
    for s in fake.sessions_of(SWITCH):  # the nodes' ends, as a healthy node reports them
        node = fake.device(s.node)
        assert isinstance(node, Node)
        view = views.setdefault(s.node, DeviceState(s.node))
        view.peers[str(s.switch_address)] = Peer(str(s.switch_address), "Established", 30)
        view.rib += [RibEntry(str(r.prefix), str(r.next_hop), str(s.switch_address))
                     for r in fake.routes_seen_by(s.node)]
    report = evaluate(fake, views, {SWITCH})
    assert [(f.kind, f.device) for f in report.findings] == [(FindingKind.MISSING, SWITCH)]
    assert withdrawn in report.findings[0].message and report.exit == 3


@pytest.mark.parametrize("hook", [f.name for f in dataclasses.fields(PlatformSpec)])
def test_a_spec_without_a_hook_cannot_be_built(hook: str) -> None:
    kwargs = spec_kwargs()
    del kwargs[hook]
    with pytest.raises(TypeError, match=hook):
        PlatformSpec(**kwargs)


def test_an_unregistered_platform_is_an_error_not_a_fallback() -> None:
    fabric = load_fabric(EXAMPLES["dc1"])
    switches = tuple(dataclasses.replace(s, platform=FakePlatform.FAKE) if s.name == SWITCH
                     else s for s in fabric.switches)
    orphan = dataclasses.replace(fabric, switches=switches)
    with pytest.raises(BgpgenError, match="no platform module for"):
        render(orphan, TEMPLATES)
    with pytest.raises(BgpgenError, match="no platform module for"):
        spec(FakePlatform.FAKE)  # type: ignore[arg-type]


def test_every_platform_is_registered_and_complete() -> None:
    assert set(REGISTRY) == set(Platform)
    for platform, ps in REGISTRY.items():
        assert ps.platform is platform
        assert all(getattr(ps, f.name) is not None or f.name in ("drain", "part", "resources",
                                                                    "lab")
                   for f in dataclasses.fields(PlatformSpec)), platform


def test_no_platform_is_named_outside_its_module() -> None:
    """Code outside bgpgen/platforms/ asks the registry; it never names a platform member."""
    named = re.compile(r"Platform\.(" + "|".join(p.name for p in Platform) + r")\b")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "bgpgen").rglob("*.py"))
            if "platforms" not in p.parts
            for i, line in enumerate(p.read_text().splitlines(), 1) if named.search(line)]
    assert hits == []
