"""One push at a time per fabric: a lock on the controller, named after the fabric.

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
