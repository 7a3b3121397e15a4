"""What an exchange can fail with. Deliberately not ``AppError``s: the layer above decides what
a failure means (an upstream that is down, a backend to fail over from, a request to resend)::

    HttpError                   the exchange failed in transport
    ├── ConnectError            no connection: refused, unreachable, name not found, TLS
    │                           handshake or certificate, a proxy that would not tunnel
    ├── HttpTimeout             a bound of ``Timeout`` passed (``seconds`` says which bound)
    │   ├── ConnectTimeout      no connection within ``connect``
    │   ├── PoolTimeout         no free connection within ``connect`` (``max_connections``)
    │   ├── WriteTimeout        the request not sent within ``write``
    │   └── ReadTimeout         nothing received for ``read``
    ├── ConnectionLost          the connection failed or closed before the response was whole
    └── InvalidResponse         the bytes that came back are not HTTP/1.1
"""

from __future__ import annotations


class HttpError(Exception):
    """The exchange failed in transport: cannot connect, connection lost, or not valid HTTP."""


class ConnectError(HttpError):
    """No connection could be made; ``reason`` is why, without the origin."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class HttpTimeout(HttpError):
    """A bound passed; ``seconds`` is the bound."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class ConnectTimeout(HttpTimeout):
    """No connection within the connect timeout."""


class PoolTimeout(HttpTimeout):
    """Every connection the pool may open was busy for the whole connect timeout."""


class WriteTimeout(HttpTimeout):
    """The request could not be sent within the write timeout."""


class ReadTimeout(HttpTimeout):
    """Nothing arrived for the read timeout (before the headers or between two body pieces)."""


class ConnectionLost(HttpError):
    """The connection failed, or the server closed it, before the response was complete."""


class InvalidResponse(HttpError):
    """What the server sent is not an HTTP/1.1 response."""
