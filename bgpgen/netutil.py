"""Prefix maths for the semantic checks: strict parsing with hints, and a sorted overlap sweep."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .frozen import quick_pickle

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")


@quick_pickle
@dataclass(frozen=True, slots=True)
class Interface:
    """An address on a link with its subnet. Plain attributes: ``ipaddress``'s interface types
    build a new address object on every ``.ip`` access, which shows on 10,000-node fabrics."""

    ip: Address
    network: Network

    @property
    def version(self) -> int:
        return self.ip.version

    def __str__(self) -> str:
        return f"{self.ip}/{self.network.prefixlen}"


_V4 = re.compile(r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\."
                 r"(0|[1-9][0-9]{0,2})/(0|[1-9][0-9]?)")


def _v4(text: str) -> tuple[int, int] | None:
    """Fast path for the common IPv4 ``a.b.c.d/len``: (address as int, length), else None."""
    m = _V4.fullmatch(text)
    if m is None:
        return None
    a, b, c, d, length = map(int, m.groups())
    if a > 255 or b > 255 or c > 255 or d > 255 or length > 32:
        return None
    return (a << 24) | (b << 16) | (c << 8) | d, length


_A4 = re.compile(r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\."
                 r"(0|[1-9][0-9]{0,2})")


def _a4(text: str) -> int | None:
    """Fast path for an IPv4 address in canonical form: its number, else None (the slow path
    then says what is wrong, if anything)."""
    m = _A4.fullmatch(text)
    if m is None:
        return None
    a, b, c, d = map(int, m.groups())
    if a > 255 or b > 255 or c > 255 or d > 255:
        return None
    return (a << 24) | (b << 16) | (c << 8) | d


class _Addr4(ipaddress.IPv4Address):
    """An IPv4 address that formats itself once: templates and manifests print each many times."""

    __slots__ = ("_text",)

    def __str__(self) -> str:
        try:
            return self._text
        except AttributeError:
            self._text: str = super().__str__()
            return self._text

    def __repr__(self) -> str:  # not through format(): ipaddress's __format__ is Python
        return "IPv4Address('" + self.__str__() + "')"

    def __reduce__(self) -> tuple[Any, ...]:
        return _addr4_back, (int(self), str(self))  # its number and its text, never parsed


def _addr4_back(address: int, text: str) -> _Addr4:
    addr = _addr4(address)
    addr._text = text
    return addr


_new_addr4 = object.__new__


def _addr4(address: int) -> _Addr4:
    """An address from its number, known to be in range (ipaddress's own constructor checks
    it again, in Python: a third of a node's addresses' cost)."""
    addr = _new_addr4(_Addr4)
    addr._ip = address  # type: ignore[attr-defined]
    return addr


class _Net4(ipaddress.IPv4Network):
    """An IPv4 network that formats itself once."""

    def __str__(self) -> str:
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = self.__dict__["_text"] = super().__str__()
        return text

    def __repr__(self) -> str:
        return "IPv4Network('" + self.__str__() + "')"

    def __reduce__(self) -> tuple[Any, ...]:
        return _net4_back, (int(self.network_address), self.prefixlen, str(self))


def _net4_back(address: int, length: int, text: str) -> ipaddress.IPv4Network:
    net = _net4(address, length)
    net.__dict__["_text"] = text
    return net


@functools.lru_cache(maxsize=65536)
def _net4(address: int, length: int) -> ipaddress.IPv4Network:
    return _Net4((address, length))


def _mask4(length: int) -> int:
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF


def host_network(addr: Address) -> Network:
    """The /32 or /128 network of one address.

    >>> host_network(parse_address("203.0.113.10"))
    IPv4Network('203.0.113.10/32')
    """
    if addr.version == 4:
        return _net4(int(addr), 32)
    return ipaddress.IPv6Network((int(addr), 128))


def parse_network(text: str) -> Network:
    """Parse a CIDR that must be a network address; the error says which one was meant.

    >>> parse_network("10.20.0.0/19")
    IPv4Network('10.20.0.0/19')
    >>> parse_network("10.20.30.40/19")
    Traceback (most recent call last):
    ...
    ValueError: 10.20.30.40/19 has host bits set; the network is 10.20.0.0/19
    """
    fast = _v4(text)
    if fast is not None and not fast[0] & ~_mask4(fast[1]) & 0xFFFFFFFF:
        return _net4(*fast)
    try:
        net = ipaddress.ip_network(text, strict=True)
        _no_surprises(text, net.network_address)
        return net
    except ValueError as exc:
        if "canonical" in str(exc) or "scope" in str(exc) or "mapped" in str(exc):
            raise
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
    fast = _v4(text)
    if fast is not None:
        address, length = fast
        return Interface(_addr4(address), _net4(address & _mask4(length), length))
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an interface address ({exc})") from None
    _no_surprises(text, iface.ip)
    return Interface(iface.ip, iface.network)


def _no_surprises(text: str, addr: Address) -> None:
    """Refuse what means another address than it seems: a scope (``%eth0``), an IPv4-mapped
    IPv6 address, an IPv6 address not written the one way it prints."""
    if "%" in text:
        raise ValueError(f"{text!r} has a scope (%...): a fabric address has none")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise ValueError(f"{text!r} is an IPv4-mapped IPv6 address; write "
                         f"{addr.ipv4_mapped} itself")
    if addr.version == 6 and text.split("/")[0] != str(addr):
        raise ValueError(f"{text!r} is not in canonical form; write {addr}"
                         + (text[text.index("/"):] if "/" in text else ""))


def parse_address(text: str) -> Address:
    """Parse a bare IP address, in canonical form only (no leading zeros, no scope, IPv6
    compressed and lower-case).

    >>> parse_address("30.30.30.30")
    IPv4Address('30.30.30.30')
    >>> parse_address("2001:DB8::1")
    Traceback (most recent call last):
    ...
    ValueError: '2001:DB8::1' is not in canonical form; write 2001:db8::1
    """
    fast = _a4(text)
    if fast is not None:
        return _addr4(fast)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None
    _no_surprises(text, addr)
    return addr


_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


def check_host(text: str) -> None:
    """A management host: a DNS name, or an IP address in canonical form. A name whose last
    label is numeric is an address to the resolver (inet_aton reads ``198.51.100.011`` as .9
    and ``0x0b`` as .11), so it must be written as one.

    >>> check_host("tor-r1-a.mgmt.example.net")
    >>> check_host("198.51.100.011")
    Traceback (most recent call last):
    ...
    ValueError: '198.51.100.011' is not an IP address in canonical form: the resolver reads it as 198.51.100.9
    """
    if ":" in text:
        parse_address(text)
        return
    if _a4(text) is not None:
        return
    if not _NUMERIC_LABEL.fullmatch(text.rsplit(".", 1)[-1]):
        return
    try:
        ipaddress.IPv4Address(text)
        return
    except ValueError:
        pass
    try:
        import socket
        meant = socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        raise ValueError(f"{text!r} is neither a host name nor an IP address") from None
    raise ValueError(f"{text!r} is not an IP address in canonical form: the resolver reads "
                     f"it as {meant}")


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


def span(net: Network) -> tuple[int, int]:
    """First and last address of a network, as integers.

    >>> span(parse_network("10.0.0.0/30"))
    (167772160, 167772163)
    """
    start = int(net.network_address)
    return start, start + (1 << (net.max_prefixlen - net.prefixlen)) - 1


def overlaps(items: Iterable[Tagged[T]]) -> Iterator[tuple[Tagged[T], Tagged[T]]]:
    """Yield pairs of overlapping networks in O(n log n): sort by start, sweep keeping the widest.

    Each overlapping item is reported once, against the earlier network that covers it.

    >>> a, b, c = (Tagged(parse_network(n), n) for n in ("10.0.0.0/16", "10.0.5.0/24", "10.1.0.0/24"))
    >>> [(x.tag, y.tag) for x, y in overlaps([c, b, a])]
    [('10.0.0.0/16', '10.0.5.0/24')]
    """
    pool = list(items)
    for version in (4, 6):
        ordered = sorted(((span(t.net), t) for t in pool if t.net.version == version),
                         key=lambda x: (x[0][0], -x[0][1]))
        widest: Tagged[T] | None = None
        widest_end = -1
        for (start, end), cur in ordered:
            if widest is not None and start <= widest_end:
                yield widest, cur
            if end > widest_end:
                widest, widest_end = cur, end
