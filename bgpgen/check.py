"""Check rendered files with each daemon's own checker (each platform names its own).

A checker that is not installed is skipped and reported as skipped (never as passed). Checker
output is redacted before it is shown: a secret value turns back into its token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckError, Problem
from .artifacts import Build
from .platforms import REGISTRY, spec
from .secrets import redact

TIMEOUT = 60


@dataclass(frozen=True, slots=True)
class CheckResult:
    device: str
    file: str
    checker: str
    ok: bool
    skipped: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class CheckReport:
    results: tuple[CheckResult, ...]

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.ok and not r.skipped)

    @property
    def skipped_checkers(self) -> tuple[str, ...]:
        return tuple(sorted({r.checker for r in self.results if r.skipped}))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            if not r.skipped:
                out[r.checker] = out.get(r.checker, 0) + 1
        return out


def _message(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):  # daemons that log JSON lines (gobgpd)
        try:
            entry = json.loads(ln)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("fatal", "error"):
            return " ".join(str(entry.get("Error") or entry.get("msg")).split())
    bad = [ln for ln in lines if "rror" in ln or "Unknown" in ln or "unexpected" in ln]
    return (bad or lines or ["no output"])[-1]


def _parse_back(text: str, device: str, file: str) -> CheckResult:
    """TOML has a parser in the standard library: every rendered TOML file must parse back."""
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return CheckResult(device, file, "toml", False, message=f"does not parse back: {exc}")
    return CheckResult(device, file, "toml", True)


def _run_one(argv: list[str], device: str, file: str, checker: str,
             values: Mapping[str, str]) -> CheckResult:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        return CheckResult(device, file, checker, False, message=f"timed out after {TIMEOUT} s")
    if proc.returncode == 0:
        return CheckResult(device, file, checker, True)
    text = redact(proc.stdout + "\n" + proc.stderr, values)
    return CheckResult(device, file, checker, False, message=_message(text))


def check_build(build: Build, build_dir: Path, values: Mapping[str, str] | None = None,
                jobs: int | None = None) -> CheckReport:
    """Run every applicable checker on the files of ``build`` written under ``build_dir``."""
    values = values or {}
    with tempfile.TemporaryDirectory(prefix="bgpgen-check-") as confdir:
        for ps in REGISTRY.values():  # what each checker expects in its scratch directory
            for name, text in ps.checker.scratch.items():
                Path(confdir, name).write_text(text)
        jobs_list: list[tuple[list[str], str, str, str]] = []
        results: list[CheckResult] = []
        devices = {d.name for d in build.fabric.devices}
        for a in build.artifacts:
            if a.device not in devices:  # the cluster's Kubernetes resources: no daemon reads them
                continue
            if a.name.endswith(".toml"):
                results.append(_parse_back(a.text, a.device, a.name))
            ps = spec(build.fabric.device(a.device).platform)
            if a.name != ps.config_file:  # the checker reads the daemon's own config
                continue
            checker = ps.checker
            binary = checker.binary
            if checker.parse is not None:  # parsed back here (a vendor OS: no checker runs)
                said = checker.parse(a.text)
                results.append(CheckResult(a.device, a.name, binary, not said,
                                           message=redact(said, values)))
                continue
            if shutil.which(binary) is None:
                results.append(CheckResult(a.device, a.name, binary, False, skipped=True,
                                           message=f"{binary} not installed "
                                           f"(Debian package {checker.package})"))
                continue
            path = str(build_dir / a.device / a.name)
            argv = [x.format(file=path, dir=confdir) for x in checker.argv]
            jobs_list.append((argv, a.device, a.name, binary))
        workers = jobs or max(2, (os.cpu_count() or 1) * 2)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results += pool.map(lambda j: _run_one(j[0], j[1], j[2], j[3], values), jobs_list)
    results.sort(key=lambda r: (r.device, r.file))
    return CheckReport(tuple(results))


def raise_on_failure(report: CheckReport, shown_root: Path) -> None:
    """Turn failed checks into a :class:`CheckError`, one problem per file."""
    problems = [Problem(str(shown_root / r.device / r.file), r.device,
                        f"{r.checker} rejects it: {r.message}",
                        "fix the inventory value or template override that produced it")
                for r in report.failed]
    if problems:
        raise CheckError(problems)
