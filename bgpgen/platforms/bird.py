"""bird: a Kubernetes node whose BGP speaker is BIRD 2 (inventory: ``speaker: bird``).

Push: ``birdc configure check`` on an uploaded temporary file, then ``configure timeout`` (BIRD
undoes an unconfirmed change by itself, so a push cannot outlive a lost controller), then
``configure confirm``, at once or after the fabric's verify gate. Undo: ``configure undo`` and
the previous file back. BIRD has no JSON: its text is parsed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..artifacts import Artifact
from ..changes import Action, Cost, DevicePlan, unified
from ..errors import Problem
from ..model import Device, Fabric, Passive, Platform, Role
from ..secrets import fill, redact
from ..state import DaemonError, DeviceState, Peer, RibEntry
from ..transport import RemoteError, Transport, check, shell
from .base import (
    Session,
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
    persist,
    proceed,
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
#: the constant every rendered config defines: ``birdc eval`` says which config BIRD runs
MARK = "bgpgen_config"
_MARK_LINE = re.compile(rf'^define {MARK} = "([0-9a-f]+)";$', re.M)


def stamp(text: str) -> str:
    """The rendered config with its mark: a digest of the rest of it (secrets as tokens)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    head, sep, rest = text.partition("\n\n")
    line = (f"# Which config BIRD runs: birdc eval {MARK}\n"
            f'define {MARK} = "{digest}";\n')
    return f"{head}\n\n{line}\n{rest}" if sep else line + text


def mark_of(text: str | None) -> str | None:
    """The mark of a config file's text (None: not a file bgpgen wrote)."""
    m = _MARK_LINE.search(text or "")
    return m.group(1) if m else None


#: bird runs as user bird (Debian's unit): root:bird 0640, readable by it and by no one else
CONFIG_FILE = FileSpec(CONFIG, "bird/bird.conf.j2", PATHS.config, mode=0o640, owner="root:bird",
                       stamp=stamp)
SEP = "@@bgpgen@@"
CONFIG_MARK = "@@bgpgen-config@@"
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
    # first the file's mark line (never a secret), last the mark and time of what runs: the
    # exit code is birdc's
    return f"echo {CONFIG_MARK}; grep -m1 {shell([f'^define {MARK} '])} -- {shell([t.config])}; " \
           f"echo {SEP}; {shell([*b, 'show', 'protocols', 'all'])}; echo {SEP}; " \
           f"{shell([*b, 'show', 'route', 'all'])}; echo {SEP}; " \
           f"{shell([*b, 'eval', MARK])}; {shell([*b, 'show', 'status'])}"


def _running_mark(text: str) -> tuple[str | None, str]:
    """(mark of the config BIRD runs, when it was loaded) from ``eval`` + ``show status``."""
    lines = [ln.strip() for ln in text.splitlines()]
    mark = next((ln for ln in lines[1:2] if re.fullmatch(r"[0-9a-f]+", ln)), None)
    since = next((ln.split(" on ", 1)[1] for ln in lines
                  if ln.startswith("Last reconfiguration on ")), "")
    return mark, since


def apart(file_mark: str | None, running: str | None, since: str) -> str:
    """What is apart between the file and what BIRD runs ('' when they agree or when the
    file is not bgpgen's)."""
    if file_mark is None or file_mark == running:
        return ""
    return (f"{CONFIG} is {file_mark}, BIRD runs " + (running or "a config without bgpgen's mark")
            + (f" since {since}" if since else ""))


def parse_state(t: Target, output: str, now: float) -> DeviceState:
    parts = output.split(SEP + "\n")
    file_part = parts.pop(0) if parts and parts[0].startswith(CONFIG_MARK) else None
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
    if file_part is not None and len(parts) > 2:
        view.drift_detail = apart(mark_of(file_part), *_running_mark(parts[2]))
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

_NEXT = "--bgpgen-next--"


def _birdc(t: Transport, *args: str, what: str = "birdc", then: str = "") -> str:
    """One birdc command; its output. ``then``: shell run in the same round trip once it
    succeeded, its output after a line ``--bgpgen-next--`` (not judged here)."""
    command = shell(["birdc", "-s", _socket(t.target), *args])
    if then:
        command += f" && {{ echo {_NEXT}; {then}; }}"
    out = check(t, command, what)
    said = out.partition(_NEXT + "\n")[0]
    bad = [ln for ln in said.splitlines() if "rror" in ln or ln.startswith(("8", "9"))]
    if bad:
        raise DeployFailed(Problem("", t.target.name, f"{what}: {bad[-1].strip()}", ""))
    return out


def _status(t: Target) -> str:
    """Shell: what BIRD runs (the mark of its config) and since when."""
    return (shell(["birdc", "-s", _socket(t), "eval", MARK]) + "; "
            + shell(["birdc", "-s", _socket(t), "show", "status"]))


def _running(t: Transport, said: str | None = None) -> tuple[str | None, str]:
    """The running config's mark and its time (``said``: :func:`_status`'s output, when it
    came with another command)."""
    if said is None:
        res = t.exec(_status(t.target))
        said, got = (res.stdout if res.ok else ""), res.output.strip() or f"exit {res.rc}"
    else:
        got = said.strip() or "no output"
    if not said.startswith("BIRD "):
        raise RemoteError(Problem("", t.target.name, f"birdc does not answer: {got[:160]}", ""))
    return _running_mark(said)


def _then_read_back(t: Transport, *args: str, what: str, text: str) -> None:
    """A birdc command, then in the same round trip the read back of ``text``."""
    out = _birdc(t, *args, what=what, then=_status(t.target))
    _read_back(t, text, out.partition(_NEXT + "\n")[2])


def _read_back(t: Transport, text: str, said: str | None = None) -> None:
    """BIRD runs ``text`` (by its mark), or RemoteError."""
    want = mark_of(text)
    mark, since = _running(t, said)
    if want is not None and mark != want:
        raise RemoteError(Problem("", t.target.name, "read back: " + apart(want, mark, since),
                                  ""))


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
        gap = apart(mark_of(current), *_running(t))  # the file is right: is it what runs?
        if gap:
            p.extra["drift"] = gap
            p.diff = [f"~ BIRD runs another config than its file: {gap}"]
            p.raise_cost(Cost.RESET, "file and daemon apart: configure loads the file, "
                         "protocols that differ restart")
            p.action = Action.UPDATE
        return p

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        target = t.target
        text = fill(need(files, CONFIG).text, values)
        before = read_sessions(t, READ)
        new: str | None = None
        if not p.extra.get("drift"):
            new = f"{target.config}.bgpgen-new-{RUN_ID}"
            t.write(new, text, CONFIG_FILE.mode, CONFIG_FILE.owner)
            try:  # checked, and the running file kept, in one round trip
                _birdc(t, "configure", "check", f'"{new}"', what="birdc configure check",
                       then=shell(["cp", "-p", "--", target.config, target.config + PREV]))
                proceed(t, p)
            except RemoteError as exc:
                t.exec(f"rm -f {shell([new])}")
                if isinstance(exc, DeployFailed):
                    raise
                raise DeployFailed(Problem("", target.name,
                                           redact(exc.problems[0].message, values), "")) from None
            p.extra["activated"] = True
        else:
            proceed(t, p)
            p.extra["activated"] = True
        try:
            if new is not None:  # a rename lost on the way may still have happened: restored
                t.rename(new, target.config)
            # Unconfirmed, BIRD reverts by itself: a push cannot outlive a lost controller.
            undo_after = int(timeout) * (4 if p.defer_confirm else 1) + 30
            _then_read_back(t, "configure", f'"{target.config}"', "timeout", str(undo_after),
                            what="birdc configure timeout", text=text)
            wait_sessions(t, READ, before, timeout)
            if not p.defer_confirm:
                self._confirm(t, text)
        except RemoteError as exc:
            message = redact(exc.problems[0].message, values)
            self._restore(t, timeout, had_prev=not p.extra.get("drift"), leftover=new)
            raise DeployFailed(Problem("", target.name, f"{message}; the previous config is "
                                       "back in its file and running", "")) from None
        return Outcome(Status.CHANGED, p.cost_detail)

    def _confirm(self, t: Transport, text: str) -> None:
        _then_read_back(t, "configure", "confirm", what="birdc configure confirm", text=text)

    def _restore(self, t: Transport, timeout: float, had_prev: bool = True,
                 leftover: str | None = None) -> None:
        """The previous file back, and BIRD on it (a plain configure also cancels a pending
        undo); retried while BIRD or the session stalls, then read back. ``leftover``: a new
        file that may not have been renamed, removed."""
        target = t.target

        def step() -> None:
            if leftover is not None:
                check(t, f"rm -f -- {shell([leftover])}", "removing the new file")
            if had_prev and t.read(target.config + PREV) is not None:
                t.rename(target.config + PREV, target.config)
            _birdc(t, "configure", f'"{target.config}"', what="birdc configure")
            _read_back(t, t.read(target.config) or "")
        persist(t, "putting the previous config back", step, timeout)

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        if p.defer_confirm:
            text = t.read(t.target.config) or ""
            try:
                persist(t, "configure confirm", lambda: self._confirm(t, text), 30)
            except RemoteError as exc:  # unconfirmed, BIRD would undo: file and daemon apart
                self._restore(t, 60, had_prev=not p.extra.get("drift"))
                raise DeployFailed(Problem("", t.target.name, f"{exc.problems[0].message}; "
                                           "the previous config is back", "")) from None

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        self._restore(t, timeout, had_prev=not p.extra.get("drift"))


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
    configured=True,
    files=(CONFIG_FILE,),
    context=node_context,
    checker=Checker(("bird", "-p", "-c", "{file}"), "bird", "bird2"),
    netmiko_device_type="linux",
    paths=PATHS,
    secret_line=SECRET_LINE,
    classify=classify,
    driver=BirdDriver(),
    state=READ,
    session=Session.SHELL,
    lab=LabSetup(daemons=daemons, bootstrap=bootstrap, prepare=prepare,
                 binaries={"bird": "bird2", "birdc": "bird2"}, user="bird", cli_port=None,
                 spine=None),
    bfd=True,
    default_originate=False,
    route_server=False,
    default_passive=Passive.NONE,
    drain=None,
    filters={"bird_str": bird_str, "bird_sym": bird_sym},
    part=None,
    resources=None,
)
