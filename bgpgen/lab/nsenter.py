"""Run a process inside a lab device without extra execs: the child joins the device's network,
UTS and mount namespaces (setns) before it execs."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter(netns: str, mnt: str | None = None, uts: str | None = None) -> None:
    """Join ``/run/netns/<netns>``, and a device's mount and UTS namespaces (their files under
    the lab directory). Every file is opened first: once in the device's mount namespace, the
    host's paths are not there any more."""
    fds = [(os.open(f"/run/netns/{netns}", os.O_RDONLY), CLONE_NEWNET, netns)]
    for path, kind in ((uts, CLONE_NEWUTS), (mnt, CLONE_NEWNS)):
        if path is not None:
            fds.append((os.open(path, os.O_RDONLY), kind, path))
    try:
        for fd, kind, what in fds:
            _check(_libc.setns(fd, kind), f"setns {what}")
    finally:
        for fd, _, _ in fds:
            os.close(fd)
    if mnt is not None:
        os.chdir("/")


def preexec(netns: str, mnt: str | None = None, uts: str | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` for subprocess (single-threaded callers only)."""
    def run() -> None:
        os.setsid()
        enter(netns, mnt, uts)
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
