"""The ``bgpgen`` command: a thin shell over the library. One ``main()`` turns known errors into
one line per problem on stderr and an exit status; ``--traceback`` shows the rest."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .check import check_build, raise_on_failure
from .errors import BgpgenError
from .render import check_output_dir, render, write
from .schema import inventory_schema_text
from .secrets import SecretMode, resolve_all
from .validate import load_fabric


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    CHANGES = 2
    VERIFY_FAILED = 3
    INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bgpgen", description="BGP configs for both ends of every "
                                "session between Kubernetes nodes and their ToR switches.")
    p.add_argument("--version", action="version", version=f"bgpgen {__version__}")
    p.add_argument("--traceback", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-i", "--inventory", type=Path, default=Path("inventory"),
                        help="inventory directory (default: ./inventory)")
        sp.add_argument("--format", choices=("text", "json"), default="text")

    v = sub.add_parser("validate", help="check the inventory (schema and semantics)")
    common(v)
    r = sub.add_parser("render", help="render every device's config into a build directory")
    common(r)
    r.add_argument("-o", "--output", type=Path, default=Path("build"),
                   help="build directory (default: ./build); replaced atomically")
    r.add_argument("--check", action="store_true",
                   help="run gobgpd -d, bird -p and vtysh -C on every file before writing")
    r.add_argument("--templates", type=Path, default=None,
                   help="a directory of template overrides (same layout as bgpgen/templates)")
    r.add_argument("--secrets", choices=[m.value for m in SecretMode], default="resolve",
                   help="resolve: write secret values (files 0600); placeholder: write "
                   "<secret:NAME> tokens, for CI builds and diffs without secrets")
    sub.add_parser("schema", help="print the inventory JSON Schema (for editors)")
    _lab_parser(sub)
    _push_parsers(sub)
    return p


def _push_parsers(sub: Any) -> None:
    def common(sp: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
        sp.add_argument("-i", "--inventory", type=Path, default=Path("inventory"))
        sp.add_argument("--lab", metavar="NAME", default=None,
                        help="reach the devices of this lab (its connection overlay)")
        sp.add_argument("--limit", nargs="+", default=None, metavar="PATTERN",
                        help="device names, globs, group:NAME, rack:NAME, role:node|switch")
        sp.add_argument("--templates", type=Path, default=None)
        sp.add_argument("--workers", type=int, default=10)
        sp.add_argument("--format", choices=formats, default="text")

    d = sub.add_parser("diff", help="what would change: against a previous build or live")
    common(d, ("text", "unified", "json", "markdown"))
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--against", type=Path, metavar="BUILD_DIR",
                   help="a previous render (e.g. the base branch's build); no device access")
    g.add_argument("--live", action="store_true", help="what runs on each device, over SSH")
    v = sub.add_parser("verify", help="every session and expected route, read from each peer")
    common(v, ("table", "json", "markdown"))
    v.set_defaults(format="table")
    v.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="poll until everything holds or the time is up")
    p = sub.add_parser("deploy", help="push the rendered configs safely (check, backup, "
                       "activate, verify, restore on failure)")
    common(p, ("text", "json"))
    p.add_argument("--dry-run", action="store_true", help="print the live plan, change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask before pushing")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds for sessions to re-establish after a push (default 60)")
    rn = sub.add_parser("run", help="run a playbook: batched rollouts with verify gates")
    rn.add_argument("playbook", type=Path)
    common(rn, ("text", "json"))
    rn.add_argument("--check", action="store_true",
                    help="print the batches and each one's plan; change nothing")
    rn.add_argument("--yes", action="store_true", help="confirm every pause that asks")
    p.add_argument("--verify", action="store_true",
                   help="after the push, verify the fabric (sessions and routes) and roll every "
                   "changed device back if it does not hold within --timeout")


def _targets(args: argparse.Namespace, fabric: Any) -> tuple[dict[str, Any], list[Any]]:
    from . import targets
    if args.lab:
        from .lab import overlay
        tg = targets.from_overlay(fabric, overlay(args.lab))
    else:
        tg = targets.from_inventory(fabric)
    return tg, targets.select(fabric, tg, args.limit)


def _diff(args: argparse.Namespace, out: TextIO) -> int:
    from . import plan as planmod
    fabric = load_fabric(args.inventory)
    build = render(fabric, args.templates)
    if args.against is not None:
        plan = planmod.against(build, args.against)
        if args.limit:
            from .targets import select
            everyone: dict[str, Any] = {d.name: d for d in fabric.devices}
            names = {d.name for d in select(fabric, everyone, args.limit)}
            plan.devices = [d for d in plan.devices if d.device in names]
    else:
        from .deploy import close
        plan, nr, _ = _live_plan(args, fabric, build)
        close(nr)
    out.write(planmod.render_plan(plan, fabric, args.format))
    return int(plan.exit)


def _live_plan(args: argparse.Namespace, fabric: Any, build: Any) -> Any:
    from .deploy import close, live_plan, nornir_for
    tg, devices = _targets(args, fabric)
    values = resolve_all(build.secrets)
    nr = nornir_for(devices, tg, args.workers)
    try:
        baseline = f"lab {args.lab}" if args.lab else "the running devices"
        return live_plan(nr, build, values, baseline), nr, values
    except BaseException:
        close(nr)
        raise


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from . import verify
    from .deploy import close, collect, nornir_for
    fabric = load_fabric(args.inventory)
    tg, devices = _targets(args, fabric)
    values = resolve_all(tuple(s for s in fabric.secrets))
    nr = nornir_for(devices, tg, args.workers)
    chosen = {d.name for d in devices}
    try:
        report = verify.wait(fabric, lambda only: collect(nr, fabric, values, only), args.wait,
                             chosen)
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
        out.writelines(f"- {p}\n" for p in report.errors + report.problems)
        out.write(f"\n**{verify.summary(report)}**\n")
        return report.exit
    table = Table(title=f"bgpgen verify: {fabric.name}")
    for h in headers:
        table.add_column(h)
    for r in rows:
        table.add_row(*(escape(x) for x in r))
    console = Console(file=out, width=140)
    console.print(table)
    for line in report.errors:
        out.write(f"error: {line}\n")
    for line in report.problems:
        out.write(f"problem: {line}\n")
    out.write(verify.summary(report) + "\n")
    return report.exit


def _verify_after(args: argparse.Namespace, fabric: Any, nr: Any, values: Any, plan: Any,
                  report: Any) -> str:
    """deploy --verify: the fabric's verify decides; every changed device is confirmed or
    rolled back (BIRD configure confirm / undo, FRR and gobgp previous config)."""
    from . import verify
    from .deploy import collect, finish
    chosen = {h for h in nr.inventory.hosts}
    result = verify.wait(fabric, lambda only: collect(nr, fabric, values, only), args.timeout,
                         chosen)
    if result.ok:
        finish(nr, plan, report, "confirm", args.timeout, values)
        return verify.summary(result) + "\n"
    reason = "; ".join(result.problems[:3] + result.errors[:3])
    finish(nr, plan, report, "rollback", args.timeout, values, reason)
    return verify.summary(result) + "\n" + "".join(f"problem: {p}\n"
                                                    for p in result.problems + result.errors)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from . import playbook, run
    pb = playbook.load(args.playbook)
    fabric = load_fabric(args.inventory)
    run.prepare(pb, fabric, args.yes or sys.stdin.isatty())  # every check before any access
    build = render(fabric, args.templates)
    tg, _ = _targets(args, fabric)
    values = resolve_all(build.secrets)
    say = (lambda text: None) if args.format == "json" else \
        (lambda text: (out.write(text.rstrip("\n") + "\n"), out.flush()) and None)
    results = run.execute(pb, fabric, build, tg, values, check=args.check, yes=args.yes,
                          workers=args.workers, say=say)
    ok = all(r.status in ("ok", "checked") for r in results)
    if args.format == "json":
        out.write(json.dumps({"playbook": pb.name, "check": args.check, "ok": ok,
                              "batches": [r.as_dict() for r in results]}, indent=1) + "\n")
        return 0 if ok else 1
    table = Table(title=f"bgpgen run {pb.name}" + (" (check)" if args.check else ""))
    for col in ("play", "batch", "devices", "result", "failed"):
        table.add_column(col)
    for r in results:
        failed = "; ".join(f"{f['device']} ({f['gate']}): {f['message']}" for f in r.failed)
        table.add_row(r.play, str(r.index), ", ".join(r.devices), r.status, escape(failed))
    Console(file=out, width=160).print(table)
    done = sum(1 for r in results if r.status in ("ok", "checked"))
    out.write(f"Run: {done} of {len(results)} batches done"
              + ("" if ok else ", stopped at the first failed batch") + ".\n")
    return 0 if ok else 1


def _deploy(args: argparse.Namespace, out: TextIO) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress
    from rich.table import Table

    from . import plan as planmod
    from .deploy import apply, close
    fabric = load_fabric(args.inventory)
    build = render(fabric, args.templates)
    err = Console(stderr=True)
    plan, nr, values = _live_plan(args, fabric, build)
    try:
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
        for p in plan.devices:
            p.extra["defer_confirm"] = args.verify
        with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("deploying", total=len(todo))
            report = apply(nr, build, plan, values, args.timeout,
                           lambda dev, what: bar.advance(task))
        if args.verify:
            verified = _verify_after(args, fabric, nr, values, plan, report)
            out.write(verified)
    finally:
        close(nr)
    if args.format == "json":
        out.write(json.dumps({"plan": json.loads(planmod.as_json(plan)),
                              "results": [r.as_dict() for r in report.results],
                              "failed": report.failed_hosts}, indent=1) + "\n")
    else:
        table = Table(title="bgpgen deploy")
        for col in ("device", "result", "seconds", "detail"):
            table.add_column(col)
        for r in report.results:
            table.add_row(r.device, r.status, f"{r.seconds:.1f}", escape(r.message))
        Console(file=out, width=160).print(table)
        c = {s: sum(1 for r in report.results if r.status == s)
             for s in ("changed", "unchanged", "failed", "rolled_back")}
        out.write(f"Deploy: {c['changed']} changed, {c['unchanged']} unchanged, "
                  f"{c['failed']} failed" + (f", {c['rolled_back']} rolled back"
                                             if c["rolled_back"] else "") + ".\n")
    bad = report.failed_hosts or any(r.status == "rolled_back" for r in report.results)
    return 1 if bad else 0


def _lab_parser(sub: Any) -> None:
    lab = sub.add_parser("lab", help="run the inventory on real daemons in network namespaces")
    lsub = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")

    def named(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--name", default="lab", help="lab name (default: lab)")
        sp.add_argument("--format", choices=("text", "json"), default="text")

    u = lsub.add_parser("up", help="build the lab and start every daemon")
    named(u)
    u.add_argument("-i", "--inventory", type=Path, default=Path("inventory"))
    u.add_argument("--render", action="store_true",
                   help="start devices on their rendered configs (default: bootstrap configs)")
    u.add_argument("--templates", type=Path, default=None)
    u.add_argument("--mgmt-range", default="198.51.100.0/24",
                   help="management network of the lab (default: 198.51.100.0/24)")
    named(lsub.add_parser("status", help="devices, processes and BGP session states"))
    named(lsub.add_parser("down", help="remove everything the lab made (idempotent)"))
    e = lsub.add_parser("exec", help="run a command on a lab device: lab exec DEV -- CMD")
    named(e)
    e.add_argument("device")
    e.add_argument("argv", nargs=argparse.REMAINDER)
    sh = lsub.add_parser("ssh", help="ssh to a lab device (as deploy does)")
    named(sh)
    sh.add_argument("--cli", action="store_true", help="the switch CLI port (vtysh)")
    sh.add_argument("device")
    sh.add_argument("argv", nargs=argparse.REMAINDER)


def _lab(args: argparse.Namespace, out: TextIO) -> int:
    from . import lab
    cmd = args.lab_command
    if cmd == "up":
        info = lab.up(load_fabric(args.inventory), args.name, args.mgmt_range, args.render,
                      args.templates)
        if args.format == "json":
            out.write(json.dumps(info, indent=1) + "\n")
        else:
            out.write(f"lab {args.name} is up: {len(info['devices'])} devices on "
                      f"{info['mgmt_net']}; bgpgen lab status --name {args.name}; "
                      f"bgpgen lab down --name {args.name}\n")
        return ExitStatus.OK
    if cmd == "down":
        done = lab.down(args.name)
        out.write(("\n".join(done) or f"lab {args.name}: nothing to remove") + "\n")
        return ExitStatus.OK
    if cmd == "status":
        st = lab.status(args.name)
        if args.format == "json":
            out.write(json.dumps(st, indent=1) + "\n")
            return ExitStatus.OK
        out.write(f"lab {st['lab']}: {st['status']}, supervisor {st['supervisor']} "
                  f"{'running' if st['supervisor_alive'] else 'NOT running'}\n")
        for dev, d in st["devices"].items():
            procs = " ".join(f"{p['name']}:{p['pid']}{'' if p['alive'] else '(dead)'}"
                             for p in d["processes"])
            sess = " ".join(f"{peer}={state}" for peer, state in sorted(d["sessions"].items()))
            out.write(f"{dev:<14} {d['platform']:<8} {d['mgmt']:<15} {d['netns']:<28} "
                      f"{procs}\n{'':<14} sessions: {sess or '-'}\n")
        return ExitStatus.OK
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if cmd == "exec":
        return ExitStatus(min(lab.exec_in(args.name, args.device, argv or ["sh"]), 1))
    out.flush()
    os.execvp("ssh", [*lab.ssh_argv(args.name, args.device, args.cli), *argv])
    return ExitStatus.ERROR  # pragma: no cover - execvp does not return


def _summary(fabric: Any) -> dict[str, Any]:
    return {"fabric": fabric.name, "switches": len(fabric.switches), "nodes": len(fabric.nodes),
            "sessions": len(fabric.sessions), "routes": len(fabric.routes)}


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    fabric = load_fabric(args.inventory)
    s = _summary(fabric)
    if args.format == "json":
        out.write(json.dumps({"ok": True, **s}, indent=1) + "\n")
    else:
        out.write(f"{args.inventory}: valid: fabric {s['fabric']}, {s['switches']} switches, "
                  f"{s['nodes']} nodes, {s['sessions']} sessions, {s['routes']} expected routes\n")
    return ExitStatus.OK


def _render(args: argparse.Namespace, out: TextIO) -> int:
    check_output_dir(args.output)
    fabric = load_fabric(args.inventory)
    build = render(fabric, args.templates)
    values = resolve_all(build.secrets) if args.secrets == SecretMode.RESOLVE else None
    reports = []

    def run_checks(tmp: Path) -> None:
        report = check_build(build, tmp, values)
        raise_on_failure(report, args.output)
        reports.append(report)

    write(build, args.output, values, run_checks if args.check else None)
    s = _summary(fabric)
    checked = reports[0].counts() if reports else {}
    skipped = reports[0].skipped_checkers if reports else ()
    if args.format == "json":
        out.write(json.dumps({"ok": True, **s, "output": str(args.output),
                              "files": len(build.artifacts), "checked": checked,
                              "skipped_checkers": list(skipped)}, indent=1) + "\n")
        return ExitStatus.OK
    out.write(f"rendered {len(build.artifacts)} files for {s['switches'] + s['nodes']} devices "
              f"into {args.output}/ ({s['sessions']} sessions, {s['routes']} expected routes)\n")
    if args.check:
        done = ", ".join(f"{k} {v}" for k, v in sorted(checked.items())) or "none"
        out.write(f"checked with the daemons' own checkers: {done}\n")
        for name in skipped:
            out.write(f"skipped: {name} is not installed; those files were not checked\n")
    return ExitStatus.OK


def _emit_errors(exc: BgpgenError, fmt: str, out: TextIO, err: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps({"ok": False, "errors": [p.as_dict() for p in exc.problems]},
                             indent=1) + "\n")
        return
    for p in exc.problems:
        err.write(f"error: {p}\n")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    fmt = getattr(args, "format", "text")
    try:
        if args.command == "schema":
            out.write(inventory_schema_text())
            return ExitStatus.OK
        handler = {"validate": _validate, "render": _render, "lab": _lab, "diff": _diff,
                   "deploy": _deploy, "verify": _verify, "run": _run}[args.command]
        return int(handler(args, out))
    except BgpgenError as exc:
        _emit_errors(exc, fmt, out, err)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return ExitStatus.INTERRUPTED
    except Exception as exc:  # an internal error: one line, unless asked for the traceback
        if args.traceback:
            raise
        err.write(f"internal error: {type(exc).__name__}: {exc} "
                  "(rerun with --traceback and report it)\n")
        return ExitStatus.ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
