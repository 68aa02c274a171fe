"""One webhook POST: to an address already checked, within a wall-clock deadline, reading the status only.

Why not an ordinary HTTP client (``requests`` did this before): its timeout bounds each socket read, not the
delivery, so a receiver trickling a byte a second holds the dispatcher as long as it likes; it reads the
whole answer into memory; and it resolves the host name again to connect, so a DNS server answering a
public address to the check and a private one a moment later reaches inside (DNS rebinding). The dispatcher
thread also sends the guardians' SMS: one slow tenant must not hold those up.

So here:

- the connection goes to the addresses :func:`service.outbox.webhooks.check_url` resolved and checked,
  tried in their order when one refuses the connection; the name is never resolved again. ``Host``, TLS
  SNI and the certificate's hostname check still use the URL's host name;
- a :class:`Deadline` timer shuts the socket down when the time is up, whatever the socket is waiting for
  (a trickled status line, a TLS handshake, a full send buffer); connecting is bounded by the time left;
- only the status line and headers are read (``http.client`` bounds them: at most 100 header lines of
  64 KiB each), then the connection is closed with the body unread, however large;
- redirects are never followed: a 3xx is an answer like any other.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect and what to tell the server there.

    ``host`` is the URL's host (ASCII, IDNA-encoded if need be; an IP literal without brackets): for TLS SNI
    and the certificate check. ``host_header`` is the ``Host`` header. ``path`` holds the path and query,
    percent-encoded. ``addresses`` are the checked ``(family, sockaddr)`` to connect to, in order.
    """

    scheme: str
    host: str
    port: int
    host_header: str
    path: str
    addresses: tuple[tuple[int, tuple[Any, ...]], ...] = ()


class Deadline:
    """The whole delivery's time: a timer shuts the watched socket down when it passes.

    A per-read timeout cannot bound a delivery (each byte arriving in time restarts it); shutting the socket
    down from another thread wakes whatever call is blocked on it, which then fails. Use as a context
    manager: leaving it stops the timer, and the socket is never touched after that (it may be closed and
    its descriptor reused by then).
    """

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._passed = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._timer.cancel()
        self.watch(None)

    def remaining(self) -> float:
        """Seconds left; ``TimeoutError`` once none are."""
        left = self._end - time.monotonic()
        if left <= 0 or self._passed:
            raise TimeoutError("the webhook delivery's deadline passed")
        return left

    def watch(self, sock: socket.socket | None) -> None:
        """The socket to shut down when the time is up (``None``: none any more); at once if it is up."""
        with self._lock:
            self._sock = sock
            if self._passed and sock is not None:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self._passed = True
            if self._sock is not None:
                _shut(self._sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for a TLS socket: ``SSLSocket.shutdown`` would first drop its TLS
    # state under the feet of the thread reading it. An error: not connected yet, or closed already.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def post(target: Target, body: bytes, headers: dict[str, str], deadline: Deadline) -> int:
    """POST ``body`` to ``target`` and return the answer's status; ``OSError`` or ``HTTPException`` if none.

    The connection is closed before returning, the answer's body unread.
    """
    sock = _open(target, deadline)
    response: http.client.HTTPResponse | None = None
    connection: http.client.HTTPConnection | None = None
    try:
        if target.scheme == "https":
            sock = _tls(sock, target.host, deadline)
        connection = http.client.HTTPConnection(target.host, target.port)
        connection.sock = sock
        connection.request("POST", target.path, body=body, headers={"Host": target.host_header, **headers})
        response = connection.getresponse()  # the status line and headers, not the body
        return response.status
    finally:
        deadline.watch(None)  # before closing: a closed socket's descriptor may be reused at once
        if response is not None:
            response.close()  # its file holds the socket open otherwise
        if connection is not None:
            connection.close()
        sock.close()


def _tls(sock: socket.socket, hostname: str, deadline: Deadline) -> ssl.SSLSocket:
    """TLS over ``sock`` for ``hostname`` (SNI, and the certificate must name it), within the deadline."""
    context = ssl.create_default_context()  # verifies the certificate chain and its hostname
    tls = context.wrap_socket(sock, server_hostname=hostname, do_handshake_on_connect=False)
    deadline.watch(tls)  # before the handshake, which a receiver could trickle too
    try:
        tls.do_handshake()
    except OSError:
        deadline.watch(None)
        tls.close()
        raise
    return tls


def _open(target: Target, deadline: Deadline) -> socket.socket:
    """A TCP connection to the first checked address that accepts one."""
    failure: OSError = OSError("the webhook's host has no address to connect to")
    for family, address in target.addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        deadline.watch(sock)
        try:
            sock.settimeout(deadline.remaining())  # bounds connect(), which a shutdown does not interrupt
            sock.connect(address)
        except OSError as exc:
            deadline.watch(None)
            sock.close()
            failure = exc
            if isinstance(exc, TimeoutError):
                break  # the deadline passed: no time for the next address
            continue
        return sock
    raise failure
