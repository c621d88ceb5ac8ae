"""Run a process inside a lab namespace with its own hostname, without extra execs: the child
joins the network namespace (setns) and a new UTS namespace (unshare) before it execs."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable

CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter(netns: str, hostname: str | None = None) -> None:
    """Join ``/run/netns/<netns>``; with ``hostname``, also a new UTS namespace named so."""
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns}")
    finally:
        os.close(fd)
    if hostname is not None:
        _check(_libc.unshare(CLONE_NEWUTS), "unshare uts")
        name = hostname.encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")


def preexec(netns: str, hostname: str | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` for subprocess (single-threaded callers only)."""
    def run() -> None:
        os.setsid()
        enter(netns, hostname)
    return run


def sysctl(netns: str, values: dict[str, str]) -> None:
    """Write sysctls of a namespace from a short-lived thread that joins it (``setns`` moves only
    the calling thread, and ``/proc/sys/net`` follows the writer's namespace)."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns}")
            finally:
                os.close(fd)
            for key, value in values.items():
                with open(f"/proc/sys/{key}", "w") as fh:
                    fh.write(value)
        except BaseException as exc:  # reported in the caller's thread
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if errors:
        raise errors[0]
