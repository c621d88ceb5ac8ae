"""Reading BGP state from each daemon: the command per platform and a parser for its output.

Used over SSH by deploy (and verify), and inside lab namespaces by ``bgpgen lab status``.
BIRD has no JSON, so its text is parsed; gobgp's JSON prints passwords, so nothing here keeps
the raw output.
"""

from __future__ import annotations

import json
import shlex

from .model import Platform

ESTABLISHED = "Established"
_GOBGP_STATES = {1: "Idle", 2: "Connect", 3: "Active", 4: "OpenSent", 5: "OpenConfirm",
                 6: ESTABLISHED}


def sessions_command(platform: Platform, api_port: int, run: str) -> list[str]:
    if platform in (Platform.GOBGP, Platform.GOBGP_RS):
        return ["gobgp", "-p", str(api_port), "-j", "neighbor"]
    if platform is Platform.BIRD:
        return ["birdc", "-s", f"{run}/bird.ctl", "show", "protocols", "all"]
    return ["vtysh", "--vty_socket", run, "-c", "show bgp summary json"]


def shell(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def gobgp_state(neighbor: dict[str, object]) -> str:
    """The session state of one entry of ``gobgp -j neighbor`` (an int there; 6 = up)."""
    state = neighbor.get("state", {})
    code = state.get("session_state", 0) if isinstance(state, dict) else 0
    return _GOBGP_STATES.get(code, str(code))


def parse_sessions(platform: Platform, output: str) -> dict[str, str]:
    """Peer address -> session state, from the output of :func:`sessions_command`.

    >>> parse_sessions(Platform.BIRD, '''BIRD 2.0.12 ready.
    ... Name       Proto      Table      State  Since         Info
    ... tor_a_ipv4 BGP        ---        up     11:39:06.591  Established
    ...   BGP state:          Established
    ...     Neighbor address: 198.18.11.1
    ... tor_b_ipv4 BGP        ---        start  11:39:06.591  Active        Socket: Connection refused
    ...   BGP state:          Active
    ...     Neighbor address: 198.18.12.1''')
    {'198.18.11.1': 'Established', '198.18.12.1': 'Active'}
    """
    peers: dict[str, str] = {}
    if platform in (Platform.GOBGP, Platform.GOBGP_RS):
        for n in json.loads(output or "[]") or []:
            peers[n["conf"]["neighbor_address"]] = gobgp_state(n)
    elif platform is Platform.BIRD:
        state = None
        for line in output.splitlines():
            cols = line.split()
            if len(cols) >= 2 and cols[1] == "BGP":
                state = None
            elif line.strip().startswith("BGP state:"):
                state = line.split(":", 1)[1].strip()
            elif line.strip().startswith("Neighbor address:") and state is not None:
                peers[line.split(":", 1)[1].strip()] = state
    else:
        data = json.loads(output or "{}")
        for af in data.values():
            for peer, v in (af.get("peers") or {}).items() if isinstance(af, dict) else ():
                peers[peer] = v.get("state", "?")
    return peers
