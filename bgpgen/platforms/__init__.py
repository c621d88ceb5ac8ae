"""The platform registry: one :class:`~.base.PlatformSpec` per :class:`~bgpgen.model.Platform`.

Everything bgpgen knows about a platform lives in its module (:mod:`.gobgp`, :mod:`.gobgp_rs`,
:mod:`.bird`, :mod:`.frr`); every other module asks :func:`spec` and never names a platform.
:func:`_spec_of` is an exhaustive ``match``: a :class:`Platform` member without a module fails
the type check (``assert_never``), so nothing can fall through to another platform's code.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from typing import assert_never

from ..errors import BgpgenError, Problem
from ..model import Platform, Role
from . import (bird, calico, cilium, cumulus, eos, external, frr, gobgp, gobgp_rs, junos,
               metallb, nxos, openelb, sonic)
from .base import LabSetup, PlatformSpec


def _spec_of(platform: Platform) -> PlatformSpec:
    match platform:
        case Platform.GOBGP:
            return gobgp.SPEC
        case Platform.GOBGP_RS:
            return gobgp_rs.SPEC
        case Platform.BIRD:
            return bird.SPEC
        case Platform.FRR:
            return frr.SPEC
        case Platform.CUMULUS:
            return cumulus.SPEC
        case Platform.SONIC:
            return sonic.SPEC
        case Platform.EOS:
            return eos.SPEC
        case Platform.JUNOS:
            return junos.SPEC
        case Platform.NXOS:
            return nxos.SPEC
        case Platform.EXTERNAL:
            return external.SPEC
        case Platform.METALLB:
            return metallb.SPEC
        case Platform.CALICO:
            return calico.SPEC
        case Platform.CILIUM:
            return cilium.SPEC
        case Platform.OPENELB:
            return openelb.SPEC
        case _:
            assert_never(platform)


#: The one registry. Tests may register a platform of their own here (see tests/fake_platform).
REGISTRY: dict[Platform, PlatformSpec] = {p: _spec_of(p) for p in Platform}


def spec(platform: Platform) -> PlatformSpec:
    """The spec of a platform. A platform with no spec is an error, never a fallback."""
    try:
        return REGISTRY[platform]
    except KeyError:
        raise BgpgenError(Problem("", "platform", f"no platform module for {platform!r}",
                                  "register its PlatformSpec in bgpgen.platforms.REGISTRY")
                          ) from None


def lab_of(platform: Platform) -> LabSetup:
    """What a lab runs for a platform, or a one-line error when no lab can run it here."""
    setup = spec(platform).lab
    if setup is None:
        raise BgpgenError(Problem("", "lab", f"no lab can run {platform.value} here (no image "
                                  "of it runs on this machine)",
                                  "give its racks another switch platform (frr, cumulus, "
                                  "sonic) in a copy of the inventory for the lab"))
    return setup


@functools.cache
def by_inventory_name(role: Role) -> Mapping[str, Platform]:
    """What the inventory may name for a device of this role (switch ``platform:``, node
    ``speaker:``) -> the platform it means (made once: asked for every node)."""
    return MappingProxyType({s.inventory_name: s.platform for s in REGISTRY.values()
                             if s.role is role})


def spine_platform() -> Platform:
    """The platform the lab runs spines on (the first whose lab can)."""
    return next(s.platform for s in REGISTRY.values() if s.lab and s.lab.spine is not None)


__all__ = ["REGISTRY", "PlatformSpec", "by_inventory_name", "lab_of", "spec", "spine_platform"]
