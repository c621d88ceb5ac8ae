"""Each lab device's own filesystem view and hostname, so that it looks like a real host.

A device gets a mount namespace and a UTS namespace, kept alive by bind mounts of their files
under the lab directory (``ns/DEVICE.mnt``, ``ns/DEVICE.uts``), as ``ip netns`` keeps network
namespaces. Inside it:

- ``/etc``, ``/var`` and ``/usr/local`` are overlays: the host's files show through, and every
  change lands in the device's own directory (``dev/DEVICE/fs/...``), never on the host;
- ``/run`` is a fresh tmpfs holding the directories the daemons expect (``/run/frr`` owned by
  frr, ``/run/bird`` by bird, ``/run/sshd``, ...), and ``/root`` an empty one;
- the hostname is the device's name.

So the daemons, the sshd and every command run there see the real paths (``/etc/frr/frr.conf``,
``/etc/bird/bird.conf``, ``/etc/gobgpd.conf``), and deploy reaches a lab device exactly as it
reaches a real one. Everything goes when the namespaces' last process ends and their files are
unmounted (:func:`unmount_all`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import Problem
from .layout import LabError

OVERLAID = ("/etc", "/var", "/usr/local")
PIDS = "/run/bgpgen-lab"  #: inside a device: the lab's service manager's pid files


@dataclass(frozen=True, slots=True)
class DeviceFs:
    """A lab device's directory: its overlays' upper layers, their work dirs, its logs."""

    root: Path
    name: str

    def path(self, inside: str) -> Path:
        """Where a file of the device (under /etc, /var or /usr/local) is on the host."""
        for top in OVERLAID:
            if inside == top or inside.startswith(top + "/"):
                return self.root / "fs" / _key(top) / inside[len(top) + 1:]
        raise ValueError(f"{inside} is not under {', '.join(OVERLAID)}")

    @property
    def log(self) -> Path:
        return self.root / "log"

    def make(self) -> None:
        for top in OVERLAID:
            (self.root / "fs" / _key(top)).mkdir(parents=True, exist_ok=True)
            (self.root / "work" / _key(top)).mkdir(parents=True, exist_ok=True)
        self.log.mkdir(mode=0o750, exist_ok=True)

    def mkdirs(self, inside: str) -> Path:
        """Make the parents of a device path in its upper layer, each with the owner and mode
        the host's directory has (so /etc/frr stays frr:frr 0750 inside the device)."""
        target = self.path(inside)
        top = next(t for t in OVERLAID if inside.startswith(t + "/"))
        parts = Path(inside).relative_to(top).parts[:-1]
        host, upper = Path(top), self.root / "fs" / _key(top)
        for part in parts:
            host, upper = host / part, upper / part
            if not upper.is_dir():
                upper.mkdir()
                try:
                    st = host.stat()
                    os.chown(upper, st.st_uid, st.st_gid)
                    upper.chmod(st.st_mode & 0o7777)
                except OSError:
                    upper.chmod(0o755)
        return target


def _key(top: str) -> str:
    return top.strip("/").replace("/", "-")


def ns_files(lab_dir: Path, device: str) -> tuple[Path, Path]:
    return lab_dir / "ns" / f"{device}.mnt", lab_dir / "ns" / f"{device}.uts"


def prepare(lab_dir: Path) -> None:
    """The directory that holds the namespace files: a private mount of itself (a mount
    namespace can only be pinned on a mount that does not propagate into it)."""
    ns = lab_dir / "ns"
    ns.mkdir(mode=0o700)
    _run(["mount", "--bind", str(ns), str(ns)])
    _run(["mount", "--make-private", str(ns)])


def setup_script(fs: DeviceFs, run_dirs: list[tuple[str, str, int]], labs_root: Path) -> str:
    """The shell lines that make a fresh mount namespace a device's (run under unshare)."""
    # The new namespace starts as a copy of the host's mounts: drop its copies of every lab's
    # namespace files (network and device ones), which would keep those alive after their
    # lab is gone.
    pinned = "|".join(f"^{x}(/|$)" for x in ("/run/netns", str(labs_root)))
    lines = [f"for m in $(awk '{{print $5}}' /proc/self/mountinfo | grep -E "
             f"{shlex.quote(pinned)} | sort -r); do umount -l \"$m\" 2>/dev/null || true; done",
             "set -e", f"hostname {shlex.quote(fs.name)}"]
    for top in OVERLAID:
        upper, work = fs.root / "fs" / _key(top), fs.root / "work" / _key(top)
        lines.append(f"mount -t overlay bgpgen-{_key(top)} -o "
                     f"{shlex.quote(f'lowerdir={top},upperdir={upper},workdir={work}')} {top}")
    lines.append("mount -t tmpfs -o mode=0755,size=64m bgpgen-run /run")
    # root's home is the device's own (empty, as on a fresh host), not the controller's
    lines.append("mount -t tmpfs -o mode=0700,size=16m bgpgen-root /root")
    for path, owner, mode in [("/run/sshd", "root:root", 0o755), (PIDS, "root:root", 0o755),
                              *run_dirs]:
        lines += [f"mkdir -p {shlex.quote(path)}", f"chown {owner} {shlex.quote(path)}",
                  f"chmod {mode:o} {shlex.quote(path)}"]
    return "\n".join(lines)


def create(lab_dir: Path, fs: DeviceFs, run_dirs: list[tuple[str, str, int]],
           labs_root: Path) -> None:
    """A device's mount and UTS namespaces, pinned by files. ``run_dirs``: (path, owner,
    mode) under /run."""
    mnt, uts = ns_files(lab_dir, fs.name)
    mnt.touch()
    uts.touch()
    _run(["unshare", f"--mount={mnt}", f"--uts={uts}", "--propagation", "private",
          "sh", "-c", setup_script(fs, run_dirs, labs_root)])


def unmount_all(lab_dir: Path) -> int:
    """Unmount everything mounted at or under ``lab_dir`` on the host, deepest first (the
    namespace files, their directory). Works after any crash. Returns how many."""
    prefix = str(lab_dir)
    mounts = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                mounts.append(point)
    for point in sorted(set(mounts), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    return len(mounts)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise LabError(Problem("", "lab", f"{' '.join(argv[:3])} failed: "
                               f"{proc.stderr.strip().splitlines()[-1:] or proc.returncode}",
                               "run bgpgen lab down, then retry"))
