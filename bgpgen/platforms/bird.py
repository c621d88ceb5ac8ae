"""bird: a Kubernetes node whose BGP speaker is BIRD 2 (inventory: ``speaker: bird``).

Push: ``birdc configure check`` on an uploaded temporary file, then ``configure timeout`` (BIRD
undoes an unconfirmed change by itself, so a push cannot outlive a lost controller), then
``configure confirm``, at once or after the fabric's verify gate. Undo: ``configure undo`` and
the previous file back. BIRD has no JSON: its text is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..artifacts import Artifact
from ..changes import Action, Cost, DevicePlan, unified
from ..errors import Problem
from ..model import Device, Fabric, Passive, Platform, Role
from ..secrets import fill, redact
from ..state import DaemonError, DeviceState, Peer, RibEntry
from ..transport import RemoteError, Transport, check, copy, shell
from .base import (
    RUN_ID,
    Checker,
    Daemon,
    DeployFailed,
    FileSpec,
    DeviceFiles,
    LabSetup,
    Outcome,
    Paths,
    PlatformSpec,
    StateReader,
    Status,
    control_chars,
    escape_error,
    need,
    node_context,
    read_sessions,
    set_sessions,
    shown,
    wait_sessions,
)

if TYPE_CHECKING:
    from ..targets import Target

CONFIG = "bird.conf"
PREV = ".bgpgen-prev"
PATHS = Paths("/etc/bird/bird.conf", "/run/bird", "/etc/bird")
SECRET_LINE = re.compile(r'(password ")([^"]*)(";)')
#: bird runs as user bird (Debian's unit): root:bird 0640, readable by it and by no one else
CONFIG_FILE = FileSpec(CONFIG, "bird/bird.conf.j2", PATHS.config, mode=0o640, owner="root:bird")
SEP = "@@bgpgen@@"
_PROTO = re.compile(r"^protocol bgp (\w+) \{\n(.*?)^\}", re.S | re.M)
_ROUTE = re.compile(r"^(\S+)?\s+(\w+) \[(\w+) [^\]]*\]")
_SYM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --- escaping ----------------------------------------------------------------------------------

def bird_str(value: object) -> str:
    """A BIRD string: BIRD has no escapes, so quotes, backslashes and newlines are refused."""
    text = str(value)
    if any(c in text for c in '"\\') or control_chars(text):
        raise escape_error("a BIRD string", text)
    return f'"{text}"'


def bird_sym(value: object) -> str:
    """A BIRD symbol from a name: hyphens become underscores.

    >>> bird_sym("tor-r1-a_ipv4")
    'tor_r1_a_ipv4'
    """
    text = str(value).replace("-", "_")
    if not _SYM.fullmatch(text):
        raise escape_error("a BIRD symbol", value)
    return text


def _socket(t: Target) -> str:
    return f"{t.run}/bird.ctl"


def classify(old: str, new: str, plan: DevicePlan) -> None:
    set_sessions(plan, dict(_PROTO.findall(old)), dict(_PROTO.findall(new)))
    if plan.sessions_changed:
        plan.raise_cost(Cost.RESET, "BIRD restarts changed protocols: "
                        + ", ".join(plan.sessions_changed))
    if old != new:
        plan.raise_cost(Cost.HITLESS, "configure: statics and filters reload without a reset")


# --- reading state -----------------------------------------------------------------------------

def sessions_command(t: Target) -> str:
    return shell(["birdc", "-s", _socket(t), "show", "protocols", "all"])


def parse_sessions(output: str) -> dict[str, str]:
    """Peer address -> session state, from ``birdc show protocols all``.

    >>> parse_sessions('''BIRD 2.0.12 ready.
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
    state = None
    for line in output.splitlines():
        cols = line.split()
        if len(cols) >= 2 and cols[1] == "BGP":
            state = None
        elif line.strip().startswith("BGP state:"):
            state = line.split(":", 1)[1].strip()
        elif line.strip().startswith("Neighbor address:") and state is not None:
            peers[line.split(":", 1)[1].strip()] = state
    return peers


def state_command(t: Target, fabric: Fabric) -> str:
    b = ["birdc", "-s", _socket(t)]
    return f"{shell([*b, 'show', 'protocols', 'all'])}; echo {SEP}; " \
           f"{shell([*b, 'show', 'route', 'all'])}"


def parse_state(t: Target, output: str, now: float) -> DeviceState:
    parts = output.split(SEP + "\n")
    for part in parts:  # birdc greets before it answers: anything else is not its output
        if part.strip() and not part.lstrip().startswith("BIRD "):
            if "control socket" in part or "Unable to connect" in part:
                raise DaemonError(" ".join(part.split())[:200])
            raise ValueError("not birdc's output")
    view = DeviceState(t.name)
    proto_peer: dict[str, str] = {}
    counts: dict[str, dict[str, int]] = {}  # per protocol: hold, imported, exported
    name = None
    for line in parts[0].splitlines():
        cols = line.split()
        text = line.strip()
        if len(cols) >= 2 and cols[1] == "BGP":
            name = cols[0]
        elif name and text.startswith("Neighbor address:"):
            proto_peer[name] = text.split(":", 1)[1].strip()
        elif name and text.startswith("Hold timer:") and "/" in text:
            counts.setdefault(name, {})["hold"] = int(text.rsplit("/", 1)[1].split()[0])
        elif name and text.startswith("Routes:"):
            found = re.findall(r"(\d+) (imported|exported)", text)
            counts.setdefault(name, {}).update({k: int(v) for v, k in found})
    by_addr = {addr: counts.get(proto, {}) for proto, addr in proto_peer.items()}
    for addr, state in parse_sessions(parts[0]).items():
        c = by_addr.get(addr, {})
        view.peers[addr] = Peer(addr, state, None, c.get("hold"), c.get("imported"),
                                c.get("imported"), c.get("exported"))
    view.rib = _routes(parts[1] if len(parts) > 1 else "", proto_peer)
    return view


def _routes(text: str, proto_peer: Mapping[str, str]) -> list[RibEntry]:
    out: list[RibEntry] = []
    prefix = None
    entry: dict[str, str] | None = None

    def flush() -> None:
        if entry is not None:
            out.append(RibEntry(entry["prefix"], entry.get("nh", ""), entry["peer"],
                                entry.get("path", "")))
    for line in text.splitlines():
        m = _ROUTE.match(line)
        if m and (m.group(1) or prefix):
            flush()
            prefix = m.group(1) or prefix
            entry = {"prefix": prefix or "", "peer": proto_peer.get(m.group(3), "")}
        elif entry is not None and "BGP.next_hop:" in line:
            entry["nh"] = line.split(":", 1)[1].split()[0]
        elif entry is not None and "BGP.as_path:" in line:
            entry["path"] = line.split(":", 1)[1].strip()
    flush()
    return out


READ = StateReader(state_command, parse_state, sessions_command, parse_sessions)


# --- the push ----------------------------------------------------------------------------------

def _birdc(t: Transport, *args: str, what: str = "birdc") -> str:
    out = check(t, shell(["birdc", "-s", _socket(t.target), *args]), what)
    bad = [ln for ln in out.splitlines() if "rror" in ln or ln.startswith(("8", "9"))]
    if bad:
        raise DeployFailed(Problem("", t.target.name, f"{what}: {bad[-1].strip()}", ""))
    return out


class BirdDriver:
    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        target = t.target
        conf = need(files, CONFIG)
        p = DevicePlan(target.name, target.platform.value)
        current = t.read(target.config) or ""
        if current != fill(conf.text, values):
            text = shown(SECRET_LINE, current, values)
            p.diff = unified(text, conf.text, CONFIG)
            classify(text, conf.text, p)
            p.action = Action.UPDATE
        return p

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        target = t.target
        conf = need(files, CONFIG)
        before = read_sessions(t, READ)
        new = f"{target.config}.bgpgen-new-{RUN_ID}"
        t.write(new, fill(conf.text, values), CONFIG_FILE.mode, CONFIG_FILE.owner)
        try:
            _birdc(t, "configure", "check", f'"{new}"', what="birdc configure check")
        except RemoteError as exc:
            t.exec(f"rm -f {shell([new])}")
            raise DeployFailed(Problem("", target.name, redact(exc.problems[0].message, values),
                                       "")) from None
        copy(t, target.config, target.config + PREV)
        t.rename(new, target.config)
        try:
            # Unconfirmed, BIRD reverts by itself: a push cannot outlive a lost controller.
            undo_after = int(timeout) * (4 if p.defer_confirm else 1) + 30
            _birdc(t, "configure", f'"{target.config}"', "timeout", str(undo_after),
                   what="birdc configure timeout")
            wait_sessions(t, READ, before, timeout)
            if not p.defer_confirm:
                _birdc(t, "configure", "confirm", what="birdc configure confirm")
        except RemoteError as exc:
            t.exec(shell(["birdc", "-s", _socket(target), "configure", "undo"]))
            t.rename(target.config + PREV, target.config)
            raise DeployFailed(Problem("", target.name, f"{exc.problems[0].message}; configure "
                                       "undo restored the previous config", "")) from None
        return Outcome(Status.CHANGED, p.cost_detail)

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        if p.defer_confirm:
            _birdc(t, "configure", "confirm", what="birdc configure confirm")

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        target = t.target
        t.exec(shell(["birdc", "-s", _socket(target), "configure", "undo"]))
        if t.read(target.config + PREV) is not None:
            t.rename(target.config + PREV, target.config)


# --- the lab -----------------------------------------------------------------------------------

def daemons(device: Device) -> list[Daemon]:
    """bird as Debian's unit runs it: as user bird, its socket in /run/bird."""
    return [Daemon("bird", ("bird", "-f", "-u", "bird", "-g", "bird", "-c", PATHS.config, "-s",
                            f"{PATHS.run}/bird.ctl", "-P", f"{PATHS.run}/bird.pid"),
                   {"path": f"{PATHS.run}/bird.ctl"})]


def bootstrap(device: Device) -> str:
    return f"log stderr all;\nrouter id {device.router_id};\nprotocol device {{\n}}\n"


def prepare(device: Device, files: DeviceFiles,
            artifacts: Mapping[str, Artifact]) -> list[tuple[str, ...]]:
    return []


SPEC = PlatformSpec(
    platform=Platform.BIRD,
    role=Role.NODE,
    inventory_name="bird",
    description="a node speaking BGP with BIRD 2",
    files=(CONFIG_FILE,),
    context=node_context,
    checker=Checker(("bird", "-p", "-c", "{file}"), "bird", "bird2"),
    netmiko_device_type="linux",
    paths=PATHS,
    secret_line=SECRET_LINE,
    classify=classify,
    driver=BirdDriver(),
    state=READ,
    lab=LabSetup(daemons=daemons, bootstrap=bootstrap, prepare=prepare,
                 binaries={"bird": "bird2", "birdc": "bird2"}, user="bird", cli_port=None),
    bfd=True,
    default_originate=False,
    route_server=False,
    default_passive=Passive.NONE,
    drain=None,
    filters={"bird_str": bird_str, "bird_sym": bird_sym},
)
