"""gobgp: a Kubernetes node whose BGP speaker is gobgpd (inventory: ``speaker: gobgp``)."""

from __future__ import annotations

from ..model import Passive, Platform, Role
from . import gobgpd
from .base import FileSpec, node_context

SPEC = gobgpd.spec_for(
    platform=Platform.GOBGP,
    role=Role.NODE,
    description="a node speaking BGP with gobgpd",
    files=(FileSpec(gobgpd.CONFIG, "gobgp/gobgpd.toml.j2", gobgpd.PATHS.config),
           FileSpec(gobgpd.ORIGINATE, None, gobgpd.ORIGINATE_PATH, gobgpd.originate, 0o644),
           gobgpd.DROP_IN_FILE),
    context=node_context,
    route_server=False,
    default_passive=Passive.NONE,
)
