"""AS numbers: plain, 4-byte and asdot notation (RFC 5396), with reserved values refused."""

from __future__ import annotations

ASN_MAX = 4294967295
#: Values that must never be configured as a BGP speaker's AS (RFC 7607, RFC 6793, RFC 7300).
RESERVED = {0: "AS 0 is reserved (RFC 7607)", 23456: "AS_TRANS (RFC 6793)",
            65535: "reserved (RFC 7300)", 4294967295: "reserved (RFC 7300)"}


def parse_asn(value: int | str) -> int:
    """Parse an ASN given as an integer, a decimal string or asdot ``HIGH.LOW``.

    >>> parse_asn(65001), parse_asn("4200000000"), parse_asn("1.10")
    (65001, 4200000000, 65546)
    >>> parse_asn("1.70000")
    Traceback (most recent call last):
    ...
    ValueError: asdot half out of range in '1.70000' (each half is 0..65535)
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an AS number")
    if isinstance(value, int):
        asn = value
    elif "." in value:
        high_s, _, low_s = value.partition(".")
        if not (high_s.isdigit() and low_s.isdigit()):
            raise ValueError(f"{value!r} is not asdot notation (HIGH.LOW)")
        high, low = int(high_s), int(low_s)
        if high > 65535 or low > 65535:
            raise ValueError(f"asdot half out of range in {value!r} (each half is 0..65535)")
        asn = high * 65536 + low
    elif value.isdigit():
        asn = int(value)
    else:
        raise ValueError(f"{value!r} is not an AS number")
    if not 0 <= asn <= ASN_MAX:
        raise ValueError(f"{asn} is outside 0..{ASN_MAX}")
    return asn


def reserved_reason(asn: int) -> str | None:
    """Why ``asn`` cannot be used, or None.

    >>> reserved_reason(23456)
    'AS_TRANS (RFC 6793)'
    >>> reserved_reason(65001) is None
    True
    """
    return RESERVED.get(asn)


def asdot(asn: int) -> str:
    """Format an ASN in asdot+ notation, as Junos and some docs print it.

    >>> asdot(65546), asdot(65001)
    ('1.10', '0.65001')
    """
    return f"{asn >> 16}.{asn & 0xFFFF}"
