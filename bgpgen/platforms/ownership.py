"""bgpgen's part of a switch: which lines of a device's config bgpgen owns, as data.

A platform declares its ownership as :class:`Own` rules, each a path of regular expressions
from the top of the config down (``router bgp {asn}`` > ``address-family .*`` > ``neighbor
{ours} .*``), the way hier_config's tag rules and annet's ACLs name parts of a config. The
placeholders are filled per device from what bgpgen renders for it (its ASN, the peer groups
and neighbors it names), so the same rules serve every switch.

The engine works on a config as a tree of lines (:func:`parse`: indentation is nesting) and
flattened to *paths* (every line with its parents). bgpgen's part of a running config is the
paths its rules match; the config a push aims at (:func:`merge`) is the running config with
that part replaced by the rendered one, every other line kept in its place and order. The
platform's own tool then computes and applies the delta between the two (FRR: frr-reload), so
the delta can only touch owned lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import Problem

Path = tuple[str, ...]
Tree = dict[str, "Tree"]


@dataclass(frozen=True, slots=True)
class Own:
    """bgpgen owns the lines whose path matches ``path`` (one pattern per level, matched
    against the whole line without its indentation); with ``subtree``, everything under a
    matching line too."""

    path: tuple[str, ...]
    subtree: bool = False


@dataclass(frozen=True, slots=True)
class Syntax:
    """How a platform writes its config: lines that only close a block, comments, and the
    line each kind of block ends with."""

    closers: frozenset[str]       #: "exit", "exit-address-family", "!" ...
    comment: str                  #: a line starting with it is a comment
    skip: tuple[str, ...]         #: header lines of a show command, not config
    #: block header prefix -> its closing line ("" : none); the default is ``default_close``
    close: Mapping[str, str]
    default_close: str


def hc_lines(os_name: str, text: str) -> list[str]:
    """hier_config's reading of a config (``os_name``: its Platform member, e.g. ``ARISTA_EOS``),
    a line each. hier_config (and pydantic under it) is imported on first use: a render never
    needs its 0.1 s."""
    from hier_config import Platform, get_hconfig
    return list(get_hconfig(getattr(Platform, os_name), text).dump_simple())


def hc_remediation(os_name: str, running: str, aim: str, sectional_exiting: bool) -> list[str]:
    """hier_config's remediation from ``running`` to ``aim`` for ``os_name``, a command a line."""
    from hier_config import Platform, WorkflowRemediation, get_hconfig
    p = getattr(Platform, os_name)
    wf = WorkflowRemediation(get_hconfig(p, running), get_hconfig(p, aim))
    return list(wf.remediation_config.dump_simple(sectional_exiting=sectional_exiting))


def parse(text: str, syntax: Syntax) -> Tree:
    """A config as nested dicts (line -> children), in order; closers and comments dropped."""
    root: Tree = {}
    stack: list[tuple[int, Tree]] = [(-1, root)]
    for raw in text.splitlines():
        line = raw.rstrip()
        body = line.strip()
        if not body or body in syntax.closers or body.startswith(syntax.comment) \
                or body.startswith(syntax.skip):
            continue
        indent = len(line) - len(line.lstrip())
        while stack[-1][0] >= indent:
            stack.pop()
        node = stack[-1][1].setdefault(body, {})
        stack.append((indent, node))
    return root


def paths(tree: Tree, above: Path = ()) -> list[Path]:
    """Every line with its parents, in order (a block header also on its own)."""
    out: list[Path] = []
    for line, children in tree.items():
        here = (*above, line)
        out.append(here)
        out += paths(children, here)
    return out


def build(items: Iterable[Path]) -> Tree:
    """The tree of these paths, in their order (parents made as needed)."""
    root: Tree = {}
    for p in items:
        node = root
        for line in p:
            node = node.setdefault(line, {})
    return root


def render(tree: Tree, syntax: Syntax, depth: int = 0) -> list[str]:
    """A tree back to config lines, each block closed as the platform closes it."""
    out: list[str] = []
    for line, children in tree.items():
        out.append(" " * depth + line)
        close = next((c for prefix, c in syntax.close.items() if line.startswith(prefix)),
                     syntax.default_close if children else "")
        if children:
            out += render(children, syntax, depth + 1)
        if close:
            out.append(" " * depth + close)
        if depth == 0 and (children or close):
            out.append(syntax.comment)
    return out


def compile_rules(rules: Iterable[Own], values: Mapping[str, str]) -> list[tuple[list[re.Pattern[str]], bool]]:
    """Rules with their placeholders filled (``values`` are regular expressions)."""
    out = []
    for r in rules:
        pats = [re.compile(p.format(**values)) for p in r.path]
        out.append((pats, r.subtree))
    return out


def owned(p: Path, rules: list[tuple[list[re.Pattern[str]], bool]]) -> bool:
    for pats, subtree in rules:
        if len(p) < len(pats) or (len(p) > len(pats) and not subtree):
            continue
        if all(pat.fullmatch(line) for pat, line in zip(pats, p)):
            return True
    return False


def part(tree: Tree, rules: list[tuple[list[re.Pattern[str]], bool]]) -> list[Path]:
    """bgpgen's part of a config: its owned paths, in order."""
    return [p for p in paths(tree) if owned(p, rules)]


def merge(running: Tree, intended: Tree,
          rules: list[tuple[list[re.Pattern[str]], bool]]) -> Tree:
    """The running config with bgpgen's part replaced by the intended one's. A block header
    that only holds owned lines (``router bgp``) is the running config's: it stays, and the
    intended part is put inside it."""
    keep = [p for p in paths(running) if not owned(p, rules)]
    add = [p for p in paths(intended) if owned(p, rules)]
    # at every level, lines in the render's order where it has them (what a line refers to
    # comes before it: a route-map before the router bgp that uses it, a neighbor before its
    # address-family lines, as a daemon loading the file at start needs), the running
    # config's other lines where they were
    return _ordered(build([*keep, *add]), running, intended)


def _ordered(tree: Tree, running: Tree, intended: Tree) -> Tree:
    return {k: _ordered(tree[k], running.get(k, {}), intended.get(k, {}))
            for k in _interleave(list(running), list(intended)) if k in tree}


def _interleave(first: list[str], second: list[str]) -> list[str]:
    """Both sequences in one, each one's order kept: ``second``'s items go just before the
    next item they share with ``first``."""
    out: list[str] = []
    seen: set[str] = set()
    at = 0
    shared = set(first)
    for item in second:
        if item in shared:
            while at < len(first) and first[at] != item:
                if first[at] not in seen:
                    out.append(first[at])
                    seen.add(first[at])
                at += 1
        if item not in seen:
            out.append(item)
            seen.add(item)
    out += [x for x in first if x not in seen]
    return out


@dataclass(frozen=True, slots=True)
class BgpPart:
    """bgpgen's part of a switch whose BGP is ``router bgp ASN`` with neighbors and peer groups
    (FRR, EOS, NX-OS, IOS-like syntaxes): the :class:`Own` rules filled in per switch, and the
    config a push aims at. ``group``: the words after ``neighbor NAME`` that define a peer
    group; ``member``: the words before the group's name that make a neighbor its member;
    ``router_id``: how the switch's router-id line starts."""

    syntax: Syntax
    own: tuple[Own, ...]
    group: tuple[str, ...]
    member: tuple[str, ...]
    router_id: str

    def rules(self, intended: Tree,
              running: Tree | None = None) -> list[tuple[list[re.Pattern[str]], bool]]:
        """The rules filled in for this switch: the peer groups and neighbors bgpgen renders
        for it, and every running member of those peer groups (a node that left the inventory
        is still bgpgen's to remove)."""
        bgp = own_bgp(intended) or "router bgp 0"
        said = [ln.split() for ln in intended.get(bgp, {}) if ln.startswith("neighbor ")]
        ours = {w[1] for w in said}
        g, m = list(self.group), list(self.member)
        groups = {w[1] for w in said if w[2:] == g}
        have = [ln.split() for ln in (running or {}).get(bgp, {}) if ln.startswith("neighbor ")]
        # a peer group bgpgen made says so (its description): still bgpgen's once no profile
        # renders it (a family or a profile removed)
        groups |= {w[1] for w in have if w[2:5] == ["description", "bgpgen", "peer"]}
        ours |= groups | {w[1] for w in have if len(w) == 3 + len(m) and w[2:2 + len(m)] == m
                          and w[-1] in groups}
        return compile_rules(self.own, {"asn": re.escape(bgp.split()[2]),
                                        "ours": "|".join(re.escape(o) for o in sorted(ours))})

    def target(self, name: str, running: str, intended: str) -> str:
        """The running config with bgpgen's part replaced by the rendered one. Refuses (one
        line) a switch whose own BGP (ASN, router-id) is not the inventory's."""
        from .base import DeployFailed  # the push's error; base does not import this module
        have, want = parse(running, self.syntax), parse(intended, self.syntax)
        mine, theirs = own_bgp(want), own_bgp(have)
        if mine is None:  # pragma: no cover - the templates always render router bgp
            raise DeployFailed(Problem("", name, "the rendered config has no router bgp", ""))
        if theirs is None:
            raise DeployFailed(Problem("", name, f"{name} runs no router bgp: with manage: "
                                       "bgp-part bgpgen adds its part to the switch's own BGP",
                                       f"configure '{mine}' on {name}, or set manage: whole"))
        if theirs != mine:
            raise DeployFailed(Problem("", name, f"{name} runs '{theirs}', the inventory says "
                                       f"'{mine}': bgpgen does not rewrite a switch's own BGP",
                                       f"fix {name}'s asn in the inventory, or the switch"))
        rid = [ln for ln in have[theirs] if ln.startswith(self.router_id)]
        want_rid = [ln for ln in want[mine] if ln.startswith(self.router_id)]
        if rid and want_rid and rid != want_rid:
            raise DeployFailed(Problem("", name, f"{name} runs '{rid[0]}', the inventory says "
                                       f"'{want_rid[0]}': bgpgen does not rewrite a switch's "
                                       f"own BGP", f"fix {name}'s router_id in the inventory, "
                                       "or the switch"))
        merged = merge(have, want, self.rules(want, have))
        return "\n".join(render(merged, self.syntax)) + "\n"


def own_bgp(tree: Tree) -> str | None:
    """The switch's own ``router bgp ASN`` line (not a VRF's)."""
    return next((ln for ln in tree if ln.startswith("router bgp ") and " vrf " not in ln), None)
