"""Benchmark: ``bgpgen render`` (load, validate, model, render, write) against the honest floor and
the usual way, each contender a fresh process of its own (its wall time and its peak RSS):

(a) the floor: PyYAML's C loader, the sessions paired from the raw YAML with no checks, bgpgen's
    templates compiled once in one Jinja2 environment and fed attribute objects (the shape they
    are written for: no AttributeError raised and caught per access, as plain dicts cost), the
    same files written (same bytes: asserted). Run four ways: the cyclic garbage collector on or
    off (off is what a careful engineer ends up with after one profile: bgpgen holds it off too),
    and with or without validating the merged inventory against bgpgen's JSON Schema (jsonschema-rs,
    which bgpgen also runs). Neither does bgpgen's semantic checks (addresses, uniqueness, the
    pairing's rules), its manifest, its input digests, or its atomic directory swap.
(b) the usual way (up to --nornir-max nodes): Nornir SimpleInventory + nornir_jinja2's
    template_file, one shared Jinja2 environment (as its docs recommend), contexts prepared as
    host data (untimed: users keep them), files written by the task.

bgpgen renders with its parse cache off (``BGPGEN_CACHE_DIR=off``) into a new directory: a cold,
full render. Output goes to tmpfs. Runs interleave; medians are reported.

    .venv/bin/python bench/render.py [--sizes 1000,10000,100000] [--repeat 3] [--nornir-max 1000]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from gen import generate  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parent
PASSWORD = "bench-secret"
PY = sys.executable

# --- the floor ------------------------------------------------------------------------------------


def _load(inv: Path) -> dict[str, Any]:
    """Every *.yaml of the inventory, lists concatenated (as bgpgen merges them)."""
    doc: dict[str, Any] = {}
    for f in sorted(inv.glob("*.yaml")):
        with f.open("rb") as fh:
            for k, v in yaml.load(fh, Loader=yaml.CSafeLoader).items():
                if isinstance(v, list):
                    doc.setdefault(k, []).extend(v)
                else:
                    doc[k] = v
    return doc


def _bird_stamp(text: str) -> str:
    """BIRD's config carries a digest of itself (bgpgen reads it back with birdc)."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    head, _, rest = text.partition("\n\n")
    line = ("# Which config BIRD runs: birdc eval bgpgen_config\n"
            f'define bgpgen_config = "{digest}";\n')
    return f"{head}\n\n{line}\n{rest}"


Job = tuple[str, str, str, dict[str, Any]]  # device, file name, template, context


def jobs(doc: dict[str, Any], objects: bool) -> tuple[list[Job], dict[str, str]]:
    """Pair the ends of each session from the raw YAML, with no checks at all, into the contexts
    bgpgen's templates take: attribute objects (``objects``) or plain dicts. Written for gen.py's
    inventories (IPv4, FRR ToRs, one profile, a /24 per link). Returns the render jobs and the
    originate.json texts of gobgp nodes."""
    O = NS if objects else dict  # noqa: N806
    raw = doc["profiles"]["default"]
    t, gr = raw["timers"], raw.get("graceful_restart", {})
    profile = O(name="default", timers=O(hold=t["hold"], keepalive=t["keepalive"],
                                         connect_retry=t["connect_retry"]),
                password=O(name=raw["password"]), multihop=None, bfd=False,
                graceful_restart=gr.get("enabled", False),
                restart_time=gr.get("restart_time", 120), max_prefix=raw["max_prefix"],
                default_originate=False, description="")
    fabric = O(name=doc["fabric"]["name"])
    by_rack: dict[str, list[dict[str, Any]]] = {}
    for sw in doc["switches"]:
        by_rack.setdefault(sw["rack"], []).append(sw)
    per_switch: dict[str, list[tuple[Any, str, list[tuple[str, list[str]]]]]] = {}
    out: list[Job] = []
    originate: dict[str, str] = {}
    for node in doc["nodes"]:
        name = node["name"]
        prefixes = node["pod_cidrs"] + [f"{v}/32" for v in node.get("vips", [])]
        own = [("ipv4", prefixes)]
        sessions = []
        for sw in by_rack[node["rack"]]:
            sw_addr = sw["peering"][0].partition("/")[0]
            subnet = sw_addr.rpartition(".")[0]
            mine = next(a.partition("/")[0] for a in node["peering"]
                        if a.rpartition(".")[0] == subnet)
            s = O(id=f"{sw['name']}:{name}:ipv4", node=name, switch=sw["name"], family="ipv4",
                  node_address=mine, switch_address=sw_addr, node_asn=node["asn"],
                  switch_asn=sw["asn"], node_port=179, switch_port=179, profile=profile,
                  passive="none", description="", ebgp=True)
            sessions.append(s)
            per_switch.setdefault(sw["name"], []).append((s, name, own))
        device = O(name=name, asn=node["asn"], bgp_port=179,
                   router_id=node["peering"][0].partition("/")[0])
        ctx = {"fabric": fabric, "device": device, "sessions": sessions, "own": own,
               "own_families": {"ipv4"}, "next_hop": {}}
        if node["speaker"] == "gobgp":
            out.append((name, "gobgpd.toml", "gobgp/gobgpd.toml.j2", ctx))
            entries = [{"family": "ipv4", "prefix": p} for p in prefixes]
            originate[name] = json.dumps({"device": name, "originate": entries}, indent=1) + "\n"
        else:
            out.append((name, "bird.conf", "bird/bird.conf.j2", ctx))
    group = O(name="NODES-V4", family="ipv4", profile=profile)
    for sw in doc["switches"]:
        members = per_switch.get(sw["name"], [])
        peers = [O(name=n, own=own, families=["ipv4"], prefix_list={"ipv4": f"BGPGEN-{n}-V4"},
                   route_map={"ipv4": f"BGPGEN-{n}-IN-V4"}) for _, n, own in members]
        sessions = [s for s, _, _ in members]
        ctx = {"fabric": fabric, "device": O(**sw) if objects else sw, "sessions": sessions,
               "peers": peers, "groups": [group], "manage": "bgp-part",
               "group_of": {f"{sw['name']}:{n}:ipv4": "NODES-V4" for _, n, _ in members},
               "route_map_of": {f"{sw['name']}:{n}:ipv4": f"BGPGEN-{n}-IN-V4"
                                for _, n, _ in members},
               "graceful_restart": raw_gr(profile, objects), "families": ["ipv4"]}
        out.append((sw["name"], "frr.conf", "frr/frr.conf.j2", ctx))
    return out, originate


def raw_gr(profile: Any, objects: bool) -> int:
    get = (lambda k: getattr(profile, k)) if objects else profile.__getitem__
    return int(get("restart_time")) if get("graceful_restart") else 0


def floor(inv: Path, out: Path, validate: bool) -> None:
    """(a): see the module's docstring."""
    from bgpgen.platforms.gobgpd import DROP_IN_TEXT  # a static file, as data
    from bgpgen.render import environment

    doc = _load(inv)
    if validate:
        import jsonschema_rs

        schema = json.loads((ROOT / "bgpgen/schema/inventory.schema.json").read_text())
        jsonschema_rs.validator_for(schema).validate(doc)
    env = environment()  # bgpgen's templates and escaping filters (or the bytes differ)
    compiled = {name: env.get_template(name) for name in
                ("gobgp/gobgpd.toml.j2", "bird/bird.conf.j2", "frr/frr.conf.j2")}
    todo, originate = jobs(doc, objects=True)
    password = os.environ["BGPGEN_BENCH_MD5"]

    def secret(ref: Any) -> str:  # BIRD's mark is of the text with the secret unfilled
        return f"<secret:{ref.name}>"

    for device, name, template, ctx in todo:
        text = compiled[template].render(secret=secret, **ctx)
        if name == "bird.conf":
            text = _bird_stamp(text)
        text = text.replace("<secret:md5>", password)
        d = out / device
        d.mkdir(parents=True)
        (d / name).write_text(text)
    for device, text in originate.items():
        (out / device / "originate.json").write_text(text)
        (out / device / "gobgpd.service.conf").write_text(DROP_IN_TEXT)


# --- the usual way ------------------------------------------------------------------------------

def nornir_setup(inv: Path, work: Path) -> Path:
    """The contexts as Nornir SimpleInventory host data (untimed: users keep these files)."""
    todo, originate = jobs(_load(inv), objects=False)
    hosts: dict[str, Any] = {}
    for device, name, template, ctx in todo:
        ctx = dict(ctx, own_families=sorted(ctx["own_families"])) if "own_families" in ctx else ctx
        hosts[device] = {"hostname": device,
                         "data": {"file": name, "template": template, "ctx": ctx,
                                  "originate": originate.get(device)}}
    d = work / "nornir"
    d.mkdir()
    (d / "hosts.yaml").write_text(yaml.dump(hosts, Dumper=yaml.CSafeDumper))
    (d / "groups.yaml").write_text("{}\n")
    (d / "defaults.yaml").write_text("{}\n")
    return d


def nornir_way(ninv: Path, out: Path) -> None:
    from nornir import InitNornir
    from nornir.core.task import Result, Task
    from nornir_jinja2.plugins.tasks import template_file

    from bgpgen.platforms.gobgpd import DROP_IN_TEXT
    from bgpgen.render import PACKAGE_TEMPLATES, environment

    nr = InitNornir(runner={"plugin": "threaded", "options": {"num_workers": 20}},
                    inventory={"plugin": "SimpleInventory",
                               "options": {"host_file": str(ninv / "hosts.yaml"),
                                           "group_file": str(ninv / "groups.yaml"),
                                           "defaults_file": str(ninv / "defaults.yaml")}},
                    logging={"enabled": False})
    password = os.environ["BGPGEN_BENCH_MD5"]
    env = environment()

    def task(t: Task) -> Result:
        r = t.run(task=template_file, template=t.host["template"], path=str(PACKAGE_TEMPLATES),
                  jinja_env=env, secret=lambda ref: f"<secret:{ref['name']}>", **t.host["ctx"])
        text = _bird_stamp(r.result) if t.host["file"] == "bird.conf" else r.result
        text = text.replace("<secret:md5>", password)
        d = out / t.host.name
        d.mkdir(parents=True, exist_ok=True)
        (d / t.host["file"]).write_text(text)
        if t.host["originate"]:
            (d / "originate.json").write_text(t.host["originate"])
            (d / "gobgpd.service.conf").write_text(DROP_IN_TEXT)
        return Result(host=t.host)

    result = nr.run(task=task)
    assert not result.failed, result.failed_hosts


# --- harness ------------------------------------------------------------------------------------

def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode})")
    return elapsed, usage.ru_maxrss // 1024


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in d.rglob("*") if p.is_file()}


def _same(ours: Path, theirs: Path) -> int:
    a, b = _files(ours), _files(theirs)
    a.pop("manifest.json")
    a.pop(".bgpgen-secrets", None)
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))[:5]
    bad = [k for k in a if a[k] != b[k]]
    assert not bad, f"{len(bad)} files differ, e.g. {bad[:3]}"
    return len(a)


CONTENDERS = ("bgpgen", "floor", "floor+schema", "floor gc on", "nornir")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nornir-max", type=int, default=1000)
    args = ap.parse_args()
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    env = dict(os.environ, BGPGEN_BENCH_MD5=PASSWORD, BGPGEN_CACHE_DIR="off")
    me = str(Path(__file__).resolve())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bgpgen-bench-", dir=base) as tmp:
        work = Path(tmp)
        for n in (int(x) for x in args.sizes.split(",")):
            inv = generate(n, work / f"inv{n}")
            argv = {"bgpgen": [PY, "-m", "bgpgen.cli", "render", "-i", str(inv), "-o"],
                    "floor": [PY, me, "--floor", str(inv)],
                    "floor+schema": [PY, me, "--floor", str(inv), "--validate"],
                    "floor gc on": [PY, me, "--floor", str(inv), "--gc"]}
            if n <= args.nornir_max:
                (work / f"n{n}").mkdir()
                ninv = nornir_setup(inv, work / f"n{n}")
                argv["nornir"] = [PY, me, "--nornir", str(ninv)]
            times: dict[str, list[float]] = {k: [] for k in argv}
            rss: dict[str, int] = {}
            files = 0
            for i in range(args.repeat):
                for name, cmd in argv.items():
                    out = work / f"out-{name.replace(' ', '-')}"
                    s, mib = _run([*cmd, str(out)], env)
                    times[name].append(s)
                    rss[name] = max(rss.get(name, 0), mib)
                    if i == 0 and name != "bgpgen":
                        files = _same(work / "out-bgpgen", out)
                    if name != "bgpgen":
                        shutil.rmtree(out)
                shutil.rmtree(work / "out-bgpgen")
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((n, files, med, rss, times))
            print(f"n={n} ({files} files): " + ", ".join(
                f"{k} {med[k]:.2f} s {rss[k]} MiB" for k in med), flush=True)
            shutil.rmtree(inv)
    print()
    print("| nodes | files | bgpgen render | (a) floor | bgpgen / (a) | (a) + schema | "
          "bgpgen / (a)+schema | (a) GC on | (b) Nornir |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, files, med, rss, _ in rows:
        def cell(k: str) -> str:
            return f"{med[k]:.2f} s, {rss[k]} MiB" if k in med else "-"
        print(f"| {n:,} | {files:,} | {cell('bgpgen')} | {cell('floor')} | "
              f"{med['bgpgen'] / med['floor']:.2f}x | {cell('floor+schema')} | "
              f"{med['bgpgen'] / med['floor+schema']:.2f}x | {cell('floor gc on')} | "
              f"{cell('nornir')} |")
    print(f"\n(medians of {args.repeat}, each a fresh process: wall time and peak RSS)")
    for n, _, _, _, times in rows:
        print(f"n={n}: " + "; ".join(f"{k} " + ", ".join(f"{x:.2f}" for x in v)
                                     for k, v in times.items()))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--floor", "--nornir"):
        os.environ.setdefault("BGPGEN_BENCH_MD5", PASSWORD)
        if sys.argv[1] == "--floor":
            if "--gc" not in sys.argv:
                gc.disable()
            floor(Path(sys.argv[2]), Path(sys.argv[-1]), "--validate" in sys.argv)
        else:
            nornir_way(Path(sys.argv[2]), Path(sys.argv[-1]))
    else:
        main()
