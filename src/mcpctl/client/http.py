"""A small typed client for the mcpd REST API, on the standard library's http.client.

The CLI must start fast; http.client costs a few milliseconds to import where httpx costs a
third of a second. ``Transport`` is the seam tests and other programs can replace.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from mcpctl.errors import AppError, InvalidInput, Unavailable, from_problem

RETRY_STATUSES = {429, 503}


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class Transport(Protocol):
    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> RawResponse:
        """Send one request. Raises: OSError when the server cannot be reached."""
        ...


class HttpTransport:
    """One keep-alive connection to mcpd (http or https)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"server: {base_url!r} is not an http(s) URL")
        self.base_url = base_url
        self._prefix = parts.path.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port
        self._https = parts.scheme == "https"
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> RawResponse:
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed meanwhile: reconnect once.
                self.close()
                if attempt:
                    raise
            except (OSError, http.client.HTTPException):
                # http.client refuses to reuse a connection whose request failed midway
                # (CannotSendRequest); start afresh next time.
                self.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _retry_delay(attempt: int, retry_after: str | None, base: float, cap: float) -> float:
    if retry_after:
        try:
            return min(cap, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return float(random.uniform(0, min(cap, base * 2**attempt)))  # full jitter


class McpdClient:
    """Typed calls to mcpd; errors come back as the same AppError classes mcpd raised."""

    def __init__(
        self,
        server: str,
        token: str | None,
        *,
        transport: Transport | None = None,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        backoff_cap: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        impersonate: str | None = None,
    ) -> None:
        self.server = server
        self.token = token
        # Sent as Impersonate-User on every request: mcpd then acts as that user.
        self.impersonate = impersonate
        self.transport = transport or HttpTransport(server)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep

    def close(self) -> None:
        """Close the transport's connection, if it keeps one."""
        close = getattr(self.transport, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> McpdClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        retry: bool = True,
    ) -> Any:
        """Send a request and decode the JSON answer; 429 and 503 are retried unless ``retry``
        is false.

        Raises:
            AppError: the error mcpd reported, or Unavailable when it cannot be reached.
        """
        query = {
            k: ("true" if v is True else v)
            for k, v in (params or {}).items()
            if v is not None and v is not False
        }
        full = path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.impersonate:
            headers["Impersonate-User"] = self.impersonate
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.max_attempts):
            resp = self._send(method, full, headers, data)
            if retry and resp.status in RETRY_STATUSES and attempt + 1 < self.max_attempts:
                self.sleep(
                    _retry_delay(
                        attempt,
                        resp.headers.get("retry-after"),
                        self.backoff_base,
                        self.backoff_cap,
                    )
                )
                continue
            return self._decode(resp)
        raise AssertionError("unreachable")

    def _send(
        self, method: str, path: str, headers: dict[str, str], data: bytes | None
    ) -> RawResponse:
        try:
            return self.transport.send(method, path, headers, data)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise Unavailable(
                f"cannot reach mcpd at {self.server} ({exc.__class__.__name__}: {exc}); "
                "start it with `mcpctl up` or `mcpd serve`, or point at another with "
                "`mcpctl login --server URL`"
            ) from exc

    @staticmethod
    def _decode(resp: RawResponse) -> Any:
        try:
            payload = json.loads(resp.body) if resp.body else None
        except ValueError:
            payload = None
        if resp.status >= 400:
            if isinstance(payload, dict) and "code" in payload:
                raise from_problem(payload, resp.status)
            raise AppError(f"mcpd answered HTTP {resp.status}: {resp.body[:200]!r}")
        return payload

    # -- resources -----------------------------------------------------------------------

    def iter_objects(
        self,
        plural: str,
        *,
        selector: str | None = None,
        chunk_size: int = 500,
        show_values: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every object of a kind, fetched in chunks like kubectl."""
        yield from self._pages(
            f"/api/v1/{plural}",
            {"labelSelector": selector, "limit": chunk_size, "showValues": show_values},
        )

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list, following continue tokens."""
        token: str | None = None
        while True:
            page = self.request("GET", path, params={**params, "continue": token})
            yield from page["items"]
            token = page.get("metadata", {}).get("continue")
            if not token:
                return

    def get_object(self, plural: str, name: str, *, show_values: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/api/v1/{plural}/{quote(name, safe='')}", params={"showValues": show_values}
        )
        return result

    def apply_object(
        self, plural: str, obj: dict[str, Any], *, dry_run: bool = False
    ) -> tuple[str, dict[str, Any]]:
        name = str(obj["metadata"]["name"])
        result = self.request(
            "PUT", f"/api/v1/{plural}/{quote(name, safe='')}", params={"dryRun": dry_run}, body=obj
        )
        return str(result["outcome"]), dict(result["object"])

    def apply_many(
        self, objects: list[dict[str, Any]], *, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Apply objects in order in one request; one result per object (outcome or error)."""
        result = self.request(
            "POST", "/api/v1/apply", params={"dryRun": dry_run}, body={"items": objects}
        )
        return list(result["results"])

    def create_object(
        self, plural: str, obj: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/api/v1/{plural}", params={"dryRun": dry_run}, body=obj
        )
        return result

    def delete_object(self, plural: str, name: str, *, dry_run: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "DELETE", f"/api/v1/{plural}/{quote(name, safe='')}", params={"dryRun": dry_run}
        )
        return result

    def usage(self, plural: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/api/v1/{plural}/{quote(name, safe='')}/usage"
        )
        return result

    def permissions(self, plural: str, name: str) -> list[dict[str, Any]]:
        """A user's or group's permissions (``plural`` users or groups), each with its origin:
        role, resource, name, action, via (direct or group G) and definition."""
        path = f"/api/v1/{plural}/{quote(name, safe='')}/permissions"
        return list(self.request("GET", path)["items"])

    # -- audit ---------------------------------------------------------------------------

    def iter_audit_events(
        self,
        *,
        since: str | None = None,
        user: str | None = None,
        kind: str | None = None,
        chunk_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Audit events, newest first, fetched in chunks (needs the `audit` operation)."""
        yield from self._pages(
            "/api/v1/auditevents",
            {"since": since, "user": user, "kind": kind, "limit": chunk_size},
        )

    # -- auth ----------------------------------------------------------------------------

    def login(self, user: str, password: str) -> str:
        # Not retried: a rate-limited login says when to try again, the user decides.
        body = {"user": user, "password": password}
        return str(self.request("POST", "/api/v1/auth/login", body=body, retry=False)["token"])

    def change_password(self, current: str, new: str) -> None:
        body = {"current": current, "new": new}
        self.request("POST", "/api/v1/auth/password", body=body, retry=False)

    def list_tokens(self, *, all_users: bool = False) -> list[dict[str, Any]]:
        """Your unexpired tokens, or every user's (never the tokens themselves)."""
        return list(self.request("GET", "/api/v1/tokens", params={"all": all_users})["items"])

    def delete_token(self, token_id: str) -> None:
        self.request("DELETE", f"/api/v1/tokens/{quote(token_id, safe='')}")

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/auth/whoami")
        return result

    def can_i(self, verb: str, resource: str, name: str | None = None) -> bool:
        """Whether the token's user may ``verb`` ``resource`` (or the one object ``name``)."""
        params = {"verb": verb, "resource": resource, **({"name": name} if name else {})}
        return bool(self.request("GET", "/api/v1/auth/can-i", params=params)["allowed"])

    # -- instances and logs -------------------------------------------------------------

    def list_instances(self) -> list[dict[str, Any]]:
        """The instances of the servers you may view (one per running server)."""
        return list(self.request("GET", "/api/v1/instances")["items"])

    def get_instance(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v1/instances/{quote(name, safe='')}")
        return result

    def restart_server(self, name: str) -> dict[str, Any]:
        """Stop the server's instance and start a new one; the new instance. Not retried: a
        503 here says why the new instance did not start."""
        path = f"/api/v1/servers/{quote(name, safe='')}/restart"
        result: dict[str, Any] = self.request("POST", path, retry=False)
        return result

    def iter_server_logs(
        self, name: str, *, tail: int | None = None, follow: bool = False
    ) -> Iterator[dict[str, Any]]:
        """A server's log lines ({time, stream, text}) as they arrive; with ``follow`` until
        mcpd closes the stream. Streams on a connection of its own, without a read timeout.

        Raises:
            AppError: the error mcpd reported, or Unavailable when it cannot be reached.
        """
        params: dict[str, Any] = {}
        if tail is not None:
            params["tail"] = tail
        if follow:
            params["follow"] = "true"
        yield from self._stream_lines(f"/api/v1/servers/{quote(name, safe='')}/logs", params)

    def _stream_lines(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        parts = urlsplit(self.server)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=None)
        headers = {"Accept": "application/x-ndjson"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        full = parts.path.rstrip("/") + path + (f"?{urlencode(params)}" if params else "")
        try:
            try:
                conn.request("GET", full, headers=headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise Unavailable(f"cannot reach mcpd at {self.server} ({exc})") from exc
            if resp.status >= 400:
                self._decode(RawResponse(resp.status, dict(resp.getheaders()), resp.read()))
            for line in resp:
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    # -- backup and restore --------------------------------------------------------------

    def backup(self, passphrase: str) -> dict[str, Any]:
        """The backup document; the passphrase goes in the body, never in the URL."""
        result: dict[str, Any] = self.request(
            "POST", "/api/v1/backup", body={"passphrase": passphrase}
        )
        return result

    def restore(
        self, document: dict[str, Any], passphrase: str, *, conflict: str, dry_run: bool
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST",
            "/api/v1/restore",
            params={"conflict": conflict, "dryRun": dry_run},
            body={"passphrase": passphrase, "backup": document},
        )
        return result
