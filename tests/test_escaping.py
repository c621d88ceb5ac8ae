"""Injection attempts against every target syntax. Validation refuses such values first (see the
corpus); these tests bypass validation to prove the templates' filters hold on their own: a value
is either escaped (and the output parses back to exactly that value) or refused."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from bgpgen import load_fabric, render
from bgpgen.errors import RenderError
from bgpgen.model import Fabric, Platform

from .conftest import EXAMPLES

EVIL = ['x"]\n[global.config]\n  as = 1', 'say "hi"', "back\\slash", "new\nline", "tab\there"]


def _with_description(fabric: Fabric, text: str) -> Fabric:
    sessions = tuple(dataclasses.replace(s, description=text) for s in fabric.sessions)
    return dataclasses.replace(fabric, sessions=sessions)


def _artifact(fabric: Fabric, platform: Platform) -> str:
    device = next(d for d in fabric.devices if d.platform is platform)
    build = render(fabric, devices={device.name})
    return next(a.text for a in build.artifacts if a.device == device.name
                and a.name.endswith((".toml", ".conf")))


@pytest.mark.parametrize("text", EVIL)
@pytest.mark.parametrize("platform,example", [(Platform.GOBGP, "dc1"),
                                              (Platform.GOBGP_RS, "local-rs")])
def test_toml_targets_escape(text: str, platform: Platform, example: str) -> None:
    fabric = _with_description(load_fabric(EXAMPLES[example]), text)
    data = tomllib.loads(_artifact(fabric, platform))
    assert [n["config"]["description"] for n in data["neighbors"]] == [text] * len(data["neighbors"])
    assert data["global"]["config"]["as"] != 1  # nothing was injected into [global]


@pytest.mark.parametrize("text", EVIL)
@pytest.mark.parametrize("platform", [Platform.BIRD, Platform.FRR])
def test_line_targets_refuse(text: str, platform: Platform) -> None:
    fabric = _with_description(load_fabric(EXAMPLES["dc1"]), text)
    if platform is Platform.FRR and not any(c in text for c in "\n\t"):
        # FRR descriptions run to the end of the line: quotes and backslashes are plain text.
        conf = _artifact(fabric, platform)
        assert f" description {text}\n" in conf
        return
    with pytest.raises(RenderError) as info:
        _artifact(fabric, platform)
    assert "cannot be written as" in str(info.value)


@pytest.mark.parametrize("name", ['a"b', "a b", "a\nb", "../../etc"])
def test_names_cannot_escape_symbols(name: str) -> None:
    fabric = load_fabric(EXAMPLES["dc1"])
    sessions = tuple(dataclasses.replace(s, switch=name) if s.node == "node-r1-02" else s
                     for s in fabric.sessions)
    evil = dataclasses.replace(fabric, sessions=sessions)
    with pytest.raises(RenderError):
        _artifact(evil, Platform.BIRD)


def test_bird_protocol_text_is_parsed() -> None:
    """The BIRD parser on text as birdc 2.0.12 prints it (no JSON in BIRD)."""
    from bgpgen.platforms import spec
    from bgpgen.platforms.bird import SEP
    from bgpgen.reach import Hop
    from bgpgen.targets import Target
    t = Target("n", Platform.BIRD, Hop("n", "h", 22, "root", (), ()), (), False, "/c", "/r", "/",
               0)
    protocols = """BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
tor_a_ipv4 BGP        ---        up     11:39:06.591  Established
  BGP state:          Established
    Neighbor address: 198.18.11.1
    Hold timer:       7.575/9
  Channel ipv4
    Routes:         1 imported, 2 exported, 1 preferred
tor_b_ipv4 BGP        ---        start  11:39:06.591  Active
  BGP state:          Active
    Neighbor address: 198.18.12.1
"""
    routes = """BIRD 2.0.12 ready.
Table master4:
0.0.0.0/0            unicast [tor_a_ipv4 11:39:07.000] * (100) [AS65101i]
\tvia 198.18.11.1 on fab0
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65101
\tBGP.next_hop: 198.18.11.1
10.244.2.0/24        blackhole [bgpgen_own_ipv4 11:39:06.000] * (200)
\tType: static univ
"""
    view = spec(Platform.BIRD).state.parse(t, protocols + SEP + "\n" + routes, 0.0)
    assert view.peers["198.18.11.1"].state == "Established"
    assert (view.peers["198.18.11.1"].hold, view.peers["198.18.11.1"].received,
            view.peers["198.18.11.1"].sent) == (9, 1, 2)
    assert view.peers["198.18.12.1"].state == "Active"
    assert [(e.prefix, e.next_hop, e.peer, e.as_path) for e in view.rib] == [
        ("0.0.0.0/0", "198.18.11.1", "198.18.11.1", "65101"), ("10.244.2.0/24", "", "", "")]


@pytest.mark.parametrize("doc", [
    {"device": "n1", "originate": []},
    {"device": "n1", "originate": [{"family": "ipv4", "prefix": "10.0.0.0/24",
                                    "next_hop": "10.1.1.1"},
                                   {"family": "ipv6", "prefix": "2001:db8::/64"}]},
    {"device": 'odd "name"\\é', "originate": [{"family": "ipv4", "prefix": "x\ny"}]},
])
def test_originate_json_is_what_the_standard_library_writes(doc: dict[str, object]) -> None:
    """gobgp nodes' originate.json is written out by hand (json.dumps with an indent encodes in
    Python): byte for byte the standard library's."""
    import json

    from bgpgen.platforms.gobgpd import _indented
    assert _indented(doc) == json.dumps(doc, indent=1) + "\n"
