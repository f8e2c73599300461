"""Which address a login counts against (services/identity/client_address.py): the trust
rule for x-forwarded-for."""

from __future__ import annotations

from services.identity.client_address import client_address, parse_networks, peer_host


def test_peer_hosts() -> None:
    assert peer_host("ipv4:203.0.113.7:51234") == "203.0.113.7"
    assert peer_host("ipv6:[2001:db8::1]:443") == "2001:db8::1"
    assert peer_host("unix:/tmp/identity.sock") == "unix"
    assert peer_host("nonsense") == ""


def test_forwarded_address_is_believed_from_loopback_and_trusted_proxies_only() -> None:
    gateway = parse_networks("10.0.0.0/24, 172.18.0.5")
    assert client_address("ipv4:127.0.0.1:5000", "198.51.100.2") == "198.51.100.2"
    assert client_address("ipv6:[::1]:5000", "198.51.100.2") == "198.51.100.2"
    assert client_address("ipv6:[::ffff:127.0.0.1]:5000", "198.51.100.2") == "198.51.100.2"
    assert client_address("ipv4:10.0.0.9:5000", "198.51.100.2", gateway) == "198.51.100.2"
    assert client_address("ipv4:172.18.0.5:5000", "198.51.100.2", gateway) == "198.51.100.2"
    # Anyone else cannot choose the address their failures count against.
    assert client_address("ipv4:203.0.113.7:5000", "198.51.100.2", gateway) == "203.0.113.7"
    assert client_address("ipv4:172.18.0.6:5000", "198.51.100.2", gateway) == "172.18.0.6"


def test_the_last_hop_counts_and_junk_is_ignored() -> None:
    # A client's own header travels first; the trusted proxy's entry is the last one.
    assert client_address("ipv4:127.0.0.1:1", "1.2.3.4, 198.51.100.2") == "198.51.100.2"
    assert client_address("ipv4:127.0.0.1:1", "not-an-address") == "127.0.0.1"
    assert client_address("ipv4:127.0.0.1:1", None) == "127.0.0.1"
    assert client_address("", None) == "unknown"
