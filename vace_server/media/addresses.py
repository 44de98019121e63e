"""Which IP addresses a media download (or a webhook delivery) may connect to.

The rule is an allow-list of globally routable unicast space: an address is *public* only when
Python's `ipaddress` says it is global, an IPv6 address lies in the global unicast space
2000::/3 (RFC 4291), and it is in none of the blocks below. The list covers every entry of
IANA's IPv4 and IPv6 Special-Purpose Address Registries — also those the registry marks
"globally reachable" (anycast services, AS112, AMT): media is never served from them — plus
multicast, the reserved and deprecated blocks. `ipaddress`'s own flags differ between Python
releases (3.11 treats fec0::/10 and 192.0.0.9 as global), so they are only ever an extra reason
to refuse, never the only one.

Refused IPv4 blocks: 0.0.0.0/8 (this network; 0.0.0.0/32 this host), 10.0.0.0/8, 172.16.0.0/12,
192.168.0.0/16 (private use), 100.64.0.0/10 (shared / CGN), 127.0.0.0/8 (loopback),
169.254.0.0/16 (link local), 192.0.0.0/24 (IETF protocol assignments, with 192.0.0.0/29,
192.0.0.8, .9, .10, .170, .171), 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (documentation),
192.31.196.0/24 (AS112-v4), 192.52.193.0/24 (AMT), 192.88.99.0/24 (deprecated 6to4 relay
anycast, with 192.88.99.2 6a44), 192.175.48.0/24 (AS112 direct delegation), 198.18.0.0/15
(benchmarking), 224.0.0.0/4 (multicast), 240.0.0.0/4 (reserved), 255.255.255.255/32 (limited
broadcast).

Refused IPv6 blocks: everything outside 2000::/3 — among it ::/128 (unspecified), ::1/128
(loopback), ::/96 (IPv4-compatible, deprecated), ::ffff:0:0:0/96 (IPv4-translated),
64:ff9b:1::/48 (local-use IPv4/IPv6 translation), 100::/64 (discard only), 100:0:0:1::/64 (dummy
prefix), 5f00::/16 (SRv6 SIDs), fc00::/7 (unique local), fe80::/10 (link local), fec0::/10
(deprecated site local), ff00::/8 (multicast) — and inside it 2001::/23 (IETF protocol
assignments: 2001::/32 Teredo, 2001:1::1-3 anycast, 2001:2::/48 benchmarking, 2001:3::/32 AMT,
2001:4:112::/48 AS112-v6, 2001:10::/28 ORCHID, 2001:20::/28 ORCHIDv2, 2001:30::/28 drone IDs),
2001:db8::/32 and 3fff::/20 (documentation), 2002::/16 (6to4), 2620:4f:8000::/48 (AS112
direct delegation).

Embedded IPv4 addresses are unwrapped and judged:
- IPv4-mapped (::ffff:a.b.c.d): the socket connects to a.b.c.d itself, so it is judged exactly
  as a.b.c.d (public allowed, private refused);
- NAT64 well-known prefix (64:ff9b::a.b.c.d, RFC 6052): allowed only when a.b.c.d is public
  (RFC 6052 forbids the prefix for non-global IPv4), so IPv6-only hosts behind DNS64 still reach
  IPv4 media;
- IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), 6to4 (2002:aabb:ccdd::),
  Teredo (2001:0::/32, server and obfuscated client) and local-use NAT64 (64:ff9b:1::/48) are
  refused outright, whatever they embed: they are deprecated or tunnel through relays whose
  far end we cannot judge. The refusal reason names the embedded IPv4 for the log.

`is_plain_host` is the syntax check made before a host is resolved: an IP literal without a
zone id, or an ASCII host name (no percent-encoding), so odd spellings never reach DNS.

An operator can trust further networks (an internal media host) with `trusted` networks
(`VACE_MEDIA_ALLOWED_NETWORKS`); `VACE_MEDIA_ALLOW_PRIVATE_NETWORKS` switches the rule off.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
AddressPolicy = Callable[[IPAddress], bool]
"""`address -> may we connect to it`."""


def _table(rows: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), name) for cidr, name in rows)


DENIED_IPV4: Final = _table(
    [
        ("0.0.0.0/8", "this network (RFC 791)"),
        ("0.0.0.0/32", "this host on this network (RFC 1122)"),
        ("10.0.0.0/8", "private use (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (RFC 6598)"),
        ("127.0.0.0/8", "loopback (RFC 1122)"),
        ("169.254.0.0/16", "link local (RFC 3927)"),
        ("172.16.0.0/12", "private use (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.0.0/29", "IPv4 service continuity prefix (RFC 7335)"),
        ("192.0.0.8/32", "IPv4 dummy address (RFC 7600)"),
        ("192.0.0.9/32", "PCP anycast (RFC 7723)"),
        ("192.0.0.10/32", "TURN anycast (RFC 8155)"),
        ("192.0.0.170/32", "NAT64/DNS64 discovery (RFC 8880)"),
        ("192.0.0.171/32", "NAT64/DNS64 discovery (RFC 8880)"),
        ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
        ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
        ("192.52.193.0/24", "AMT (RFC 7450)"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.88.99.2/32", "6a44 relay anycast (RFC 6751)"),
        ("192.168.0.0/16", "private use (RFC 1918)"),
        ("192.175.48.0/24", "AS112 direct delegation (RFC 7534)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
        ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
        ("224.0.0.0/4", "multicast (RFC 5771)"),
        ("240.0.0.0/4", "reserved (RFC 1112)"),
        ("255.255.255.255/32", "limited broadcast (RFC 919)"),
    ]
)

DENIED_IPV6: Final = _table(
    [
        ("::/128", "unspecified (RFC 4291)"),
        ("::1/128", "loopback (RFC 4291)"),
        ("::/96", "IPv4-compatible, deprecated (RFC 4291)"),
        ("::ffff:0:0:0/96", "IPv4-translated (RFC 2765)"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
        ("100::/64", "discard only (RFC 6666)"),
        ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
        ("2001::/23", "IETF protocol assignments (RFC 2928)"),
        ("2001::/32", "Teredo (RFC 4380)"),
        ("2001:1::1/128", "PCP anycast (RFC 7723)"),
        ("2001:1::2/128", "TURN anycast (RFC 8155)"),
        ("2001:1::3/128", "DNS-SD SRP anycast (RFC 9665)"),
        ("2001:2::/48", "benchmarking (RFC 5180)"),
        ("2001:3::/32", "AMT (RFC 7450)"),
        ("2001:4:112::/48", "AS112-v6 (RFC 7535)"),
        ("2001:10::/28", "deprecated ORCHID (RFC 4843)"),
        ("2001:20::/28", "ORCHIDv2 (RFC 7343)"),
        ("2001:30::/28", "drone remote ID entity tags (RFC 9374)"),
        ("2001:db8::/32", "documentation (RFC 3849)"),
        ("2002::/16", "6to4 (RFC 3056)"),
        ("2620:4f:8000::/48", "AS112 direct delegation (RFC 7534)"),
        ("3fff::/20", "documentation (RFC 9637)"),
        ("5f00::/16", "SRv6 SIDs (RFC 9602)"),
        ("fc00::/7", "unique local (RFC 4193)"),
        ("fe80::/10", "link local (RFC 4291)"),
        ("fec0::/10", "deprecated site local (RFC 3879)"),
        ("ff00::/8", "multicast (RFC 4291)"),
    ]
)

_HOST_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?")
GLOBAL_UNICAST_IPV6: Final = ipaddress.IPv6Network("2000::/3")
NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")


def _most_specific(address: IPAddress, table: tuple[tuple[IPNetwork, str], ...]) -> str | None:
    """`"<cidr> (<name>)"` of the longest block of `table` holding `address`, else None."""
    best: tuple[IPNetwork, str] | None = None
    for network, name in table:
        if address in network and (best is None or network.prefixlen > best[0].prefixlen):
            best = (network, name)
    return None if best is None else f"{best[0]} ({best[1]})"


def _ipv4_reason(address: ipaddress.IPv4Address) -> str | None:
    denied = _most_specific(address, DENIED_IPV4)
    if denied is not None:
        return denied
    if not address.is_global or address.is_multicast:
        return "not globally routable"
    return None


def _embedding(address: ipaddress.IPv6Address) -> str:
    """Names the IPv4 address(es) a refused tunnel/translation address carries, for logs."""
    if address.sixtofour is not None:
        return f"; embeds {address.sixtofour}"
    if address.teredo is not None:
        server, client = address.teredo
        return f"; embeds server {server}, client {client}"
    value = int(address)
    if value >> 32 in (0, 0xFFFF0000) and value & 0xFFFFFFFF:
        return f"; embeds {ipaddress.IPv4Address(value & 0xFFFFFFFF)}"
    return ""


def _ipv6_reason(address: ipaddress.IPv6Address) -> str | None:
    plain = ipaddress.IPv6Address(int(address))  # drops a %zone: judged by the address alone
    mapped = plain.ipv4_mapped
    if mapped is not None:
        reason = _ipv4_reason(mapped)
        return None if reason is None else f"IPv4-mapped {mapped}: {reason}"
    if plain in NAT64_WELL_KNOWN:
        embedded = ipaddress.IPv4Address(int(plain) & 0xFFFFFFFF)
        reason = _ipv4_reason(embedded)
        return None if reason is None else f"NAT64 {NAT64_WELL_KNOWN} of {embedded}: {reason}"
    denied = _most_specific(plain, DENIED_IPV6)
    if denied is not None:
        return denied + _embedding(plain)
    if plain not in GLOBAL_UNICAST_IPV6:
        return f"outside global unicast {GLOBAL_UNICAST_IPV6} (RFC 4291)"
    if not plain.is_global or plain.is_multicast:
        return "not globally routable"
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why `address` is not public: the refusing block, e.g. `"fec0::/10 (deprecated site
    local)"`; None when it is globally routable unicast (see the module docstring)."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_reason(address)
    return _ipv6_reason(address)


def is_public_address(address: IPAddress) -> bool:
    """True when `address` is globally routable unicast (`refusal_reason` is None)."""
    return refusal_reason(address) is None


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or ipaddress.IPv6Address(int(address))
    return any(address in network for network in networks)


def address_policy(*, allow_private: bool, trusted: Iterable[IPNetwork] = ()) -> AddressPolicy:
    """The connect-time policy: everything when `allow_private`, else public addresses plus
    those inside a `trusted` network (an IPv4-mapped address counts as its IPv4 address)."""
    if allow_private:
        return lambda _address: True
    networks = tuple(trusted)
    if not networks:
        return is_public_address
    return lambda address: _trusted(address, networks) or is_public_address(address)


def is_plain_host(host: str) -> bool:
    """True for an IP literal without zone id or an ASCII host name (IDNA-encoded already).
    Percent-encoded hosts and zone ids are refused before any DNS query is made for them."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return len(host) <= 253 and _HOST_NAME.fullmatch(host) is not None
    return "%" not in host
