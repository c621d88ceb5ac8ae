"""The ``bgpgen`` command: a thin shell over the library. One ``main()`` turns known errors into
one line per problem on stderr and an exit status; ``--traceback`` shows the rest."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn, TextIO

import argcomplete
from argcomplete.shell_integration import shellcode

from . import __version__, cli_fleet, gctune
from .check import check_build, raise_on_failure
from .errors import BgpgenError
from .model import SecretRef
from .render import check_output_dir, input_digests, render, update, write
from .schema import inventory_schema_text, per_file_schema_text
from .secrets import SecretMode, resolve_all
from .validate import load_fabric


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    CHANGES = 2
    VERIFY_FAILED = 3
    INTERRUPTED = 130


EXIT_CODES = """exit codes (every command):
  0    done; diff: no changes; verify: everything holds
  1    an error: bad input (inventory, playbook, options), a device that could not be
       reached or pushed, a usage error
  2    diff: there are changes to make (CI gates on it)
  3    verify: something is missing, down or unexpected
  130  interrupted (Ctrl-C)"""


class UsageError(Exception):
    """The command line is wrong; carries the parser whose usage to show."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser, self.message = parser, message


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised (exit 1, not argparse's 2: 2 means "changes")."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def _did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        options = re.findall(r"'([^']*)'", choice.group(2))
        word = choice.group(1)
    else:
        extra = re.search(r"unrecognized arguments: (\S+)", message)
        if not extra:
            return ""
        options = [o for a in parser._actions for o in a.option_strings]
        word = extra.group(1).split("=")[0]
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _usage(exc: UsageError, err: TextIO) -> int:
    err.write(f"error: {exc.parser.prog}: {exc.message}"
              f"{_did_you_mean(exc.parser, exc.message)}\n{exc.parser.format_usage()}")
    return ExitStatus.ERROR


def _subcommand(parser: argparse.ArgumentParser,
                args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)command that was given."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for dest in ("command", "lab_command"):
                name = getattr(args, dest, None)
                if name in action.choices:
                    return _subcommand(action.choices[name], args)
    return parser


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bgpgen", description="BGP configs for both ends of every "
                "session between Kubernetes nodes and their ToR switches.",
                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
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
                   help="check every file with its daemon's own checker (gobgpd -d, bird -p, "
                   "vtysh -C, ...) before writing")
    r.add_argument("--force", action="store_true",
                   help="replace the output directory even if it holds another fabric's build")
    r.add_argument("--templates", type=Path, default=None,
                   help="a directory of template overrides (same layout as bgpgen/templates)")
    r.add_argument("--secrets", choices=[m.value for m in SecretMode], default="resolve",
                   help="resolve: write secret values (files 0600); placeholder: write "
                   "<secret:NAME> tokens, for CI builds and diffs without secrets")
    im = sub.add_parser("import", help="the cluster's nodes into the inventory (kubectl get "
                        "nodes -o json)")
    common(im)
    im.add_argument("--nodes", required=True, metavar="FILE",
                    help="kubectl get nodes -o json output, or - for stdin")
    im.add_argument("--group", default=None, metavar="NAME",
                    help="the node_group of nodes new to the inventory (their speaker and AS)")
    im.add_argument("--file", type=Path, default=None, metavar="FILE",
                    help="the inventory file to write the nodes into (default: the one that "
                    "holds nodes:, else nodes.yaml)")
    sc = sub.add_parser("schema", help="print the inventory JSON Schema (for editors)")
    sc.add_argument("--per-file", action="store_true",
                    help="the schema of one inventory file (no top-level key required), for "
                    "an editor's yaml-language-server")
    c = sub.add_parser("completion", help="print the shell completion script: "
                       "eval \"$(bgpgen completion bash)\"")
    c.add_argument("shell", choices=("bash", "zsh", "fish", "tcsh"), nargs="?", default="bash")
    _lab_parser(sub)
    cli_fleet.add_parsers(sub)
    return p


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
    u.add_argument("--bastion", action="store_true",
                   help="a bastion host that is the only way in to the devices (the lab's "
                   "ssh config reaches them with ProxyJump)")
    u.add_argument("--deploy-user", metavar="NAME", default=None,
                   help="a non-root user on every device, with passwordless sudo, that the "
                   "lab's ssh config logs in as (default: root)")
    named(lsub.add_parser("status", help="devices, processes and BGP session states"))
    named(lsub.add_parser("down", help="remove everything the lab made (idempotent)"))
    e = lsub.add_parser("exec", help="run a command on a lab device: lab exec DEV -- CMD")
    named(e)
    e.add_argument("device")
    e.add_argument("argv", nargs=argparse.REMAINDER)
    sh = lsub.add_parser("ssh", help="ssh to a lab device (as deploy does)")
    named(sh)
    sh.add_argument("--cli", action="store_true", help="the device's own CLI port (switches)")
    sh.add_argument("device")
    sh.add_argument("argv", nargs=argparse.REMAINDER)


def _lab(args: argparse.Namespace, out: TextIO) -> int:
    from . import lab
    cmd = args.lab_command
    if cmd == "up":
        info = lab.up(load_fabric(args.inventory), args.name, args.mgmt_range, args.render,
                      args.templates, args.deploy_user, args.bastion, args.inventory)
        if args.format == "json":
            out.write(json.dumps(info, indent=1) + "\n")
        else:
            cfg = info["ssh_config"]
            out.write(f"lab {args.name} is up: {len(info['devices'])} devices on "
                      f"{info['mgmt_net']}; bgpgen lab status --name {args.name}; "
                      f"bgpgen lab down --name {args.name}\n"
                      f"reach it as a fleet: ssh -F {cfg} DEVICE, or bgpgen deploy "
                      f"--ssh-config {cfg} (the same as --lab {args.name})\n")
            for node in info.get("external", []):
                kind = info["devices"].get(node, {}).get("platform", "external")
                said = "external speaker" if kind == "external" else f"{kind} node"
                out.write(f"{node}: {said}, no daemon started: run your own in it "
                          f"with bgpgen lab exec --name {args.name} {node} -- PROGRAM ...; "
                          f"bgpgen verify --lab {args.name} --wait 60 tells when its routes "
                          "arrive\n")
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
    argv = _own_options(args)
    if cmd == "exec":
        return ExitStatus(min(lab.exec_in(args.name, args.device, argv or ["sh"]), 1))
    out.flush()
    os.execvp("ssh", [*lab.ssh_argv(args.name, args.device, args.cli), *argv])
    return ExitStatus.ERROR  # pragma: no cover - execvp does not return


def _own_options(args: argparse.Namespace) -> list[str]:
    """``lab exec DEV [--name N] -- CMD``: options given after the device, before ``--``, are
    lab exec's own (argparse hands everything after the device to the command)."""
    argv = list(args.argv)
    if "--" in argv:
        mine, argv = argv[:argv.index("--")], argv[argv.index("--") + 1:]
        while mine:
            opt = mine.pop(0)
            if opt.startswith("--name="):
                args.name = opt.split("=", 1)[1]
            elif opt == "--name" and mine:
                args.name = mine.pop(0)
            elif opt == "--cli" and args.lab_command == "ssh":
                args.cli = True
            else:
                raise UsageError(_subcommand(_parser(), args),
                                 f"unrecognized arguments before --: {opt}")
    return argv


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

    def values(refs: tuple[SecretRef, ...]) -> dict[str, str] | None:
        return resolve_all(refs) if args.secrets == SecretMode.RESOLVE else None

    reports = []
    unchanged: tuple[str, ...] = ()
    if args.check:  # everything rendered again, checked in the new directory before the swap
        build = render(fabric, args.templates)

        def run_checks(tmp: Path) -> None:
            report = check_build(build, tmp, values(build.secrets))
            raise_on_failure(report, args.output)
            reports.append(report)

        write(build, args.output, values(build.secrets), run_checks, args.force,
              input_digests(fabric, args.templates))
        files, rewritten = len(build.artifacts), len(build.artifacts)
    else:  # only what changed: devices whose inputs changed, files whose bytes changed
        done = update(fabric, args.output, values, args.templates, args.force)
        files, rewritten, unchanged = done.files, len(done.rewritten), done.unchanged
    s = _summary(fabric)
    checked = reports[0].counts() if reports else {}
    skipped = reports[0].skipped_checkers if reports else ()
    if args.format == "json":
        out.write(json.dumps({"ok": True, **s, "output": str(args.output),
                              "files": files, "rewritten": rewritten,
                              "unchanged_devices": len(unchanged), "checked": checked,
                              "skipped_checkers": list(skipped)}, indent=1) + "\n")
        return ExitStatus.OK
    out.write(f"rendered {files} files for {s['switches'] + s['nodes']} devices "
              f"into {args.output}/ ({s['sessions']} sessions, {s['routes']} expected routes)\n")
    if unchanged or rewritten < files:
        out.write(f"{rewritten} files rewritten; {len(unchanged)} devices' inputs unchanged "
                  "(not rendered again)\n")
    if args.check:
        done_checks = ", ".join(f"{k} {v}" for k, v in sorted(checked.items())) or "none"
        out.write(f"checked with the daemons' own checkers: {done_checks}\n")
        for name in skipped:
            out.write(f"skipped: {name} is not installed; those files were not checked\n")
    return ExitStatus.OK


def _import(args: argparse.Namespace, out: TextIO) -> int:
    from . import kube
    done = kube.import_nodes(args.inventory, args.nodes, args.group, args.file)
    for line in done.changes:
        out.write(line + "\n")
    if not done.written:
        out.write(f"{done.file}: its {done.nodes} nodes are the cluster's; nothing written\n")
    else:
        out.write(f"{done.nodes} nodes from the cluster written into {done.file} "
                  f"({len(done.changes)} changes; comments in that file are not kept)\n")
    return ExitStatus.OK


def _emit_errors(exc: BgpgenError, fmt: str, out: TextIO, err: TextIO) -> None:
    if fmt == "json":
        out.write(json.dumps({"ok": False, "errors": [p.as_dict() for p in exc.problems]},
                             indent=1) + "\n")
        return
    for p in exc.problems:
        err.write(f"error: {p}\n")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None, exiting: bool = False) -> int:
    """Run one command; ``exiting``: the process ends after it (what it built is frozen out of
    the cyclic collector rather than walked by it, see :func:`entry`)."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    argcomplete.autocomplete(parser)  # answers the shell and exits when completing, else nothing
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # say it with the subcommand's options and usage
            sub = _subcommand(parser, args)
            sub.error(f"unrecognized arguments: {' '.join(extra)}")
    except UsageError as exc:
        return _usage(exc, err)
    fmt = getattr(args, "format", "text")
    try:
        if args.command == "schema":
            out.write(per_file_schema_text() if args.per_file else inventory_schema_text())
            return ExitStatus.OK
        if args.command == "completion":
            out.write(shellcode(["bgpgen"], shell=args.shell))
            return ExitStatus.OK
        handler = {"validate": _validate, "render": _render, "lab": _lab, "import": _import,
                   "diff": cli_fleet.diff, "deploy": cli_fleet.deploy,
                   "verify": cli_fleet.verify, "run": cli_fleet.run,
                   "graph": cli_fleet.graph}[args.command]
        if args.command in ("validate", "render") or getattr(args, "against", None):
            # offline commands: a short process that builds large acyclic structures; the
            # cyclic collector would walk them again and again for nothing (gctune)
            with gctune.paused(freeze=exiting):
                return int(handler(args, out))
        return int(handler(args, out))
    except UsageError as exc:
        return _usage(exc, err)
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


def entry() -> NoReturn:
    """The ``bgpgen`` command: :func:`main`, then exit. What the run built is frozen out of the
    cyclic collector first: the interpreter's last collection at exit would otherwise walk the
    whole model once more for nothing (0.5 s at 100,000 nodes), just before the memory goes
    back to the system anyway. For an offline command this happens as the command ends: turning
    the collector back on would otherwise start a collection of everything built (0.4 s)."""
    code = main(exiting=True)
    gctune.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
