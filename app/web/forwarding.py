"""Who is asking, and through what: the Host allow-list, forwarded headers from trusted proxies, the local address.

A browser tricked by DNS rebinding sends the attacker's host name; only the names Tuneboard is known by are
answered. X-Forwarded-For/-Proto are believed only from the configured proxies: anyone else could write them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from starlette.types import Scope

from app.config import Settings

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]", ""})
# Requests that carry X-Forwarded-For from an address that is not a trusted proxy share one throttle bucket: the
# header is anyone's to write (and uvicorn's own proxy handling may already have put a value of it in the client).
UNTRUSTED_FORWARDED = "forwarded by an untrusted address"
_HOST_NAME = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)$")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def host_name(value: str) -> str:
    """A Host header's name, lower-case, without the port ('[::1]:8000' -> '[::1]'); '' when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name = value[: value.find("]") + 1] if "]" in value else ""
    else:
        name = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    name = name.rstrip(".") if name != "." else ""
    return name if _HOST_NAME.match(name) else ""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # An address as written in a Host header or a socket name; an IPv4-mapped IPv6 address (a dual-stack bind)
    # counts as the IPv4 address it carries.
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _as_host_name(entry: str) -> str:
    # Settings and socket names give IPv6 addresses bare ('::1'); Host headers bracket them.
    ip = _ip(entry)
    if ip is not None:
        return f"[{ip}]" if ip.version == 6 else str(ip)
    return host_name(entry) or entry.strip().lower()


def is_loopback(address: str) -> bool:
    """Whether an address (IP, bracketed or not) is a loopback one; names other than 'localhost' are not."""
    if address == "localhost":
        return True
    ip = _ip(address)
    return ip is not None and ip.is_loopback


def is_ip(address: str) -> bool:
    """Whether the text is an IP address (bracketed IPv6 included)."""
    return _ip(address) is not None


@dataclass(frozen=True)
class NetworkPolicy:
    """The host names answered and the proxies believed, from the settings."""

    allowed_hosts: frozenset[str]
    any_host: bool
    trusted_proxies: tuple[Network, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> NetworkPolicy:
        """Loopback names, the bound host (unless a wildcard) and TUNEBOARD_ALLOWED_HOSTS; TRUSTED_PROXIES."""
        names = set(LOOPBACK_NAMES)
        if settings.host not in WILDCARD_BINDS:
            names.add(_as_host_name(settings.host))
        names.update(_as_host_name(entry) for entry in settings.allowed_hosts if entry.strip() != "*")
        return cls(
            allowed_hosts=frozenset(names),
            any_host=any(entry.strip() == "*" for entry in settings.allowed_hosts),
            trusted_proxies=tuple(ipaddress.ip_network(entry, strict=False) for entry in settings.trusted_proxies),
        )

    def host_allowed(self, host_header: str | None, local_address: str | None) -> bool:
        """Whether the Host header names this server: an allowed name, or the address the connection arrived on.

        An IP literal equal to the local address cannot come from DNS rebinding (that needs a name), so a server
        bound to all interfaces answers on each of its addresses without listing them.
        """
        if self.any_host:
            return True
        name = host_name(host_header or "")
        if not name:
            return False
        if name in self.allowed_hosts:
            return True
        return bool(local_address) and is_ip(name) and _as_host_name(str(local_address)) == _as_host_name(name)

    def trusts(self, address: str | None) -> bool:
        """Whether the address is one of the configured reverse proxies."""
        ip = _ip(address) if address and self.trusted_proxies else None
        return ip is not None and any(ip in network for network in self.trusted_proxies)

    def apply_forwarded(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        """Believe a trusted proxy's X-Forwarded-For/-Proto (rewriting the scope's client and scheme); the key
        the login throttle counts this client under."""
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        trusted = self.trusts(peer)
        if trusted:
            proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
        forwarded = headers.get(b"x-forwarded-for")
        if forwarded is None:
            return peer
        if not trusted:
            return UNTRUSTED_FORWARDED
        # Walk back from the proxy that talked to us: the first address that is not a trusted proxy is the client.
        hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
        origin = next((hop for hop in reversed(hops) if not self.trusts(hop)), hops[0] if hops else peer)
        scope["client"] = (origin, 0)
        return origin
