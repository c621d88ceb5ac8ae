"""Benchmark: one node's pod CIDR changed in a large inventory (gen.py's one-node-changed variant).

For each size and layout (one nodes file, or one file per rack as large inventories are kept):

1. ``bgpgen render`` into the build of the inventory as it was (the parse cache and the model
   snapshot warm, as on a developer's machine after the previous render). The bench asserts from inodes that exactly the
   files whose bytes changed were rewritten (every other file keeps its inode), and that the
   result is byte-identical to a full render of the changed inventory into a new directory.
   Side by side: that full render (bgpgen, cache off) and a plain ``cp -r`` of the build (the
   least a tool that rewrites everything must do).
2. ``bgpgen diff --against`` the previous build (what a CI job runs on a pull request), against
   GNU ``diff -r`` of the two build directories (the floor: it only compares bytes, it neither
   renders nor classifies).

Each timed command is a fresh process; medians of --repeat runs, each on a fresh copy. Order in
a run: bgpgen ``render``, ``diff --against``, ``diff -r``, the full render, ``cp -r`` (the last
two make a whole build's files, which slows whatever process comes next: see ``one``).

    .venv/bin/python bench/incremental.py [--sizes 10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen import change, generate  # noqa: E402

PY = sys.executable
BGPGEN = [PY, "-m", "bgpgen.cli"]


def _timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if r.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:5])}: exit {r.returncode}: {r.stderr.decode()[-500:]}")
    return elapsed


def _inodes(d: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(d)): (p.stat().st_ino, p.read_bytes())
            for p in d.rglob("*") if p.is_file()}


def one(n: int, split: bool, work: Path, env: dict[str, str]) -> dict[str, float]:
    inv = generate(n, work / "inv", split=split)
    build = work / "build"
    _timed([*BGPGEN, "render", "-i", str(inv), "-o", str(build)], env)  # warms the parse cache
    before_build = work / "before"
    shutil.copytree(build, before_build, copy_function=os.link)  # the old build, as CI keeps it
    before = _inodes(build)
    change(inv, n // 2 + 1)
    out: dict[str, float] = {}
    out["render"] = _timed([*BGPGEN, "render", "-i", str(inv), "-o", str(build)], env)
    after = _inodes(build)
    changed = {k for k in after if k not in before or after[k][1] != before[k][1]}
    rewritten = {k for k in after if k not in before or after[k][0] != before[k][0]}
    assert rewritten == changed, (sorted(rewritten ^ changed)[:5], len(rewritten), len(changed))
    # bgpgen's second command and its baseline before the full render and the copy: 205,000
    # files made in tmpfs just before slow the next process down (at 100,000 nodes
    # `diff --against` took 3.05 s before them and 5.44 s right after `cp -r`, measured)
    out["diff --against"] = _timed([*BGPGEN, "diff", "-i", str(inv), "--against",
                                     str(before_build)], env, ok=(0, 2))
    out["diff -r"] = _timed(["diff", "-r", str(before_build), str(build)], env, ok=(1,))
    full = work / "full"
    cold = dict(env, BGPGEN_CACHE_DIR="off")
    out["full render"] = _timed([*BGPGEN, "render", "-i", str(inv), "-o", str(full)], cold)
    again = _inodes(full)
    assert {k: v[1] for k, v in again.items()} == {k: v[1] for k, v in after.items()}, \
        "an incremental render differs from a full one"
    out["cp -r"] = _timed(["cp", "-r", str(build), str(work / "copy")], env)
    out["files"] = len(after)
    out["rewritten"] = len(rewritten)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        for split in (False, True):
            runs = []
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory(prefix="bgpgen-incr-", dir=base) as tmp:
                    env = dict(os.environ, BGPGEN_BENCH_MD5="bench-secret",
                               BGPGEN_CACHE_DIR=str(Path(tmp) / "cache"))
                    runs.append(one(n, split, Path(tmp), env))
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append((n, split, med, runs))
            print(f"n={n} {'split' if split else 'one file'}: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in med.items()), flush=True)
    print()
    print("| nodes | layout | files (rewritten) | bgpgen render | full render | cp -r | "
          "bgpgen diff --against | diff -r |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for n, split, m, _ in rows:
        print(f"| {n:,} | {'a file per rack' if split else 'one nodes file'} | "
              f"{int(m['files']):,} ({int(m['rewritten'])}) | {m['render']:.2f} s | "
              f"{m['full render']:.2f} s | {m['cp -r']:.2f} s | {m['diff --against']:.2f} s | "
              f"{m['diff -r']:.2f} s |")
    print(f"\n(medians of {args.repeat}; each a fresh process, each run on a fresh copy)")


if __name__ == "__main__":
    main()
