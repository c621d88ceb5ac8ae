"""What runs on a device, normalised: every platform's answer becomes one :class:`DeviceState`.

Platform modules read their daemon (gobgp JSON, birdc text, vtysh JSON) into this view; verify,
deploy's session checks and ``lab status`` only ever see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESTABLISHED = "Established"
#: how long a daemon may take to print its state before it counts as not answering
ANSWER_SECONDS = 15


class DaemonError(Exception):
    """The daemon answered with an error instead of its state (it is not answering)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """One BGP session as one end sees it."""

    address: str
    state: str                      #: the daemon's own word; ``Established`` when up
    uptime: float | None = None     #: seconds Established
    hold: int | None = None         #: negotiated hold time
    received: int | None = None
    accepted: int | None = None
    sent: int | None = None


@dataclass(frozen=True, slots=True)
class RibEntry:
    prefix: str
    next_hop: str
    peer: str        #: the address it came from; "" for a route the device originates
    as_path: str = ""
    #: the daemon forwards over this path (its best path, or one of its multipaths); None:
    #: the daemon does not say
    selected: bool | None = None


@dataclass(slots=True)
class DeviceState:
    """Sessions and RIB of one device, or why they could not be read."""

    device: str
    peers: dict[str, Peer] = field(default_factory=dict)
    rib: list[RibEntry] = field(default_factory=list)
    error: str = ""      #: the device could not be reached at all (SSH): nothing can be judged
    down: str = ""       #: reached, but the BGP daemon does not answer: a finding
    #: peers for which the daemon runs other settings than its own config file says
    drift: list[str] = field(default_factory=list)
    #: the daemon runs another config than its file, as a whole ('' when they agree)
    drift_detail: str = ""
    #: what each peer sent, before the device's inbound policy (peer -> prefixes), for the
    #: peers whose platform keeps it (FRR: soft-reconfiguration inbound); a prefix a switch's
    #: policy drops is in no RIB, only here
    received: dict[str, list[str]] = field(default_factory=dict)
