"""The fault-injection matrix of a push: platform x step x fault (issue 11).

Each case pushes one device of a running lab from the config it runs to the other one (dc1's
timers, hold 9 <-> 12, which touch every session), through bgpgen's own transaction over SSH,
and injects one fault right after one step of the push (right before it, for a full disk):

- ``daemon-stalled``: the BGP daemon is stopped (SIGSTOP) for 8 s; bgpgen's command timeout
  is 3 s, so the next step that talks to the daemon times out;
- ``sshd-stalled``: the sshd process serving bgpgen's session is stopped for 8 s; the next
  step times out on the client, and bgpgen goes on over a new session;
- ``sigint``: a real SIGINT reaches the process running the deploy (bgpgen's Ctrl-C handler
  installed, as the CLI installs it);
- ``disk-full``: the filesystem the new file is written to has no space left.

After each case the assertion is the same: on the device, the config file and what the
daemon runs agree; the deploy's report says which of the two configs that is (``runs``) and
its status matches; no temporary file and no device lock is left behind. The matrix (what
bgpgen reported, per case) is written to ``$BGPGEN_ARTIFACTS/fault-matrix.md`` (default
``/tmp/bgpgen-artifacts``).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nornir.core.inventory import Host
from rich.console import Console

from bgpgen import lab, load_fabric, render
from bgpgen.cli_fleet import _interruptible
from bgpgen.deploy import Transaction
from bgpgen.fleet import TRANSPORT, close, nornir_for, ssh_transport
from bgpgen.lock import TARGET_LOCK
from bgpgen.platforms import bird
from bgpgen.platforms.base import Runs, Status
from bgpgen.targets import Target, from_inventory
from bgpgen.transport import CommandResult, SshTransport

from .conftest import EXAMPLES, SECRET, require_lab_environment
from .lab_helpers import gobgp_json, run_on, timers_inventory, wait_for

DEVICES = {"gobgp": "node-r1-01", "bird": "node-r1-02", "frr": "tor-r1-a"}
DAEMON = {"gobgp": "gobgpd", "bird": "bird", "frr": "bgpd"}
#: where each platform's new file goes first (what a full disk stops)
UPLOAD_DIR = {"gobgp": "/etc", "bird": "/etc/bird", "frr": "/var/run/frr"}
STEPS = ("upload", "check", "rename", "activate", "confirm")
FAULTS = ("daemon-stalled", "sshd-stalled", "sigint")
STALL = 8.0
COMMAND_TIMEOUT = 3.0
#: what each step is on each platform (FRR applies a delta: it has no rename)
OPERATION = {
    "gobgp": {"upload": "write of gobgpd.conf.bgpgen-new-*", "check": "gobgpd -d",
              "rename": "mv over /etc/gobgpd.conf", "activate": "systemctl restart gobgpd",
              "confirm": "read back (gobgp -j neighbor)"},
    "bird": {"upload": "write of bird.conf.bgpgen-new-*", "check": "birdc configure check",
             "rename": "mv over /etc/bird/bird.conf", "activate": "birdc configure ... timeout",
             "confirm": "birdc configure confirm"},
    "frr": {"upload": "write of the candidate", "check": "keep the running config "
            "(frr.conf.bgpgen-prev)", "activate": "frr-reload.py --reload",
            "confirm": "save frr.conf"},
}


def _step(platform: str, kind: str, arg: str) -> str | None:
    """Which step of a push an operation on the transport is."""
    if platform == "gobgp":
        return ("upload" if kind == "write" and ".bgpgen-new-" in arg else
                "check" if kind == "exec" and arg.startswith("gobgpd -d") else
                "rename" if kind == "rename" and arg == "/etc/gobgpd.conf" else
                "activate" if kind == "exec" and arg.startswith("systemctl") and (
                    " restart " in arg or "--signal=HUP" in arg) else
                "confirm" if kind == "exec" and "-j neighbor" in arg else None)
    if platform == "bird":
        return ("upload" if kind == "write" and ".bgpgen-new-" in arg else
                "check" if kind == "exec" and "configure check" in arg else
                "rename" if kind == "rename" and arg == "/etc/bird/bird.conf" else
                "activate" if kind == "exec" and " timeout " in arg and "configure" in arg else
                "confirm" if kind == "exec" and "configure confirm" in arg else None)
    return ("upload" if kind == "write" and "bgpgen-candidate-" in arg else
            "check" if kind == "write" and arg.endswith("frr.conf.bgpgen-prev") else
            "activate" if kind == "exec" and "frr-reload.py --reload" in arg else
            "confirm" if kind == "write" and arg == "/etc/frr/frr.conf" else None)


@dataclass
class Injection:
    """One fault, fired once at one step (after it; before it for a full disk)."""

    platform: str
    step: str
    fire: Callable[[], None]
    before: bool = False
    fired: bool = False
    armed: bool = False  #: the push has begun (its first write): plans do not count
    seen: list[str] = field(default_factory=list)

    def at(self, kind: str, arg: str, before: bool) -> None:
        step = _step(self.platform, kind, arg)
        if step == "upload":
            self.armed = True
        if self.armed and step is not None and not before:
            self.seen.append(step)
        if self.armed and not self.fired and step == self.step and before == self.before:
            self.fired = True
            self.fire()


@dataclass
class Injecting:
    """A transport passing every operation to bgpgen's own, telling the injection."""

    inner: SshTransport
    inj: Injection

    @property
    def target(self) -> Target:
        return self.inner.target

    def exec(self, command: str, timeout: float | None = None,
             stdin: str | None = None) -> CommandResult:
        self.inj.at("exec", command, True)
        res = self.inner.exec(command, timeout, stdin)
        self.inj.at("exec", command, False)
        return res

    def read(self, path: str) -> str | None:
        return self.inner.read(path)

    def write(self, path: str, text: str, mode: int = 0o600, owner: str | None = None) -> None:
        self.inj.at("write", path, True)
        self.inner.write(path, text, mode, owner)
        self.inj.at("write", path, False)

    def rename(self, src: str, dst: str) -> None:
        self.inj.at("rename", dst, True)
        self.inner.rename(src, dst)
        self.inj.at("rename", dst, False)


# --- the lab and what runs on it ---------------------------------------------------------------

@dataclass
class Fleet:
    name: str
    entries: dict[str, dict[str, Any]]
    builds: dict[str, Any]               #: "A" (hold 9), "B" (hold 12)
    values: dict[str, str]
    targets: dict[str, Target]
    runs: dict[str, str] = field(default_factory=dict)  #: device -> "A" / "B"
    rows: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    require_lab_environment("fault-matrix tests")
    old = os.environ.get("BGPGEN_TOR_MD5")
    os.environ["BGPGEN_TOR_MD5"] = SECRET
    name = f"fm{os.getpid() % 10000}"
    fabric = load_fabric(EXAMPLES["dc1"])
    lab.up(fabric, name, render_configs=True)
    try:
        info = lab.overlay(name)
        f = Fleet(name, info["devices"],
                  {"A": render(fabric),
                   "B": render(load_fabric(timers_inventory(tmp_path_factory.mktemp("b"))))},
                  {"tor-md5": SECRET},
                  from_inventory(fabric, Path(info["ssh_config"]), set(DEVICES.values())),
                  {d: "A" for d in DEVICES.values()})
        wait_for(lambda: all(s == "Established" for s in _sessions(f, "node-r1-01")), 60,
                 "the lab's sessions")
        yield f
        _write_matrix(f)
    finally:
        lab.down(name)
        if old is None:
            os.environ.pop("BGPGEN_TOR_MD5", None)
        else:
            os.environ["BGPGEN_TOR_MD5"] = old


def _sessions(f: Fleet, device: str) -> list[str]:
    data = gobgp_json(f.entries[device], "neighbor") or []
    return [str(n.get("state", {}).get("session_state")) == "6" and "Established" or "down"
            for n in data]


def _cat(f: Fleet, device: str, path: str) -> str:
    r = run_on(f.entries[device], ["cat", "--", path])
    assert r.returncode == 0, r.stderr
    return r.stdout


def _version_of_hold(hold: set[int]) -> str:
    assert len(hold) == 1, hold
    return {9: "A", 12: "B"}[hold.pop()]


def versions(f: Fleet, platform: str) -> tuple[str, str]:
    """(the config file's version, the running daemon's version) of the platform's device."""
    dev = DEVICES[platform]
    e = f.entries[dev]
    if platform == "gobgp":
        conf = tomllib.loads(_cat(f, dev, "/etc/gobgpd.conf"))
        file_v = _version_of_hold({n["timers"]["config"]["hold-time"] for n in conf["neighbors"]})
        running = wait_for(lambda: (lambda x: x if isinstance(x, list) and x else None)(
            gobgp_json(e, "neighbor")), 30, "gobgpd answers")  # not {"error": ...}
        return file_v, _version_of_hold({n["timers"]["config"]["hold_time"] for n in running})
    if platform == "bird":
        marks = {bird.mark_of(f.builds[v].files_of(dev)["bird.conf"].text): v for v in "AB"}
        file_v = marks[bird.mark_of(_cat(f, dev, "/etc/bird/bird.conf"))]
        r = wait_for(lambda: (x := run_on(e, ["birdc", "eval", bird.MARK])).returncode == 0
                     and x, 30, "bird answers")
        return file_v, marks[r.stdout.splitlines()[1].strip()]

    def frr_version(text: str) -> str:
        found = set(re.findall(r"neighbor K8S-NODES-V4 timers (\d+) (\d+)", text))
        assert len(found) == 1, found
        return {("3", "9"): "A", ("4", "12"): "B"}[found.pop()]
    running = wait_for(lambda: (x := run_on(e, ["vtysh", "-c", "show running-config"]))
                       .returncode == 0 and x, 30, "bgpd answers")
    return frr_version(_cat(f, dev, "/etc/frr/frr.conf")), frr_version(running.stdout)


def _daemon_runs(f: Fleet, platform: str) -> str | None:
    """What the daemon runs now, None while a push is half-way (a reload mid-way shows
    neither config)."""
    try:
        return versions(f, platform)[1]
    except (AssertionError, KeyError):
        return None


def leftovers(f: Fleet, platform: str) -> list[str]:
    dev = DEVICES[platform]
    r = run_on(f.entries[dev], ["sh", "-c", f"ls -a {UPLOAD_DIR[platform]}; ls -a /etc/bird "
                                f"/var/run/frr /etc/frr 2>/dev/null; ls {TARGET_LOCK} 2>/dev/null; "
                                "true"])
    return sorted({ln for ln in r.stdout.split() if re.search(
        r"bgpgen-new-|bgpgen-candidate-|\.bgpgen-[A-Za-z0-9]{6}$|bgpgen\.lock", ln)})


# --- faults ------------------------------------------------------------------------------------

def _pid_of(f: Fleet, device: str, daemon: str) -> int:
    procs = lab.status(f.name)["devices"][device]["processes"]
    return int(next(p["pid"] for p in procs if p["name"] == daemon))


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kid = int(stat.parent.name)
            kids += [kid, *_children(kid)]
    return kids


class Stall:
    """SIGSTOP some processes now, SIGCONT them ``STALL`` seconds later (or at the end)."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.timer: threading.Timer | None = None

    def stop(self, pids: list[int]) -> None:
        self.pids = pids
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        self.timer = threading.Timer(STALL, self.resume)
        self.timer.start()

    def resume(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # it was restarted meanwhile

    def finish(self) -> None:
        if self.timer is not None:
            self.timer.join()
        self.resume()


def _disk_full(f: Fleet, platform: str) -> Callable[[], None]:
    """Fills the filesystem the new file goes to: /run (the device's tmpfs) is filled up;
    /etc and /etc/bird get a full tmpfs copy mounted over them, in the device's namespace."""
    dev, where = DEVICES[platform], UPLOAD_DIR[platform]
    if where.startswith("/var/run"):
        script = "dd if=/dev/zero of=/run/bgpgen-test-filler bs=1M 2>/dev/null; true"
    else:
        script = (f"mkdir -p /tmp/bgpgen-full && cp -a {where}/. /tmp/bgpgen-full/ && "
                  f"mount -t tmpfs -o size=$(( $(du -sk {where} | cut -f1) + 512 ))k "
                  f"bgpgen-test-full {where} && cp -a /tmp/bgpgen-full/. {where}/ && "
                  f"(dd if=/dev/zero of={where}/.bgpgen-test-filler bs=4k 2>/dev/null; true)")
    return lambda: _must(run_on(f.entries[dev], ["sh", "-c", script], timeout=60))


def _disk_free(f: Fleet, platform: str) -> None:
    dev, where = DEVICES[platform], UPLOAD_DIR[platform]
    if where.startswith("/var/run"):
        script = "rm -f /run/bgpgen-test-filler"
    else:
        script = f"umount {where} && rm -rf /tmp/bgpgen-full"
    _must(run_on(f.entries[dev], ["sh", "-c", script], timeout=60))


def _must(r: Any) -> None:
    assert r.returncode == 0, r.stderr


# --- one case ----------------------------------------------------------------------------------

def push(f: Fleet, platform: str, step: str, fault: str, gate: bool = False) -> None:
    dev = DEVICES[platform]
    before = f.runs[dev]
    after = "B" if before == "A" else "A"
    stall = Stall()
    tx: Transaction | None = None

    def fire() -> None:
        if fault == "daemon-stalled":
            stall.stop([_pid_of(f, dev, DAEMON[platform])])
        elif fault == "sshd-stalled":  # the session's own sshd processes, not the listener
            stall.stop(_children(_pid_of(f, dev, "sshd")))
        elif fault == "sigint":  # a real SIGINT; the push goes on once it is handled
            os.kill(os.getpid(), signal.SIGINT)
            wait_for(lambda: tx is not None and tx.interrupted, 5, "the SIGINT handled")
        else:
            _disk_full(f, platform)()

    inj = Injection(platform, step, fire, before=fault == "disk-full")
    nr = nornir_for([f.builds[after].fabric.device(dev)], f.targets, 1, COMMAND_TIMEOUT)

    def factory(host: Host, target: Target) -> Injecting:
        return Injecting(ssh_transport(host, target, nr.config), inj)
    nr.inventory.hosts[dev].data[TRANSPORT] = factory
    start = time.monotonic()
    try:
        tx = Transaction(nr, f.builds[after], f.values, timeout=20)
        console = Console(file=io.StringIO())
        with _interruptible(tx.interrupt, console) if fault == "sigint" else nullcontext():
            report = tx.run(gate_wait=20 if gate else None)
    finally:
        stall.finish()
        if fault == "disk-full" and inj.fired:
            on_full = versions(f, platform)  # judged before the disk is freed
            _disk_free(f, platform)
        close(nr)
    seconds = time.monotonic() - start
    assert inj.fired, f"step {step} never happened; steps seen: {inj.seen}"
    (res,) = report.results
    file_v, daemon_v = on_full if fault == "disk-full" else versions(f, platform)
    row = (f"| {platform} | {step}: {OPERATION[platform][step]} | {fault}"
           f"{' (gate)' if gate else ''} | {res.status} | {res.runs} | {file_v}={daemon_v} | "
           f"{seconds:.1f} | {res.message[:90]} |")
    f.rows.append(row)
    assert file_v == daemon_v, f"file and daemon apart: {row}"
    assert res.runs is not Runs.UNKNOWN, row
    assert file_v == (after if res.runs is Runs.NEW else before), f"report is wrong: {row}"
    assert (res.status is Status.CHANGED) == (res.runs is Runs.NEW), row
    assert not leftovers(f, platform), (leftovers(f, platform), row)
    assert report.interrupted == (fault == "sigint"), row
    if res.status is Status.CHANGED:
        assert "Traceback" not in res.message
    f.runs[dev] = file_v


CASES = [(p, s, x) for p in DEVICES for s in STEPS for x in FAULTS
         if s in OPERATION[p]]


@pytest.mark.parametrize("platform,step,fault", CASES,
                         ids=[f"{p}-{s}-{x}" for p, s, x in CASES])
def test_fault(fleet: Fleet, platform: str, step: str, fault: str) -> None:
    push(fleet, platform, step, fault)


@pytest.mark.parametrize("platform", sorted(DEVICES))
def test_disk_full(fleet: Fleet, platform: str) -> None:
    """Nothing is written, nothing is left: no temporary file with a secret in it."""
    push(fleet, platform, "upload", "disk-full")


@pytest.mark.parametrize("platform", sorted(DEVICES))
def test_sigint_before_the_gate_rolls_back(fleet: Fleet, platform: str) -> None:
    """deploy --verify interrupted while a push is activated: the push finishes, nothing
    confirms it, so it is rolled back; the report says the device runs its previous config."""
    push(fleet, platform, "activate", "sigint", gate=True)
    assert fleet.rows[-1].split(" | ")[3] == "rolled_back", fleet.rows[-1]


def _write_matrix(f: Fleet) -> None:
    out = Path(os.environ.get("BGPGEN_ARTIFACTS", "/tmp/bgpgen-artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    head = ("| platform | step | fault | status | runs | file=daemon | seconds | message |\n"
            "|---|---|---|---|---|---|---|---|\n")
    (out / "fault-matrix.md").write_text(head + "\n".join(f.rows) + "\n")


# --- two pushes at once, and a real Ctrl-C of the CLI ------------------------------------------

def _plain_push(f: Fleet, platform: str) -> Any:
    """One push of the platform's device to the other config, no fault."""
    dev = DEVICES[platform]
    after = "B" if f.runs[dev] == "A" else "A"
    nr = nornir_for([f.builds[after].fabric.device(dev)], f.targets, 1, COMMAND_TIMEOUT)
    try:
        (res,) = Transaction(nr, f.builds[after], f.values, timeout=20).run().results
    finally:
        close(nr)
    f.runs[dev] = versions(f, platform)[0]
    return res


def _hold_lock(f: Fleet, device: str, holder: dict[str, Any]) -> None:
    text = json.dumps(holder).replace("'", "")
    _must(run_on(f.entries[device], ["sh", "-c", f"mkdir -p /run/lock && printf '%s\\n' "
                                     f"'{text}' > {TARGET_LOCK}"]))


def _ctrl_c(args: list[str], env: dict[str, str], ready: Callable[[], bool],
            what: str) -> tuple[int, str, str]:
    """Run the CLI, send it a real SIGINT once ``ready()``; (exit code, stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "bgpgen.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,  # as from a terminal:
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for(lambda: proc.poll() is None and ready(), 60, what)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def test_a_device_being_pushed_is_refused_with_its_holder(fleet: Fleet) -> None:
    """Another controller's push holds the device's lock: this push refuses that device,
    naming who and since when, and changes nothing; a lock left by a run of this controller
    that is gone is taken over."""
    dev = DEVICES["bird"]
    before = versions(fleet, "bird")
    _hold_lock(fleet, dev, {"run": "1-abc", "pid": 4242, "user": "alice",
                            "host": "controller-2", "since": "2026-11-27 01:00:00 UTC",
                            "command": "bgpgen deploy --limit rack:r1"})
    res = _plain_push(fleet, "bird")
    assert res.status is Status.FAILED and res.runs is Runs.PREVIOUS, res
    assert "being pushed by bgpgen deploy --limit rack:r1 by alice@controller-2 (PID 4242) " \
           "since 2026-11-27 01:00:00 UTC" in res.message, res.message
    assert versions(fleet, "bird") == before
    assert "alice" in _cat(fleet, dev, TARGET_LOCK)  # not ours to remove
    gone = subprocess.Popen(["true"])
    gone.wait()
    _hold_lock(fleet, dev, {"run": "2-def", "pid": gone.pid, "user": "root",
                            "host": socket.gethostname(), "since": "2026-11-27 01:05:00 UTC",
                            "command": "bgpgen deploy"})
    res = _plain_push(fleet, "bird")
    assert res.status is Status.CHANGED and res.runs is Runs.NEW, res
    assert not leftovers(fleet, "bird")


def test_ctrl_c_of_the_cli_mid_push(fleet: Fleet, tmp_path: Path) -> None:
    """A real Ctrl-C (SIGINT) to ``bgpgen deploy`` while it pushes the whole fabric one device
    at a time: exit 130, the table says per device what it runs, and every device's file and
    daemon agree (verify finds no drift; what was not pushed is what diff --live still
    shows)."""
    inv = {"A": EXAMPLES["dc1"], "B": timers_inventory(tmp_path)}
    target = "B" if fleet.runs[DEVICES["frr"]] == "A" else "A"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BGPGEN_TOR_MD5": SECRET}
    # switches go first, one at a time: Ctrl-C once the first one runs the new config
    code, out, err = _ctrl_c(["deploy", "-i", str(inv[target]), "--lab", fleet.name, "--yes",
                              "--workers", "1", "--format", "json"], env,
                             lambda: _daemon_runs(fleet, "frr") == target,
                             "the first switch pushed")
    assert code == 130, err
    assert "Traceback" not in err and "interrupted: no new pushes" in err, err
    rep = json.loads(out)
    assert rep["interrupted"] is True
    by = {r["status"] for r in rep["results"]}
    assert "skipped" in by and "changed" in by, rep["results"]
    for r in rep["results"]:
        assert (r["status"] == "changed") == (r["runs"] == "new"), r
    pushed = {r["device"] for r in rep["results"] if r["runs"] == "new"}
    for platform, dev in DEVICES.items():
        file_v, daemon_v = versions(fleet, platform)
        assert file_v == daemon_v
        was = fleet.runs[dev]  # a device already on the target config is left unchanged
        assert file_v == (target if dev in pushed else was), (dev, file_v, was, pushed)
        fleet.runs[dev] = file_v
    v = subprocess.run([sys.executable, "-m", "bgpgen.cli", "verify", "-i", str(inv[target]),
                        "--lab", fleet.name, "--format", "json"], capture_output=True, text=True,
                       env=env)
    assert not [x for x in json.loads(v.stdout)["findings"] if x["kind"] == "drift"], v.stdout
    d = subprocess.run([sys.executable, "-m", "bgpgen.cli", "diff", "-i", str(inv[target]),
                        "--lab", fleet.name, "--live", "--format", "json"], capture_output=True,
                       text=True, env=env)
    todo = {x["device"] for x in json.loads(d.stdout)["devices"] if x["action"] != "none"}
    assert todo == {r["device"] for r in rep["results"] if r["status"] == "skipped"}, d.stdout


def test_ctrl_c_of_a_playbook_run(fleet: Fleet, tmp_path: Path) -> None:
    """A real Ctrl-C during ``bgpgen run``: the batch under way is rolled back (its pushes
    waited for their gate), no later batch starts, exit 130, and every device's file and
    daemon agree on its previous config."""
    inv = {"A": EXAMPLES["dc1"], "B": timers_inventory(tmp_path)}
    dev = DEVICES["gobgp"]
    target = "B" if fleet.runs[dev] == "A" else "A"
    pb = tmp_path / "slow.yaml"
    pb.write_text(f"name: slow\nplays:\n  - name: nodes\n    select: {{pattern: '{dev},"
                  f"{DEVICES['bird']}'}}\n    serial: 1\n    steps:\n      - deploy\n"
                  "      - pause: {seconds: 60}\n      - verify: {wait: 30}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BGPGEN_TOR_MD5": SECRET}
    code, out, err = _ctrl_c(["run", str(pb), "-i", str(inv[target]), "--lab", fleet.name,
                              "--yes", "--format", "json"], env,
                             lambda: _daemon_runs(fleet, "gobgp") == target and run_on(
                                 fleet.entries[dev], ["test", "-e", TARGET_LOCK]).returncode == 0,
                             "the first batch pushed, waiting for its gate")
    assert code == 130, err
    rep = json.loads(out)
    assert rep["interrupted"] is True
    first, second = rep["batches"]
    assert first["status"] == "interrupted" and second["status"] == "not run", rep
    (res,) = first["results"]
    assert res["device"] == dev and res["status"] == "rolled_back" and res["runs"] == "previous"
    assert versions(fleet, "gobgp") == (fleet.runs[dev], fleet.runs[dev])
    assert not leftovers(fleet, "gobgp")
