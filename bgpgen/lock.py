"""One push at a time per fabric: a lock on the controller, named after the fabric, and a lock
file on each device while it is being pushed.

``bgpgen deploy`` and ``bgpgen run`` hold it while they plan and push; a second one refuses at
once, saying who holds it and since when, before it reaches any device. The lock is an
``flock`` on a file (released by the kernel when its holder dies, so a killed deploy never
leaves it stuck); the file says who holds it. It lives in ``$BGPGEN_LOCK_DIR``, else
``/run/lock/bgpgen`` when writable, else ``$XDG_RUNTIME_DIR/bgpgen`` or the temporary directory.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BgpgenError, Problem
from .transport import Transport, shell

#: on each device, while bgpgen pushes it (and until the push is confirmed or rolled back)
TARGET_LOCK = "/run/lock/bgpgen.lock"


class LockedError(BgpgenError):
    """Another push of the same fabric is under way."""


def lock_dir() -> Path:
    given = os.environ.get("BGPGEN_LOCK_DIR")
    if given:
        return Path(given)
    if os.access("/run/lock", os.W_OK):
        return Path("/run/lock/bgpgen")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime or tempfile.gettempdir()) / "bgpgen"


@contextmanager
def fabric_lock(fabric: str, what: str) -> Iterator[None]:
    """Hold the fabric's lock for ``what`` (the command), or refuse in one line."""
    d = lock_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o755)
    path = d / f"{fabric}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(Problem(str(path), fabric, _holder(path), "wait for it to "
                                      "finish: nothing was planned or pushed here")) from None
        info = {"pid": os.getpid(), "user": getpass.getuser(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": what}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another bgpgen holds this fabric's lock"
    return (f"{info.get('command', 'a push')} by {info.get('user')}@{info.get('host')} "
            f"(PID {info.get('pid')}) holds this fabric's lock since {info.get('since')}")


def command_line() -> str:
    return " ".join(["bgpgen", *sys.argv[1:]])[:200]


def lock_target(t: Transport, fabric: str, run: str, what: str) -> None:
    """Take ``t``'s device lock for this run, or refuse in one line naming its holder. A lock
    left by a run of this controller that is gone (killed) is taken over."""
    info = json.dumps({"run": run, "pid": os.getpid(), "user": getpass.getuser(),
                       "host": socket.gethostname(), "fabric": fabric,
                       "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": what})
    take = ('mkdir -p "$(dirname -- "$1")" && { (set -C; cat > "$1") 2>/dev/null '
            '|| { cat -- "$1"; exit 3; }; }')
    create = getattr(t, "create_new", None)  # over SFTP when the transport can: no process
    for _ in range(2):
        made = create(TARGET_LOCK, info + "\n") if create is not None else None
        if made:
            return
        if made is False:
            text = t.read(TARGET_LOCK) or ""
        else:  # the shell: made with set -C, or the holder's text (exit 3)
            res = t.exec(f"sh -c {shell([take])} bgpgen {shell([TARGET_LOCK])}",
                         stdin=info + "\n")
            if res.ok:
                return
            if res.rc != 3:
                raise LockedError(Problem("", t.target.name, f"cannot take the device lock "
                                          f"{TARGET_LOCK}: {res.output.strip()[:160]}", ""))
            text = res.stdout
        try:
            held = json.loads(text or "{}")
        except ValueError:
            held = {}
        if not isinstance(held, dict):  # not bgpgen's: shown as another bgpgen's
            held = {}
        if not (held.get("host") == socket.gethostname() and not _alive(held.get("pid"))):
            who = (f"{held.get('command', 'a push')} by {held.get('user')}@{held.get('host')} "
                   f"(PID {held.get('pid')}) since {held.get('since')}" if held
                   else "another bgpgen")
            raise LockedError(Problem("", t.target.name, f"{t.target.name} is being pushed by "
                                      f"{who}", f"wait for it; if that run is gone, remove "
                                      f"{TARGET_LOCK} on {t.target.name}"))
        t.exec(shell(["rm", "-f", TARGET_LOCK]))  # its run is gone: stale
    raise LockedError(Problem("", t.target.name, f"cannot take the device lock {TARGET_LOCK}",
                              ""))


def unlock_target(t: Transport, run: str) -> None:
    """Release the device lock if this run holds it."""
    remove = getattr(t, "remove_if", None)  # over SFTP when the transport can
    if remove is not None and remove(TARGET_LOCK, json.dumps(run)) is not None:
        return
    t.exec(f"grep -qF {shell([json.dumps(run)])} {shell([TARGET_LOCK])} 2>/dev/null && "
           f"rm -f {shell([TARGET_LOCK])}; true")


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return True  # unknown: not taken over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
