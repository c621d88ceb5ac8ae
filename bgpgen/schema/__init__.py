"""The inventory JSON Schema (Draft 2020-12) that ships with the package."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.cache
def inventory_schema_text() -> str:
    return resources.files(__package__).joinpath("inventory.schema.json").read_text("utf-8")


@functools.cache
def inventory_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(inventory_schema_text())
    return data


@functools.cache
def playbook_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("playbook.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def per_file_schema_text() -> str:
    """The schema for one inventory file (what an editor checks as you type): the same, but an
    inventory's parts may sit in any of its files, so no top-level key is required."""
    data = dict(inventory_schema())
    data.pop("required", None)
    data["title"] = "bgpgen inventory file"
    return json.dumps(data, indent=2) + "\n"
