"""A tripwire for the network-guard tests: one port on a loopback address that records every TCP and UDP contact.

Unlike `loopback.LoopbackServer`, which records HTTP requests, a `Tripwire` records
connections: a TCP connection that sends nothing (a preconnect) and a UDP datagram
(STUN, QUIC) are hits too. `Tripwire.flush` makes the record current without
waiting for a time: it sends its own TCP connection and datagram and waits until
both have been seen, so everything that reached the port before is recorded.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

__all__ = ["Hit", "Tripwire"]

_SENTINEL = b"tripwire-sentinel"


@dataclass
class Hit:
    """One contact: a TCP connection (with the first bytes it sent) or a UDP datagram."""

    kind: str
    peer: tuple[str, int]
    data: bytes = b""


@dataclass
class _State:
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class Tripwire:
    """A TCP listener and a UDP socket on the same port of `host`, both recording every contact."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self.host = host
        self._state = _State()
        self._sentinel_peers: set[tuple[str, int]] = set()
        self._tcp, self._udp = _bind_pair(host)
        self.port = int(self._tcp.getsockname()[1])
        self._threads = [
            threading.Thread(target=self._accept, daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/", scheme: str = "http") -> str:
        """A URL aimed at the tripwire."""
        return f"{scheme}://{self.address}{path}"

    def contacted(self) -> bool:
        """Whether anything but the tripwire's own probes has reached it yet (no waiting)."""
        with self._state.lock:
            return any(not self._is_probe(hit) for hit in self._state.hits)

    def flush(self, timeout: float = 10.0) -> list[Hit]:
        """Every contact so far (the tripwire's own probes left out), once the probes sent now have arrived."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as probe:
            peer = probe.getsockname()
            self._sentinel_peers.add((str(peer[0]), int(peer[1])))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.sendto(_SENTINEL, (self.host, self.port))
        with self._state.changed:
            arrived = self._state.changed.wait_for(self._probes_arrived, timeout)
            assert arrived, "the tripwire's own probes did not arrive"
            return [hit for hit in self._state.hits if not self._is_probe(hit)]

    def _probes_arrived(self) -> bool:
        kinds = {hit.kind for hit in self._state.hits if self._is_probe(hit)}
        return kinds == {"tcp", "udp"}

    def _is_probe(self, hit: Hit) -> bool:
        return hit.peer in self._sentinel_peers if hit.kind == "tcp" else hit.data == _SENTINEL

    def _record(self, hit: Hit) -> None:
        with self._state.changed:
            self._state.hits.append(hit)
            self._state.changed.notify_all()

    def _accept(self) -> None:
        while True:
            try:
                connection, peer = self._tcp.accept()
            except OSError:
                return  # closed
            hit = Hit("tcp", (str(peer[0]), int(peer[1])))
            self._record(hit)
            threading.Thread(target=_read_some, args=(connection, hit), daemon=True).start()

    def _receive(self) -> None:
        while True:
            try:
                data, peer = self._udp.recvfrom(65536)
            except OSError:
                return  # closed
            if peer is None:
                return  # shut down
            self._record(Hit("udp", (str(peer[0]), int(peer[1])), data[:200]))

    def __enter__(self) -> Tripwire:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in (self._tcp, self._udp):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


def _bind_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """A listening TCP socket and a UDP socket bound to the same free port of `host`."""
    for _ in range(20):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind((host, 0))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((host, tcp.getsockname()[1]))
        except OSError:  # that UDP port is taken: try another
            tcp.close()
            udp.close()
            continue
        tcp.listen(64)
        return tcp, udp
    raise OSError(f"no port free for both TCP and UDP on {host}")


def _read_some(connection: socket.socket, hit: Hit) -> None:
    """Keep the first bytes a connection sends (a request line, a STUN message), then close it."""
    connection.settimeout(2)
    with connection, contextlib.suppress(OSError):
        while len(hit.data) < 200:
            chunk = connection.recv(4096)
            if not chunk:
                break
            hit.data += chunk
