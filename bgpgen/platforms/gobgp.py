"""gobgp: a Kubernetes node whose BGP speaker is gobgpd (inventory: ``speaker: gobgp``)."""

from __future__ import annotations

from ..model import Passive, Platform, Role
from . import gobgpd
from .base import FileSpec, LabSetup, PlatformSpec, node_context

_READ = gobgpd.reader(route_server=False)

SPEC = PlatformSpec(
    platform=Platform.GOBGP,
    role=Role.NODE,
    inventory_name="gobgp",
    description="a node speaking BGP with gobgpd",
    files=(FileSpec(gobgpd.CONFIG, "gobgp/gobgpd.toml.j2", gobgpd.PATHS.config),
           FileSpec(gobgpd.ORIGINATE, None, f"{gobgpd.PATHS.confdir}/{gobgpd.ORIGINATE}",
                    gobgpd.originate)),
    context=node_context,
    checker=gobgpd.CHECKER,
    netmiko_device_type="linux",
    paths=gobgpd.PATHS,
    secret_line=gobgpd.SECRET_LINE,
    classify=gobgpd.classify,
    driver=gobgpd.GobgpdDriver(_READ),
    state=_READ,
    lab=LabSetup(daemons=gobgpd.daemons, bootstrap=gobgpd.bootstrap, prepare=gobgpd.prepare,
                 binaries=gobgpd.BINARIES, user=None, cli_port=None),
    bfd=False,  # gobgpd 3.10 has no BFD
    default_originate=False,
    route_server=False,
    default_passive=Passive.NONE,
    drain=None,
    filters=gobgpd.FILTERS,
)
