"""The address a login comes from, for failed-login throttling (docs/security.md).

The gRPC peer is the caller's address, unless the caller is a proxy Govflow trusts to say
who its own caller was. The trust rule: ``x-forwarded-for`` is read only when the peer is
loopback (the embedded deployment, where the gateway runs beside identity), a Unix socket,
or in the configured ``trusted_proxies`` networks (the gateway's addresses in a scaled-out
deployment); from anyone else it is ignored, so a caller cannot pick the address its
failures count against. The gateway sets the header itself from the TCP connection and
never passes on one it was sent.
"""

from __future__ import annotations

import ipaddress

FORWARDED_FOR = "x-forwarded-for"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks (``10.0.0.5, 172.18.0.0/16``)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string: ``ipv4:1.2.3.4:5678`` -> ``1.2.3.4``,
    ``ipv6:[::1]:5678`` -> ``::1``, ``unix:/path`` -> ``unix``; "" if unknown."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    if kind in ("unix", "unix-abstract"):
        return "unix"
    return ""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return ip


def client_address(peer: str, forwarded: str | None,
                   trusted: tuple[Network, ...] = ()) -> str:
    """The client's address: the forwarded one if the peer is trusted to forward (see the
    module docstring) and it is a valid IP address, else the peer's own host."""
    host = peer_host(peer)
    if forwarded:
        ip = _ip(host)
        trusted_peer = host == "unix" or (ip is not None and (
            ip.is_loopback or any(ip in net for net in trusted)))
        # A trusted proxy appends the address it saw, so the last entry is the one it vouches for.
        said = _ip(forwarded.split(",")[-1])
        if trusted_peer and said is not None:
            return str(said)
    return host or "unknown"
