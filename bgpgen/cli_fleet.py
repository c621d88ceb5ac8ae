"""The fleet commands of the CLI: diff, deploy, verify and run (device access over SSH)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from .errors import BgpgenError, Problem
from .render import render
from .secrets import resolve_all
from .validate import load_fabric


def add_parsers(sub: Any) -> None:
    def common(sp: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
        sp.add_argument("-i", "--inventory", type=Path, default=None,
                        help="inventory directory (default: with --lab, the one the lab was "
                        "started from; else ./inventory)")
        sp.add_argument("--lab", metavar="NAME", default=None,
                        help="reach the devices of this lab (the ssh config it wrote)")
        sp.add_argument("--ssh-config", metavar="FILE", type=Path, default=None,
                        help="OpenSSH client config to reach devices with (default: the "
                        "inventory's fabric.management.ssh_config, else ~/.ssh/config)")
        sp.add_argument("--limit", action="append", default=None, metavar="PATTERN",
                        help="devices, as Ansible's --limit: names and globs, rack:NAME, "
                        "role:node|switch, group:NAME; ',' joins, '&' intersects, '!' "
                        "excludes (e.g. 'rack:r1,&role:node,!node-r1-03'); repeatable")
        sp.add_argument("--templates", type=Path, default=None)
        sp.add_argument("--workers", type=int, default=10)
        sp.add_argument("--command-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="longest one command may run on a device before it is killed "
                        "there and the step fails (default 60)")
        sp.add_argument("--format", choices=formats, default="text")

    d = sub.add_parser("diff", help="what would change: against a previous build or live")
    common(d, ("text", "unified", "json", "markdown"))
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--against", type=Path, metavar="BUILD_DIR",
                   help="a previous render (e.g. the base branch's build); no device access")
    g.add_argument("--live", action="store_true", help="what runs on each device, over SSH")
    g.add_argument("--cluster", metavar="FILE", default=None,
                   help="the cluster's nodes (kubectl get nodes -o json, or - for stdin): "
                   "where they and the inventory disagree, one line each")
    d.add_argument("--out", type=Path, metavar="FILE", default=None,
                   help="also save the plan (JSON) for deploy --plan FILE")
    v = sub.add_parser("verify", help="every session and expected route, read from each peer")
    common(v, ("table", "json", "markdown"))
    v.set_defaults(format="table")
    v.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="poll until everything holds or the time is up")
    p = sub.add_parser("deploy", help="push the rendered configs safely (check, backup, "
                       "activate, verify, restore on failure)")
    common(p, ("text", "json"))
    p.add_argument("--dry-run", action="store_true", help="print the live plan, change nothing")
    p.add_argument("--plan", type=Path, metavar="FILE", default=None,
                   help="apply exactly this saved plan (diff --live --out FILE): refused if "
                   "any device drifted since; a reviewed plan needs no confirmation")
    p.add_argument("--yes", action="store_true", help="do not ask before pushing")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds for sessions to re-establish after a push (default 60)")
    gr = sub.add_parser("graph", help="a picture of the fabric: racks, switches, nodes, every "
                        "session (coloured by verify's findings with --live or --lab)")
    common(gr, ("html", "svg", "dot"))
    gr.set_defaults(format="html")
    gr.add_argument("-o", "--out", type=Path, metavar="FILE", default=None,
                    help="write the picture here (default: standard output)")
    gr.add_argument("--live", action="store_true",
                    help="read every device and colour each session by what verify finds "
                    "(implied by --lab)")
    gr.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                    help="with --live: poll until everything holds or the time is up")
    gr.add_argument("--against", type=Path, metavar="BUILD_DIR", default=None,
                    help="draw the plan against a previous render: each device it would "
                    "change filled by what activating that costs")
    gr.add_argument("--collapse", type=_non_negative, default=16, metavar="N",
                    help="racks of more than N nodes are drawn as one summary node (the HTML "
                    "page expands them); 0: never (default 16)")
    rn = sub.add_parser("run", help="run a playbook: batched rollouts with verify gates")
    rn.add_argument("playbook", type=Path)
    common(rn, ("text", "json"))
    rn.add_argument("--check", action="store_true",
                    help="print the batches and each one's plan; change nothing")
    rn.add_argument("--yes", action="store_true", help="confirm every pause that asks")
    p.add_argument("--verify", action="store_true",
                   help="after the push, verify the fabric (sessions and routes) and roll every "
                   "changed device back if it does not hold within --timeout")


def _inventory(args: argparse.Namespace) -> Path:
    """-i, else the inventory the lab (--lab) was started from, else ./inventory."""
    if args.inventory is not None:
        return Path(args.inventory)
    if args.lab:
        from .lab import LabError, overlay
        try:
            started = overlay(args.lab).get("inventory")
        except LabError:  # said when the lab is reached; input problems are said first
            started = None
        if started:
            return Path(started)
    return Path("inventory")


def _targets(args: argparse.Namespace, fabric: Any) -> tuple[dict[str, Any], list[Any]]:
    from . import targets
    if args.lab:  # shorthand for the ssh config the lab wrote (its devices only)
        from .lab import overlay
        info = overlay(args.lab)
        tg = targets.from_inventory(fabric, Path(info["ssh_config"]), set(info["devices"]))
    else:
        tg = targets.from_inventory(fabric, args.ssh_config)
    return tg, targets.select(fabric, tg, args.limit)


def diff(args: argparse.Namespace, out: TextIO) -> int:
    from . import plan as planmod
    fabric = load_fabric(_inventory(args))
    if args.cluster is not None:
        from . import kube
        nodes = kube.load_nodes(args.cluster, fabric.cluster.rack_label)
        lines = kube.differences(fabric, nodes)
        out.write("".join(f"{ln}\n" for ln in lines) or
                  f"the inventory and the cluster agree ({len(nodes)} nodes)\n")
        return 2 if lines else 0
    if args.against is not None:
        plan = planmod.against_build(fabric, args.against, args.templates)
        if args.limit:
            from .targets import limited
            names = {d.name for d in limited(fabric, args.limit)}
            plan.devices = [d for d in plan.devices if d.device in names]
    else:
        from .fleet import close
        tx = _transaction(args, fabric, render(fabric, args.templates))
        try:
            plan = tx.make_plan()
        finally:
            close(tx.nr)
    if args.out is not None:
        _write_out(args.out, planmod.as_json(plan))
    out.write(planmod.render_plan(plan, fabric, args.format))
    return int(plan.exit)


def _transaction(args: argparse.Namespace, fabric: Any, build: Any) -> Any:
    from .deploy import Transaction
    from .fleet import nornir_for
    tg, devices = _targets(args, fabric)
    values = resolve_all(build.secrets)
    nr = nornir_for(devices, tg, args.workers, args.command_timeout)
    baseline = f"lab {args.lab}" if args.lab else "the running devices"
    return Transaction(nr, build, values, timeout=getattr(args, "timeout", 60.0),
                       baseline=baseline)


def verify(args: argparse.Namespace, out: TextIO) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from . import verify
    from .fleet import close, nornir_for, read_states
    fabric = load_fabric(_inventory(args))
    tg, devices = _targets(args, fabric)
    values = resolve_all(tuple(s for s in fabric.secrets))
    nr = nornir_for(devices, tg, args.workers, args.command_timeout)
    chosen = {d.name for d in devices}
    try:
        report = verify.wait(fabric, lambda only: read_states(nr, fabric, values, only),
                             args.wait, chosen)
    finally:
        close(nr)
    if args.format == "json":
        out.write(verify.as_json(report))
        return report.exit
    headers = ["switch", "node", "family", "switch end", "node end", "uptime", "expected",
               "received", "missing", "unexpected"]
    rows = verify.format_table(report)
    if args.format == "markdown":
        out.write("| " + " | ".join(headers) + " |\n|" + "---|" * len(headers) + "\n")
        out.writelines("| " + " | ".join(r) + " |\n" for r in rows)
        out.writelines(f"- {f.message}\n" for f in report.errors + report.problems)
        out.write(f"\n**{verify.summary(report)}**\n")
        return report.exit
    table = Table(title=f"bgpgen verify: {fabric.name}")
    for h in headers:
        table.add_column(h)
    for r in rows:
        table.add_row(*(escape(x) for x in r))
    console = Console(file=out, width=140)
    console.print(table)
    for f in report.errors:
        out.write(f"error: {f.message}\n")
    for f in report.problems:
        out.write(f"problem: {f.message}\n")
    out.write(verify.summary(report) + "\n")
    return report.exit


def _write_out(path: Path, text: str) -> None:
    """A file the user named with --out / -o, or a one-line error."""
    try:
        path.write_text(text)
    except OSError as exc:
        raise BgpgenError(Problem(str(path), "--out", f"cannot write it: {exc.strerror}",
                                  "give a file in a directory that exists and you can write "
                                  "to")) from None


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of nodes (0 or more)")
    return value


def graph(args: argparse.Namespace, out: TextIO) -> int:
    """The fabric as a picture; with --live / --lab, each session in verify's colours."""
    from . import graph, verify
    fabric = load_fabric(_inventory(args))
    report = None
    if args.live or args.lab:
        from .fleet import close, nornir_for, read_states
        tg, devices = _targets(args, fabric)
        values = resolve_all(tuple(s for s in fabric.secrets))
        nr = nornir_for(devices, tg, args.workers, args.command_timeout)
        try:
            report = verify.wait(fabric, lambda only: read_states(nr, fabric, values, only),
                                 args.wait, {d.name for d in devices})
        finally:
            close(nr)
    drawn = graph.edges(fabric, report)
    collapse = args.collapse or None
    planned = None
    if args.against is not None:
        from .plan import against_build
        planned = against_build(fabric, args.against, args.templates)
    if args.format == "dot":
        text = graph.dot(fabric, drawn, collapse, planned)
    elif args.format == "svg":
        text = graph.svg(graph.dot(fabric, drawn, collapse, planned))
    else:
        said = verify.summary(report) if report else (
            f"fabric {fabric.name} as the inventory says: {len(fabric.switches)} switches, "
            f"{len(fabric.nodes)} nodes, {len(fabric.sessions)} sessions (offline)")
        if planned is not None:
            counts = planned.counts()
            said += (f"; plan against {args.against}: {counts['create']} to add, "
                     f"{counts['update']} to change")
        text = graph.html(fabric, drawn, said, collapse, planned)
    if args.out is None:
        out.write(text)
    else:
        _write_out(args.out, text)
        out.write(f"wrote {args.out}\n")
    return report.exit if report else 0


def run(args: argparse.Namespace, out: TextIO) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from . import playbook, run
    pb = playbook.load(args.playbook)
    fabric = load_fabric(_inventory(args))
    limit = None
    if args.limit:  # narrows every play, as Ansible's --limit does
        from .targets import limited
        limit = {d.name for d in limited(fabric, args.limit)}
    run.prepare(pb, fabric, args.yes or sys.stdin.isatty(), limit)  # all checks, no access
    build = render(fabric, args.templates)
    say = (lambda text: None) if args.format == "json" else \
        (lambda text: (out.write(text.rstrip("\n") + "\n"), out.flush()) and None)
    from contextlib import nullcontext

    from .lock import command_line, fabric_lock
    # one push at a time per fabric (--check changes nothing)
    with nullcontext() if args.check else fabric_lock(fabric.name, command_line()):
        tg, _ = _targets(args, fabric)
        values = resolve_all(build.secrets)
        stop = threading.Event()
        with _interruptible(stop.set, Console(stderr=True)):
            results = run.execute(pb, fabric, build, tg, values, check=args.check, yes=args.yes,
                                  workers=args.workers, say=say, limit=limit, stop=stop,
                                  command_timeout=args.command_timeout)
    ok = all(r.status in (run.BatchStatus.OK, run.BatchStatus.CHECKED) for r in results)
    if args.format == "json":
        out.write(json.dumps({"playbook": pb.name, "check": args.check, "ok": ok,
                              "interrupted": stop.is_set(),
                              "batches": [r.as_dict() for r in results]}, indent=1) + "\n")
        return 130 if stop.is_set() else 0 if ok else 1
    table = Table(title=f"bgpgen run {pb.name}" + (" (check)" if args.check else ""))
    for col in ("play", "batch", "devices", "result", "failed"):
        table.add_column(col)
    for r in results:
        failed = "; ".join(f"{f['device']} ({f['gate']}): {f['message']}" for f in r.failed)
        table.add_row(r.play, str(r.index), ", ".join(r.devices), str(r.status), escape(failed))
    Console(file=out, width=160).print(table)
    done = sum(1 for r in results if r.status in (run.BatchStatus.OK, run.BatchStatus.CHECKED))
    out.write(f"Run: {done} of {len(results)} batches done"
              + ("" if ok else ", interrupted" if stop.is_set()
                 else ", stopped at the first failed batch") + ".\n")
    return 130 if stop.is_set() else 0 if ok else 1


def deploy(args: argparse.Namespace, out: TextIO) -> int:
    from rich.console import Console

    from .lock import command_line, fabric_lock
    fabric = load_fabric(_inventory(args))
    build = render(fabric, args.templates)
    err = Console(stderr=True)
    if not args.dry_run:  # one push at a time per fabric; a dry run changes nothing
        with fabric_lock(fabric.name, command_line()):
            return _deploy(args, out, fabric, build, err)
    return _deploy(args, out, fabric, build, err)


def _deploy(args: argparse.Namespace, out: TextIO, fabric: Any, build: Any, err: Any) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress
    from rich.table import Table

    from . import plan as planmod
    from . import verify
    from .fleet import close
    from .platforms.base import Status
    saved = planmod.load_saved(args.plan) if args.plan is not None else None
    tx = _transaction(args, fabric, build)
    try:
        plan = tx.make_plan()
        if saved is not None:
            apart = planmod.drift(saved, plan)
            if apart:
                raise BgpgenError(Problem(str(args.plan), "--plan", "the fleet or the "
                                          "inventory changed since this plan: "
                                          + "; ".join(apart[:5]), "plan again with bgpgen diff "
                                          "--live --out FILE, review it, then deploy it"))
            args.yes = True  # the saved plan is what was reviewed
        if args.format == "text":
            out.write(planmod.as_text(plan, fabric))
        if args.dry_run or plan.exit == planmod.Exit.NO_CHANGES:
            if args.format == "json":
                out.write(planmod.as_json(plan))
            if plan.exit == planmod.Exit.NO_CHANGES and args.format == "text":
                out.write("No changes: nothing written, nothing reloaded.\n")
            return int(plan.exit)
        if not args.yes:
            if not sys.stdin.isatty():
                raise BgpgenError("no terminal to confirm on: review the plan, then rerun with "
                                  "--yes")
            answer = input("Push these changes? Only 'yes' is accepted: ")
            if answer.strip() != "yes":
                out.write("Cancelled: nothing was pushed.\n")
                return 1
        todo = [p.device for p in plan.devices if p.changed]
        with Progress(console=err, transient=True, disable=not err.is_terminal) as bar, \
                _interruptible(tx.interrupt, err):
            task = bar.add_task("deploying", total=len(todo))
            report = tx.run(args.timeout if args.verify else None,
                            lambda dev, what: bar.advance(task))
    finally:
        close(tx.nr)
    if report.gate is not None and args.format == "text":
        out.write(verify.summary(report.gate) + "\n")
        if not report.gate.ok:
            out.writelines(f"problem: {f.message}\n" for f in report.gate.findings)
    if args.format == "json":
        out.write(json.dumps({"plan": json.loads(planmod.as_json(plan)),
                              "results": [r.as_dict() for r in report.results],
                              "failed": report.failed_hosts,
                              "interrupted": report.interrupted}, indent=1) + "\n")
    else:
        table = Table(title="bgpgen deploy")
        for col in ("device", "result", "runs", "seconds", "detail"):
            table.add_column(col)
        for r in report.results:
            runs = "" if r.status is Status.UNCHANGED else str(r.runs)
            table.add_row(r.device, str(r.status), runs, f"{r.seconds:.1f}", escape(r.message))
        Console(file=out, width=160).print(table)
        rolled, skipped = report.count(Status.ROLLED_BACK), report.count(Status.SKIPPED)
        out.write(("Interrupted. " if report.interrupted else "")
                  + f"Deploy: {report.count(Status.CHANGED)} changed, "
                  f"{report.count(Status.UNCHANGED)} unchanged, "
                  f"{report.count(Status.FAILED)} failed"
                  + (f", {rolled} rolled back" if rolled else "")
                  + (f", {skipped} not pushed" if skipped else "") + ".\n")
    if report.interrupted:
        return 130
    return 0 if report.ok else 1


@contextmanager
def _interruptible(interrupt: Callable[[], None], err: Any) -> Iterator[None]:
    """Ctrl-C during a push calls ``interrupt`` (a Transaction's, or a playbook run's stop):
    no new pushes start; those in flight finish (or restore themselves), unconfirmed ones are
    rolled back, and the per-device table is printed. Another Ctrl-C only repeats that (a
    half-done push is worse than a wait)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        err.print("interrupted: no new pushes; pushes in flight finish or roll back, "
                  "then the table of what each device runs")
        interrupt()
    old = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
