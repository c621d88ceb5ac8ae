"""The lab supervisor: starts every daemon of a lab as its own child, reports readiness, reaps
children, and on SIGTERM stops them all. Started by ``bgpgen lab up`` in a new session, so it
outlives that command; ``bgpgen lab down`` stops it.

    python -m bgpgen.lab.supervisor LAB_DIR
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .mounts import PIDS
from .nsenter import preexec

READY_TIMEOUT = 30.0


def starttime(pid: int) -> int | None:
    """The process start time (clock ticks since boot): with the PID, names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def _listening(pid: int, port: int) -> bool:
    want = f":{port:04X} "
    for name in ("tcp", "tcp6"):
        try:
            text = Path(f"/proc/{pid}/net/{name}").read_text()
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            cols = line.split()
            if len(cols) > 3 and cols[3] == "0A" and (cols[1] + " ").endswith(want):
                return True
    return False


def _ready(proc: dict[str, Any], pid: int) -> bool:
    cond = proc["ready"]
    if "listen" in cond:
        return _listening(pid, int(cond["listen"]))
    return os.path.exists(f"/proc/{pid}/root{cond['path']}")  # the device's own path


def _tail(path: str, lines: int = 5) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


class Supervisor:
    def __init__(self, lab_dir: Path) -> None:
        self.dir = lab_dir
        self.spec = json.loads((lab_dir / "spec.json").read_text())
        self.children: dict[int, tuple[subprocess.Popen[bytes], dict[str, Any]]] = {}
        self.stopping = False
        self.status: dict[str, Any] = {"status": "starting", "pid": os.getpid(),
                                       "starttime": starttime(os.getpid()), "procs": []}

    def write(self) -> None:
        tmp = self.dir / "supervisor.json.tmp"
        tmp.write_text(json.dumps(self.status, indent=1))
        tmp.rename(self.dir / "supervisor.json")

    def fail(self, message: str) -> None:
        self.status.update(status="failed", error=message)
        self.stop()

    def spawn(self, proc: dict[str, Any]) -> int:
        with open(proc["log"], "ab") as log:
            child = subprocess.Popen(proc["argv"], stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, close_fds=True,
                                     preexec_fn=preexec(proc["netns"], proc["mnt"], proc["uts"]))
        # The device's systemctl finds a unit's main process here (bgpgen.lab.service).
        try:
            Path(f"/proc/{child.pid}/root{PIDS}/{proc['name']}.pid").write_text(f"{child.pid}\n")
        except OSError:
            pass  # it already exited: poll() reports it
        self.children[child.pid] = (child, proc)
        self.status["procs"].append({"device": proc["device"], "name": proc["name"],
                                     "pid": child.pid, "starttime": starttime(child.pid)})
        return child.pid

    def start(self) -> bool:
        later = [p for p in self.spec["procs"] if p.get("after")]
        waiting = {}
        for proc in self.spec["procs"]:
            if not proc.get("after"):
                pid = self.spawn(proc)
                waiting[pid] = self.children[pid]
        self.write()
        deadline = time.monotonic() + READY_TIMEOUT
        while waiting or later:
            for pid, (child, proc) in list(waiting.items()):
                rc = child.poll()
                if rc is not None:
                    self.fail(f"{proc['device']}: {proc['name']} exited with code {rc} at "
                              f"start: {_tail(proc['log'])}")
                    return False
                if _ready(proc, pid):
                    del waiting[pid]
                    for dep in [p for p in later if p["device"] == proc["device"]
                                and p["after"] == proc["name"]]:
                        later.remove(dep)
                        new = self.spawn(dep)
                        waiting[new] = self.children[new]
                        self.write()
            if time.monotonic() > deadline:
                names = ", ".join(f"{p['device']}/{p['name']}"
                                  for p in [*(x for _, x in waiting.values()), *later])
                self.fail(f"not ready after {READY_TIMEOUT:.0f} s: {names}")
                return False
            if waiting:
                time.sleep(0.01)
            elif later:
                self.fail("never started: " + ", ".join(p["name"] for p in later))
                return False
        return self.post()

    def post(self) -> bool:
        running = [(p, subprocess.Popen(p["argv"], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        preexec_fn=preexec(p["netns"], p["mnt"], p["uts"])))
                   for p in self.spec["post"]]
        for p, child in running:
            out, _ = child.communicate(timeout=60)
            if child.returncode != 0:
                text = " | ".join(out.decode(errors="replace").strip().splitlines()[-3:])
                self.fail(f"{p['device']}: {' '.join(p['argv'][:3])} failed: {text}")
                return False
        self.status["status"] = "ready"
        self.write()
        return True

    def stop(self) -> None:
        """Kill and reap every daemon. A lab is torn down whole, so nothing is gained by a
        graceful exit (the peers go too); SIGKILL makes teardown as fast as a shell's."""
        self.stopping = True
        for child, _ in self.children.values():
            if child.poll() is None:
                child.kill()
        for child, _ in self.children.values():
            child.wait()
        if self.status["status"] != "failed":
            self.status["status"] = "stopped"
        self.write()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        if not self.start():
            return 1
        while not self.stopping:
            for pid, (child, proc) in list(self.children.items()):
                rc = child.poll()
                if rc is None:
                    continue
                # Like a service manager: a daemon that exits is started again (deploy
                # restarts gobgpd by ending it), unless a hold file says to leave it down.
                del self.children[pid]
                self.status["procs"] = [p for p in self.status["procs"] if p["pid"] != pid]
                self.status.setdefault("exited", []).append(
                    {"device": proc["device"], "name": proc["name"], "code": rc})
                hold = self.dir / "hold" / f"{proc['device']}.{proc['name']}"
                if not hold.exists():
                    self.spawn(proc)
                self.write()
            time.sleep(0.05)
        self.stop()
        return 0


def main(argv: list[str]) -> int:
    return Supervisor(Path(argv[0])).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
