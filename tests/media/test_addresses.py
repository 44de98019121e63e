"""The connect-time address rule: every IANA special-purpose block (IPv4 and IPv6) is refused,
embedded IPv4 addresses are unwrapped, globally routable unicast is allowed.

The blocks are listed here on their own (from the IANA registries), not imported from the
module, so a block dropped from the module's table fails a test. Addresses are only judged,
never connected to.
"""

from __future__ import annotations

import ipaddress

import pytest

from vace_server.media.addresses import (
    DENIED_IPV4,
    DENIED_IPV6,
    address_policy,
    is_plain_host,
    is_public_address,
    refusal_reason,
)
from vace_server.settings import parse_networks

IANA_IPV4_SPECIAL = [
    "0.0.0.0/8",
    "0.0.0.0/32",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.0.0/29",
    "192.0.0.8/32",
    "192.0.0.9/32",
    "192.0.0.10/32",
    "192.0.0.170/32",
    "192.0.0.171/32",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.88.99.2/32",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "224.0.0.0/4",  # multicast (its own registry)
    "233.252.0.0/24",  # MCAST-TEST-NET
]

IANA_IPV6_SPECIAL = [
    "::/128",
    "::1/128",
    "::/96",  # IPv4-compatible (deprecated)
    "::ffff:0:0:0/96",  # IPv4-translated
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001::/32",
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:1::3/128",
    "2001:2::/48",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:30::/28",
    "2001:db8::/32",
    "2002::/16",
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
    "ff02::/16",
    # outside the global unicast space 2000::/3 (IANA's IPv6 address space registry)
    "::/8",
    "200::/7",
    "400::/6",
    "800::/5",
    "1000::/4",
    "4000::/3",
    "6000::/3",
    "8000::/3",
    "a000::/3",
    "c000::/3",
    "e000::/4",
    "f000::/5",
    "f800::/6",
    "fe00::/9",
]


def _first_middle_last(cidr: str) -> list[tuple[str, str]]:
    net = ipaddress.ip_network(cidr)
    picks = {net[0], net[net.num_addresses // 2], net[-1]}
    return [(cidr, str(a)) for a in sorted(picks)]


BLOCK_ADDRESSES = [
    pair for cidr in IANA_IPV4_SPECIAL + IANA_IPV6_SPECIAL for pair in _first_middle_last(cidr)
]


@pytest.mark.parametrize(("block", "address"), BLOCK_ADDRESSES)
def test_every_special_purpose_block_is_refused(block: str, address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public_address(ip), f"{address} of {block} must be refused"
    assert refusal_reason(ip)


@pytest.mark.parametrize("network", [n for n, _ in DENIED_IPV4 + DENIED_IPV6], ids=lambda n: str(n))
def test_every_listed_block_is_refused_at_its_edges(network: ipaddress.IPv4Network) -> None:
    for address in (network[0], network[-1]):
        assert not is_public_address(address)


def test_refusal_names_the_most_specific_block() -> None:
    def reason(text: str) -> str:
        return refusal_reason(ipaddress.ip_address(text)) or ""

    assert reason("fec0::1") == "fec0::/10 (deprecated site local (RFC 3879))"
    assert reason("192.0.0.9") == "192.0.0.9/32 (PCP anycast (RFC 7723))"
    assert reason("::1").startswith("::1/128 (loopback")
    assert reason("2001::1").startswith("2001::/32 (Teredo")
    assert reason("4000::1").startswith("outside global unicast 2000::/3")
    assert reason("::ffff:10.0.0.1") == "IPv4-mapped 10.0.0.1: 10.0.0.0/8 (private use (RFC 1918))"


PUBLIC = [
    "8.8.8.8",
    "8.8.4.4",
    "1.1.1.1",
    "1.0.0.1",
    "9.9.9.9",
    "208.67.222.222",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2620:fe::fe",
    "2a00:1450:4001::1",
    # just outside refused blocks
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2001:200::1",
    "2001:dc0::1",
    "2003::1",
    "2620:4f:7fff::1",
    "2620:4f:8001::1",
    "3ffe:ffff::1",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert is_public_address(ip), refusal_reason(ip)


PRIVATE_IPV4 = ["127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254",
                "100.64.0.1", "0.0.0.0", "192.0.0.170"]  # fmt: skip


def _v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def _wrapped(kind: str, v4: str) -> ipaddress.IPv6Address:
    """`v4` embedded in one of the IPv6 wrappers."""
    value = _v4(v4)
    if kind == "mapped":
        return ipaddress.IPv6Address((0xFFFF << 32) | value)
    if kind == "compatible":
        return ipaddress.IPv6Address(value)
    if kind == "translated":
        return ipaddress.IPv6Address((0xFFFF << 48) | value)
    if kind == "6to4":
        return ipaddress.IPv6Address((0x2002 << 112) | (value << 80) | 1)
    if kind == "teredo-server":  # 2001:0:<server>:<flags>:<port>:<client ^ ffffffff>
        public_client = _v4("8.8.8.8") ^ 0xFFFFFFFF
        return ipaddress.IPv6Address((0x20010000 << 96) | (value << 64) | public_client)
    if kind == "teredo-client":  # a public server, the obfuscated private client
        return ipaddress.IPv6Address(
            (0x20010000 << 96) | (_v4("8.8.8.8") << 64) | (value ^ 0xFFFFFFFF)
        )
    if kind == "nat64":
        return ipaddress.IPv6Address((0x64FF9B << 96) | value)
    if kind == "nat64-local":
        return ipaddress.IPv6Address((0x64FF9B0001 << 80) | value)
    raise AssertionError(kind)


WRAPPERS = ["mapped", "compatible", "translated", "6to4", "teredo-server", "teredo-client",
            "nat64", "nat64-local"]  # fmt: skip


@pytest.mark.parametrize("kind", WRAPPERS)
@pytest.mark.parametrize("v4", PRIVATE_IPV4)
def test_embedded_private_ipv4_is_refused(kind: str, v4: str) -> None:
    address = _wrapped(kind, v4)
    assert not is_public_address(address), f"{address} ({kind} of {v4}) must be refused"


def test_wrappers_embed_what_the_test_says() -> None:
    assert str(_wrapped("mapped", "127.0.0.1")) == "::ffff:7f00:1"
    assert _wrapped("6to4", "10.0.0.1").sixtofour == ipaddress.IPv4Address("10.0.0.1")
    server, client = _wrapped("teredo-client", "192.168.1.1").teredo  # type: ignore[misc]
    assert (str(server), str(client)) == ("8.8.8.8", "192.168.1.1")
    assert str(_wrapped("nat64", "10.0.0.1")) == "64:ff9b::a00:1"


@pytest.mark.parametrize("kind", ["mapped", "nat64"])
def test_mapped_and_nat64_of_a_public_ipv4_are_allowed(kind: str) -> None:
    assert is_public_address(_wrapped(kind, "8.8.8.8"))


@pytest.mark.parametrize("kind", ["compatible", "translated", "6to4", "teredo-server",
                                  "nat64-local"])  # fmt: skip
def test_tunnel_and_deprecated_embeddings_are_refused_even_when_public(kind: str) -> None:
    address = _wrapped(kind, "8.8.8.8")
    reason = refusal_reason(address) or ""
    assert reason and not is_public_address(address)
    if kind in ("6to4", "teredo-server"):
        assert "8.8.8.8" in reason  # the log names what was embedded


def test_zone_ids_are_judged_by_the_address() -> None:
    assert not is_public_address(ipaddress.ip_address("fe80::1%eth0"))
    assert not is_public_address(ipaddress.ip_address("fec0::1%1"))


def test_spelled_out_ipv4_mapped_loopback() -> None:
    assert not is_public_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not is_public_address(ipaddress.ip_address("0:0:0:0:0:ffff:7f00:0001"))


def test_trusted_networks_extend_the_rule() -> None:
    policy = address_policy(allow_private=False, trusted=parse_networks("127.0.0.2/32, fd00::/8"))
    assert policy(ipaddress.ip_address("127.0.0.2"))
    assert policy(ipaddress.ip_address("::ffff:127.0.0.2"))  # the same IPv4 socket
    assert policy(ipaddress.ip_address("fd00::5"))
    assert policy(ipaddress.ip_address("8.8.8.8"))
    assert not policy(ipaddress.ip_address("127.0.0.1"))
    assert not policy(ipaddress.ip_address("fc00::5"))


def test_default_and_permissive_policies() -> None:
    strict = address_policy(allow_private=False)
    assert not strict(ipaddress.ip_address("10.0.0.1"))
    assert strict(ipaddress.ip_address("1.1.1.1"))
    assert address_policy(allow_private=True)(ipaddress.ip_address("10.0.0.1"))


@pytest.mark.parametrize("text", ["10.1.2.3/24", "nonsense", "10.0.0.0/33", "fd00::/129"])
def test_bad_networks_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="allowed networks"):
        parse_networks(f"127.0.0.2/32,{text}")


def test_networks_parse_blanks_and_bare_addresses() -> None:
    assert parse_networks("") == ()
    assert parse_networks(" 10.0.0.5 , ,fd00::1") == (
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("fd00::1/128"),
    )


@pytest.mark.parametrize(
    ("host", "plain"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("media.example", True),
        ("xn--bcher-kva.example", True),
        ("cdn_1.example.", True),
        ("0x7f.1", True),  # a name to us; getaddrinfo reads it as 127.0.0.1, then refused
        ("fe80::1%eth0", False),
        ("fe80::1%25eth0", False),
        ("%31%32%37.0.0.1", False),
        ("a..b", False),
        ("a" * 64 + ".example", False),
        ("a." * 127 + "bc", False),
        ("", False),
    ],
)
def test_plain_hosts(host: str, plain: bool) -> None:
    assert is_plain_host(host) is plain
