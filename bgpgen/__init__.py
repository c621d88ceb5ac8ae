"""bgpgen: one inventory of Kubernetes nodes and ToR switches becomes the BGP config of both ends
of every session.

The library is the pipeline; the CLI only calls it::

    from bgpgen import load_fabric, render, write
    fabric = load_fabric("inventory")          # load + schema + semantic checks + sessions
    build = render(fabric)                     # artifacts, secrets as tokens
    write(build, Path("build"), resolve_all(build.secrets))
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (BgpgenError, CheckError, InventoryError, Problem, RenderError,  # noqa: E402
                     SecretError)
from .model import Fabric, Node, Platform, Route, Session, Switch  # noqa: E402
from .artifacts import Artifact, Build  # noqa: E402
from .render import render, write  # noqa: E402
from .secrets import SecretMode, resolve_all  # noqa: E402
from .validate import load_fabric  # noqa: E402

__all__ = ["Artifact", "BgpgenError", "Build", "CheckError", "Fabric", "InventoryError", "Node",
           "Platform", "Problem", "RenderError", "Route", "SecretError", "SecretMode", "Session",
           "Switch", "load_fabric", "render", "resolve_all", "write"]
