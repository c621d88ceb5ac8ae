"""Golden files: every template x every example inventory, plus the manifest.

Refresh after an intended template change with ``pytest tests/test_golden.py --update-golden``
and review the diff. Secrets are tokens in rendered text, so goldens never hold a value.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bgpgen import load_fabric, render
from bgpgen.model import Platform
from bgpgen.platforms import REGISTRY
from bgpgen.render import dump_manifest, manifest

from .conftest import EXAMPLES

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_golden(name: str, update_golden: bool) -> None:
    build = render(load_fabric(EXAMPLES[name]))
    files = {a.path: a.text for a in build.artifacts}
    files["manifest.json"] = dump_manifest(manifest(build))
    root = GOLDEN / name
    if update_golden:
        shutil.rmtree(root, ignore_errors=True)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    on_disk = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(files), "files differ from goldens: run --update-golden"
    for rel, text in files.items():
        assert text == on_disk[rel], f"{name}/{rel} differs from its golden file"


def test_every_template_has_a_golden() -> None:
    """Each platform's templates appear in at least one golden set."""
    seen = set()
    for name in EXAMPLES:
        fabric = load_fabric(EXAMPLES[name])
        seen |= {d.platform for d in fabric.devices}
    assert seen == set(Platform), f"no example inventory covers {set(Platform) - seen}"
    assert set(REGISTRY) == set(Platform)


def test_render_is_deterministic() -> None:
    a = render(load_fabric(EXAMPLES["dc1"]))
    b = render(load_fabric(EXAMPLES["dc1"]))
    assert [(x.path, x.text) for x in a.artifacts] == [(x.path, x.text) for x in b.artifacts]
    assert json.dumps(manifest(a), sort_keys=True) == json.dumps(manifest(b), sort_keys=True)
