"""junos: a ToR switch running Juniper Junos (QFX) (inventory: a switch with ``platform: junos``).

Render: bgpgen's part of the switch as ``set`` statements, the way ``show configuration |
display set`` prints them: per-node prefix-lists and import policies (``prefix-list-filter ...
exact``), a BGP group per profile and family (``accepted-prefix-limit``: counted after the
import policy; ``multipath multiple-as`` for anycast VIPs), hold time (Junos derives the
keepalive: a third of it), authentication keys, BFD, graceful restart.

Plan: ``show configuration | display set`` over the CLI session; the aimed config is the running
one with bgpgen's part replaced (its ``set`` lines: the BGPGEN-* policy objects and its groups);
the commands are hier_config's Junos remediation (``delete`` then ``set``), with a ``delete`` of
a whole neighbor, group, prefix-list or policy where nothing of it stays. Junos shows an
authentication key back as ``$9$``: the running key is decrypted (the ``$9$`` scheme is public)
and compared with the rendered one, so an unchanged key is no change, and it is never shown.

Push, Junos's own safety net: ``configure exclusive`` (refused while another user holds the
database: a device locked by another controller is a one-line failure), the commands, ``commit
check`` (a rejected config is thrown away: ``rollback 0``, nothing changed), ``commit confirmed
N``, the config read back and the sessions awaited; confirmed with ``commit`` after the fabric's
verify gate, or ``rollback 1`` and ``commit`` when the gate fails. A controller that dies leaves
Junos to roll back by itself when the N minutes run out.

State: ``show bgp summary`` (parsed with ntc-templates' TextFSM template) and ``show route
protocol bgp | display json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any


from ..artifacts import Artifact
from ..changes import Action, Cost, DevicePlan
from ..errors import Problem
from ..model import Fabric, Manage, Passive, Platform, Role
from ..netos import CliError, as_cli, parse_table
from ..secrets import fill, redact
from ..state import DeviceState, Peer, RibEntry
from ..transport import RemoteError, Transport
from . import frr, ownership
from .base import (
    Checker,
    DeployFailed,
    FileSpec,
    Outcome,
    Paths,
    PlatformSpec,
    Session,
    StateReader,
    Status,
    control_chars,
    escape_error,
    need,
    proceed,
    read_sessions,
    wait_sessions,
)

if TYPE_CHECKING:
    from ..targets import Target

CONFIG = "junos.set"
PATHS = Paths("configuration", "", "")
SECRET_LINE = re.compile(r'(authentication-key ")([^"]+)(")')
#: minutes a commit stays unconfirmed before Junos rolls it back by itself
CONFIRM_MINUTES = 10
SYNTAX = ownership.Syntax(closers=frozenset(), comment="#", skip=("{master", "{backup"),
                          close={}, default_close="")
OWN = (
    ownership.Own((r"set policy-options (?:prefix-list|policy-statement) BGPGEN-\S+(?: .*)?",)),
    ownership.Own((r"set protocols bgp group (?:{groups})(?: .*)?",)),
)
MANAGE_LINE = re.compile(r"^# bgpgen manage: (\S+)$", re.M)


# --- escaping ----------------------------------------------------------------------------------

def junos_string(value: object) -> str:
    """A Junos value: bare when it is one word, quoted otherwise (as Junos prints it)."""
    text = str(value).strip()
    if not text or control_chars(text) or '"' in text or "\\" in text:
        raise escape_error("a Junos string", text)
    return f'"{text}"' if any(c.isspace() or c in ";{}#" for c in text) else text


def junos_secret(value: object) -> str:
    """An authentication key inside double quotes."""
    text = str(value)
    if not text or control_chars(text) or '"' in text or "\\" in text:
        raise escape_error("a Junos authentication key", text)
    return text


# --- $9$ ---------------------------------------------------------------------------------------
# Junos "encrypts" secrets reversibly: a salt character says how many random characters follow,
# then each clear character is a few characters whose distances in a fixed alphabet, weighted by
# a repeating pattern, add up to its code (Kevin Brintnall's Crypt::Juniper describes it).

_FAMILY = ("QzF3n6/9CAtpu0O", "B1IREhcSyrleKvMW8LXx", "7N-dVbwsY2g4oaJZGUDj", "iHkq.mPf5T")
_EXTRA = {c: 3 - i for i, fam in enumerate(_FAMILY) for c in fam}
_ALPHABET = "".join(_FAMILY)
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_WEIGHTS = ((1, 4, 32), (1, 16, 32), (1, 8, 32), (1, 64), (1, 32), (1, 4, 16, 128), (1, 32, 64))


def decrypt9(text: str) -> str | None:
    """The clear text of a ``$9$`` secret, None when it is not one."""
    if not text.startswith("$9$") or len(text) < 5:
        return None
    chars = text[3:]
    try:
        prev = chars[0]
        rest = chars[1 + _EXTRA[prev]:]
        out = ""
        while rest:
            weights = _WEIGHTS[len(out) % len(_WEIGHTS)]
            group, rest = rest[:len(weights)], rest[len(weights):]
            if len(group) < len(weights):
                return None
            num = 0
            for c, w in zip(group, weights):
                num += ((_INDEX[c] - _INDEX[prev]) % len(_ALPHABET) - 1) * w
                prev = c
            out += chr(num % 256)
    except KeyError:
        return None
    return out


def encrypt9(clear: str, salt: str = "a", pad: str = "") -> str:
    """A ``$9$`` text for ``clear`` (salt and padding given: deterministic, for tests and for
    what a stand-in switch shows)."""
    pad = (pad or _ALPHABET[0] * 3)[:_EXTRA[salt]]
    out, prev = "$9$" + salt + pad, salt
    for i, ch in enumerate(clear):
        code, gaps = ord(ch), list[int]()
        for w in reversed(_WEIGHTS[i % len(_WEIGHTS)]):
            gaps.insert(0, code // w)
            code %= w
        for gap in gaps:
            prev = _ALPHABET[(gap + _INDEX[prev] + 1) % len(_ALPHABET)]
            out += prev
    return out


_KEY = re.compile(r'^(set protocols bgp group \S+ authentication-key )"([^"]*)"$', re.M)


def normalised(running: str, rendered: str) -> str:
    """The running config with each ``$9$`` key that decrypts to the rendered key written as
    the rendered one: an unchanged key is no change. Any other key stays as it is."""
    want = {m.group(1): m.group(2) for m in _KEY.finditer(rendered)}

    def sub(m: re.Match[str]) -> str:
        clear = decrypt9(m.group(2))
        return f'{m.group(1)}"{want[m.group(1)]}"' if clear is not None and \
            want.get(m.group(1)) == clear else m.group(0)
    return _KEY.sub(sub, running)


def masked(text: str, values: Mapping[str, str]) -> str:
    """Junos text fit to show: a key (clear or ``$9$``) of a known secret as its token, any
    other as ``<secret:changed>``."""
    by_value = {v: k for k, v in values.items()}

    def sub(m: re.Match[str]) -> str:
        clear = decrypt9(m.group(2)) if m.group(2).startswith("$9$") else m.group(2)
        return f'{m.group(1)}<secret:{by_value.get(clear or "", "changed")}>{m.group(3)}'
    return SECRET_LINE.sub(sub, text)


# --- bgpgen's part -----------------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines()
            if ln.strip().startswith(("set ", "delete ", "deactivate "))]


def _groups(rendered: list[str], running: list[str]) -> set[str]:
    """The BGP groups bgpgen renders, and those it made (their description says so)."""
    groups = {ln.split()[4] for ln in rendered if ln.startswith("set protocols bgp group ")}
    groups |= {ln.split()[4] for ln in running if ln.startswith("set protocols bgp group ")
               and ln.endswith('description "bgpgen peer group"')}
    return groups


def _routing(lines: list[str], what: str) -> str | None:
    return next((ln.split()[-1] for ln in lines if ln.startswith(f"set routing-options {what} ")),
                None)


def part_target(name: str, running: str, intended: str) -> str:
    """The running config with bgpgen's part replaced by the rendered one. Refuses (one line)
    a switch whose autonomous system or router-id is not the inventory's."""
    have, want = _lines(running), _lines(intended)
    for what, key in (("autonomous-system", "asn"), ("router-id", "router_id")):
        theirs, mine = _routing(have, what), _routing(want, what)
        if theirs is None and what == "autonomous-system":
            raise DeployFailed(Problem("", name, f"{name} has no routing-options "
                                       "autonomous-system: bgpgen adds its part to the "
                                       "switch's own BGP", f"set routing-options "
                                       f"autonomous-system {mine} on {name}"))
        if theirs is not None and mine is not None and theirs != mine:
            raise DeployFailed(Problem("", name, f"{name} runs routing-options {what} "
                                       f"{theirs}, the inventory says {mine}: bgpgen does not "
                                       "rewrite a switch's own BGP",
                                       f"fix {name}'s {key} in the inventory, or the switch"))
    rules = ownership.compile_rules(OWN, {"groups": "|".join(
        re.escape(g) for g in sorted(_groups(want, have)))})
    keep = [ln for ln in have if not ownership.owned((ln,), rules)]
    add = [ln for ln in want if ownership.owned((ln,), rules)]
    return "\n".join(keep + add) + "\n"


def aim_of(name: str, rendered: str, running: str) -> str:
    m = MANAGE_LINE.search(rendered)
    if m and Manage(m.group(1)) is Manage.WHOLE:
        return "\n".join(_lines(rendered)) + "\n"
    return part_target(name, running, rendered)


#: statements whose whole subtree goes when nothing of it stays
_CONTAINERS = (re.compile(r"^(protocols bgp group \S+ neighbor \S+)"),
               re.compile(r"^(protocols bgp group \S+)"),
               re.compile(r"^(policy-options prefix-list \S+)"),
               re.compile(r"^(policy-options policy-statement \S+ term \S+)"),
               re.compile(r"^(policy-options policy-statement \S+)"))


def remediation(running: str, aim: str) -> list[str]:
    """``delete`` and ``set`` commands that turn ``running`` into ``aim`` (hier_config's Junos
    driver), a whole neighbor, group, prefix-list or policy deleted at once where nothing of it
    stays (Junos keeps an emptied neighbor otherwise)."""
    commands = [c.strip() for c in ownership.hc_remediation("JUNIPER_JUNOS", running, aim, False)]
    kept = [ln.removeprefix("set ") for ln in _lines(aim)]
    paths: dict[str, None] = {}  # in order, once each
    for c in (c for c in commands if c.startswith("delete ")):
        path = c.removeprefix("delete ")
        for pat in reversed(_CONTAINERS):  # the largest container nothing of which stays
            m = pat.match(path)
            if m and not any(k == m.group(1) or k.startswith(m.group(1) + " ") for k in kept):
                path = m.group(1)
                break
        paths[path] = None
    deletes = [f"delete {p}" for p in paths
               if not any(p.startswith(o + " ") for o in paths)]  # under another: gone with it
    return deletes + [c for c in commands if not c.startswith("delete ")]


def classify(commands: list[str], plan: DevicePlan) -> None:
    nbr = re.compile(r"^(?:set|delete) protocols bgp group (\S+)(?: neighbor (\S+))?(?: (.*))?$")
    added: set[str] = set()
    removed: set[str] = set()
    changed: set[str] = set()
    groups: set[str] = set()
    for c in commands:
        m = nbr.match(c)
        if not m:
            continue
        group, peer, rest = m.group(1), m.group(2), m.group(3) or ""
        if peer and rest.startswith("peer-as"):
            (added if c.startswith("set ") else removed).add(peer)
        elif peer and not rest and c.startswith("delete "):
            removed.add(peer)
        elif peer and rest.startswith(("authentication-key", "hold-time", "passive")):
            changed.add(peer)
        elif not peer and rest.startswith(("authentication-key", "hold-time", "type",
                                           "multihop", "family")):
            groups.add(group)
    plan.sessions_added = sorted(added - removed)
    plan.sessions_removed = sorted(removed - added)
    plan.sessions_changed = sorted(changed - added - removed)
    if plan.sessions_changed or groups:
        plan.raise_cost(Cost.RESET, "these sessions reset: "
                        + ", ".join(plan.sessions_changed or sorted(groups)))
    if any("policy-options" in c or " import " in c for c in commands):
        plan.raise_cost(Cost.SOFT, "import policy re-evaluated (no reset), sessions stay up")
    if plan.sessions_removed:
        plan.raise_cost(Cost.RESET, "removed sessions go down: "
                        + ", ".join(plan.sessions_removed))
    if commands:
        plan.raise_cost(Cost.HITLESS, "the commit applies the delta; new neighbors are hitless")


def parse_back(text: str) -> str:
    """'' when every statement is a ``set`` line hier_config's Junos parser reads back."""
    bad = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("set ", "#"))]
    if bad:
        return f"not a set statement: {bad[0][:80]}"
    back = {ln.strip() for ln in ownership.hc_lines("JUNIPER_JUNOS", text)}
    lost = [ln for ln in _lines(text) if ln not in back]
    return f"hier_config does not read back: {lost[0][:80]}" if lost else ""


# --- plan and push -----------------------------------------------------------------------------

def _running(cli: Any) -> str:
    return str(cli.send("show configuration | display set"))


class JunosDriver:
    def _aim(self, files: Mapping[str, Artifact], values: Mapping[str, str], name: str,
             running: str) -> tuple[str, str]:
        rendered = fill(need(files, CONFIG).text, values)
        aim = aim_of(name, rendered, running)
        return aim, normalised(running, aim)

    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        cli = as_cli(t)
        p = DevicePlan(cli.target.name, cli.target.platform.value)
        aim, running = self._aim(files, values, cli.target.name, _running(cli))
        commands = remediation(running, aim)
        if commands:
            p.diff = [masked(c, values) for c in commands]
            classify(commands, p)
            p.action = Action.UPDATE
        return p

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        cli = as_cli(t)
        name = cli.target.name
        aim, running = self._aim(files, values, name, _running(cli))
        commands = remediation(running, aim)
        if not commands:
            return Outcome(Status.UNCHANGED, "")
        before = read_sessions(t, READ)
        try:
            cli.send("configure exclusive")
        except CliError as exc:
            raise DeployFailed(Problem("", name, f"{redact(exc.problems[0].message, values)}"
                                       " (another user or controller holds the configuration "
                                       "database); nothing changed", "")) from None
        try:
            for c in commands:
                cli.send(c)
            cli.send("commit check")
        except CliError as exc:
            self._discard(cli)
            raise DeployFailed(Problem("", name, f"{redact(exc.problems[0].message, values)}"
                                       "; the candidate was thrown away: nothing changed",
                                       "")) from None
        except RemoteError as exc:
            self._discard(cli)
            raise DeployFailed(Problem("", name, f"{exc.problems[0].message}; nothing was "
                                       "committed", "")) from None
        proceed(t, p)
        p.extra["activated"] = True
        try:
            cli.send(f"commit confirmed {CONFIRM_MINUTES} comment \"bgpgen {p.device}\"",
                     timeout=max(timeout, 120))
            cli.send("exit configuration-mode")
            now = normalised(_running(cli), aim)
            left = remediation(now, aim)
            if left:
                raise DeployFailed(Problem("", name, "read back: the switch does not run the "
                                           f"new config ({len(left)} commands left)", ""))
            wait_sessions(t, READ, before, timeout)
            if not p.defer_confirm:
                self.confirm(t, p)
        except RemoteError as exc:
            message = redact(exc.problems[0].message, values)
            self._rollback(cli)
            raise DeployFailed(Problem("", name, f"{message}; rolled back (rollback 1, "
                                       "commit)", "")) from None
        return Outcome(Status.CHANGED, p.cost_detail)

    def _discard(self, cli: Any) -> None:
        for command in ("rollback 0", "exit configuration-mode"):
            try:
                cli.send(command)
            except RemoteError:
                return  # a lost session discards its uncommitted candidate itself

    def _rollback(self, cli: Any) -> None:
        try:
            for command in ("exit configuration-mode", "configure exclusive", "rollback 1",
                            "commit comment \"bgpgen rollback\"", "exit configuration-mode"):
                try:
                    cli.send(command)
                except CliError:
                    if command != "exit configuration-mode":
                        raise
        except RemoteError as exc:
            raise DeployFailed(Problem("", cli.target.name, "could not roll back: "
                                       f"{exc.problems[0].message}; Junos rolls the commit back "
                                       f"itself when its {CONFIRM_MINUTES} minutes run out",
                                       "")) from None

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        cli = as_cli(t)
        if not p.extra.get("activated"):
            return
        name = cli.target.name
        # still pending? A commit confirmed that ran out was rolled back by Junos itself, and a
        # plain commit now would only commit the previous config again
        latest = cli.send("show system commit").strip().splitlines()[:1]
        if not latest or "commit confirmed" not in latest[0]:
            raise DeployFailed(Problem("", name, "the confirm came too late: Junos rolled the "
                                       f"commit back when its {CONFIRM_MINUTES} minutes ran out "
                                       f"(show system commit: {(latest or ['nothing'])[0][:80]})",
                                       ""))
        try:
            for command in ("configure exclusive", "commit comment \"bgpgen confirm\"",
                            "exit configuration-mode"):
                cli.send(command)
        except CliError as exc:
            raise DeployFailed(Problem("", name, "the confirm failed: "
                                       f"{exc.problems[0].message}; Junos rolls the commit back "
                                       f"itself when its {CONFIRM_MINUTES} minutes run out",
                                       "")) from None

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        if p.extra.get("activated"):
            self._rollback(as_cli(t))


# --- reading state -----------------------------------------------------------------------------

SUMMARY = "show bgp summary"
ROUTES = "show route protocol bgp | display json"
_STATE = {"Establ": "Established"}



def sessions_command(t: Target) -> str:
    return SUMMARY


def parse_sessions(output: str) -> dict[str, str]:
    rows = parse_table(platform="juniper_junos", command=SUMMARY, data=output)
    return {r["peer_ip"]: _STATE.get(r["state"], r["state"]) for r in rows}


def state_command(t: Target, fabric: Fabric) -> str:
    return f"{SUMMARY}\n{ROUTES}"


def _data(node: Any, key: str) -> Any:
    got = node.get(key) if isinstance(node, dict) else None
    return got[0].get("data") if isinstance(got, list) and got and isinstance(got[0], dict) \
        else None


def parse_state(t: Target, output: str, now: float) -> DeviceState:
    at = output.find("{")
    text, doc = (output[:at], output[at:]) if at >= 0 else (output, "{}")
    view = DeviceState(t.name)
    for r in parse_table(platform="juniper_junos", command=SUMMARY, data=text):
        state = _STATE.get(r["state"], r["state"])
        view.peers[r["peer_ip"]] = Peer(r["peer_ip"], state, None, None,
                                        int(r["received"] or 0), int(r["accepted"] or 0), None)
    for info in json.loads(doc).get("route-information", []):
        for table in info.get("route-table", []):
            for rt in table.get("rt", []):
                prefix = _data(rt, "rt-destination")
                for entry in rt.get("rt-entry", []):
                    nh = (entry.get("nh") or [{}])[0]
                    peer = _data(entry, "learned-from") or _data(nh, "to") or ""
                    view.rib.append(RibEntry(str(prefix), str(_data(nh, "to") or ""),
                                             str(peer), str(_data(entry, "as-path") or ""),
                                             _data(entry, "active-tag") == "*"))
    return view


READ = StateReader(state_command, parse_state, sessions_command, parse_sessions)


context = frr.port_179_context("Junos")


SPEC = PlatformSpec(
    platform=Platform.JUNOS,
    role=Role.SWITCH,
    inventory_name="junos",
    description="a ToR switch running Juniper Junos",
    configured=True,
    files=(FileSpec(CONFIG, "junos/junos.set.j2", PATHS.config),),
    context=context,
    checker=Checker((), "hier_config (Junos)", "hier-config", parse=parse_back),
    netmiko_device_type="juniper_junos",
    session=Session.CLI,
    paths=PATHS,
    secret_line=SECRET_LINE,
    classify=lambda old, new, plan: classify(remediation(old, new), plan),
    driver=JunosDriver(),
    state=READ,
    lab=None,
    bfd=True,
    default_originate=False,
    route_server=False,
    default_passive=Passive.NONE,
    drain=None,
    filters={"junos_string": junos_string, "junos_secret": junos_secret},
    part=part_target,
    resources=None,
)
