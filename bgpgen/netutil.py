"""Prefix maths for the semantic checks: strict parsing with hints, and a sorted overlap sweep."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")


def parse_network(text: str) -> Network:
    """Parse a CIDR that must be a network address; the error says which one was meant.

    >>> parse_network("10.20.0.0/19")
    IPv4Network('10.20.0.0/19')
    >>> parse_network("10.20.30.40/19")
    Traceback (most recent call last):
    ...
    ValueError: 10.20.30.40/19 has host bits set; the network is 10.20.0.0/19
    """
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not a CIDR prefix ({exc})") from None
        raise ValueError(f"{text} has host bits set; the network is {loose}") from None


def parse_interface(text: str) -> Interface:
    """Parse an interface address with its prefix length (``10.1.1.10/24``).

    >>> parse_interface("2001:db8::11/64").network
    IPv6Network('2001:db8::/64')
    """
    if "/" not in text:
        raise ValueError(f"{text!r} has no prefix length; write it as ADDRESS/LENGTH")
    try:
        return ipaddress.ip_interface(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an interface address ({exc})") from None


def parse_address(text: str) -> Address:
    """Parse a bare IP address.

    >>> parse_address("30.30.30.30")
    IPv4Address('30.30.30.30')
    """
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def family(net: Network | Address | Interface) -> str:
    """``ipv4`` or ``ipv6``.

    >>> family(parse_network("2001:db8::/32"))
    'ipv6'
    """
    return "ipv4" if net.version == 4 else "ipv6"


@dataclass(frozen=True, slots=True)
class Tagged(Generic[T]):
    """A network with the thing it came from (a place in the inventory, usually)."""

    net: Network
    tag: T


def overlaps(items: Iterable[Tagged[T]]) -> Iterator[tuple[Tagged[T], Tagged[T]]]:
    """Yield pairs of overlapping networks in O(n log n): sort by start, sweep keeping the widest.

    Each overlapping item is reported once, against the earlier network that covers it.

    >>> a, b, c = (Tagged(parse_network(n), n) for n in ("10.0.0.0/16", "10.0.5.0/24", "10.1.0.0/24"))
    >>> [(x.tag, y.tag) for x, y in overlaps([c, b, a])]
    [('10.0.0.0/16', '10.0.5.0/24')]
    """
    pool = list(items)
    for version in (4, 6):
        ordered = sorted((t for t in pool if t.net.version == version),
                         key=lambda t: (int(t.net.network_address), -t.net.num_addresses))
        widest: Tagged[T] | None = None
        widest_end = -1
        for cur in ordered:
            start = int(cur.net.network_address)
            if widest is not None and start <= widest_end:
                yield widest, cur
            end = int(cur.net.broadcast_address)
            if end > widest_end:
                widest, widest_end = cur, end
