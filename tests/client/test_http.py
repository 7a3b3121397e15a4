"""McpdClient over a fake Transport (the seam of client/http.py), and HttpTransport for real."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from mcpctl.client.http import HttpTransport, McpdClient, RawResponse
from mcpctl.errors import (
    AlreadyExists,
    AppError,
    Conflict,
    InUse,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
    VersionConflict,
)


@dataclass
class Sent:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeTransport:
    """Answers with the scripted responses in order (an exception is raised instead)."""

    answers: list[RawResponse | BaseException]
    sent: list[Sent] = field(default_factory=list)
    closed: bool = False

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> RawResponse:
        self.sent.append(
            Sent(method, path, dict(headers), None if body is None else json.loads(body))
        )
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


def reply(status: int, payload: Any = None, **headers: str) -> RawResponse:
    body = b"" if payload is None else json.dumps(payload).encode()
    return RawResponse(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def problem(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:mcpctl:problem:{code}",
        "title": code,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def client_with(
    *answers: RawResponse | BaseException, **kwargs: Any
) -> tuple[McpdClient, FakeTransport, list[float]]:
    transport = FakeTransport(list(answers))
    delays: list[float] = []
    client = McpdClient(
        "http://mcpd.test:7460", "mcpctl_tok", transport=transport, sleep=delays.append, **kwargs
    )
    return client, transport, delays


# -- requests ------------------------------------------------------------------------------


def test_request_sends_the_bearer_token_and_json_body() -> None:
    client, transport, _ = client_with(reply(200, {"ok": True}))
    assert client.request("POST", "/api/v1/things", body={"a": 1}) == {"ok": True}
    (sent,) = transport.sent
    assert (sent.method, sent.path, sent.body) == ("POST", "/api/v1/things", {"a": 1})
    assert sent.headers == {
        "Accept": "application/json",
        "Authorization": "Bearer mcpctl_tok",
        "Content-Type": "application/json",
    }


def test_request_without_a_token_sends_no_authorization_header() -> None:
    transport = FakeTransport([reply(200, {})])
    McpdClient("http://mcpd.test", None, transport=transport).request("GET", "/healthz")
    assert "Authorization" not in transport.sent[0].headers
    assert "Content-Type" not in transport.sent[0].headers


def test_query_parameters_drop_none_and_false_and_spell_true() -> None:
    client, transport, _ = client_with(reply(200, {}))
    client.request("GET", "/x", params={"a": None, "b": False, "c": True, "d": "k=v,w!=z", "e": 5})
    assert transport.sent[0].path == "/x?c=true&d=k%3Dv%2Cw%21%3Dz&e=5"


def test_an_empty_body_decodes_to_none() -> None:
    client, _, _ = client_with(reply(204))
    assert client.request("DELETE", "/x") is None


def test_get_object_quotes_the_name_into_the_path() -> None:
    client, transport, _ = client_with(reply(200, {"metadata": {"name": "a b/c"}}))
    client.get_object("servers", "a b/c", show_values=True)
    assert transport.sent[0].path == "/api/v1/servers/a%20b%2Fc?showValues=true"


def test_apply_object_puts_to_the_name_and_returns_the_outcome() -> None:
    stored = {"kind": "Server", "metadata": {"name": "web", "resourceVersion": "2"}}
    client, transport, _ = client_with(reply(200, {"outcome": "configured", "object": stored}))
    outcome, obj = client.apply_object("servers", {"metadata": {"name": "web"}}, dry_run=True)
    assert (outcome, obj) == ("configured", stored)
    assert (transport.sent[0].method, transport.sent[0].path) == (
        "PUT",
        "/api/v1/servers/web?dryRun=true",
    )


def test_iter_objects_follows_continue_tokens_until_the_last_chunk() -> None:
    def page(names: list[str], token: str | None) -> RawResponse:
        metadata = {"continue": token} if token else {}
        return reply(
            200, {"items": [{"metadata": {"name": n}} for n in names], "metadata": metadata}
        )

    client, transport, _ = client_with(
        page(["a", "b"], "t1"), page(["c", "d"], "t2"), page(["e"], None)
    )

    names = [
        o["metadata"]["name"]
        for o in client.iter_objects("servers", selector="team=x", chunk_size=2)
    ]

    assert names == ["a", "b", "c", "d", "e"]
    assert [s.path for s in transport.sent] == [
        "/api/v1/servers?labelSelector=team%3Dx&limit=2",
        "/api/v1/servers?labelSelector=team%3Dx&limit=2&continue=t1",
        "/api/v1/servers?labelSelector=team%3Dx&limit=2&continue=t2",
    ]


def test_close_closes_the_transport_and_the_client_is_a_context_manager() -> None:
    client, transport, _ = client_with()
    with client as same:
        assert same is client
    assert transport.closed


# -- retries -------------------------------------------------------------------------------


def test_429_and_503_are_retried_after_the_retry_after_seconds() -> None:
    client, transport, delays = client_with(
        reply(429, problem(429, "rate_limited", "slow down"), retry_after="2"),
        reply(503, problem(503, "unavailable", "busy"), retry_after="0.5"),
        reply(200, {"fine": True}),
    )
    assert client.request("GET", "/x") == {"fine": True}
    assert delays == [2.0, 0.5]
    assert len(transport.sent) == 3


def test_retry_after_is_capped_by_the_backoff_cap() -> None:
    client, _, delays = client_with(
        reply(503, None, retry_after="3600"), reply(200, {}), backoff_cap=4.0
    )
    client.request("GET", "/x")
    assert delays == [4.0]


def test_without_retry_after_the_delay_is_jittered_exponential_backoff() -> None:
    client, _, delays = client_with(
        *[reply(503, None, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")] * 4,
        reply(200, {}),
        max_attempts=5,
        backoff_base=0.5,
        backoff_cap=3.0,
    )
    client.request("GET", "/x")
    assert len(delays) == 4
    for attempt, delay in enumerate(delays):
        assert 0.0 <= delay <= min(3.0, 0.5 * 2**attempt)


def test_retries_give_up_after_max_attempts_with_the_servers_error() -> None:
    client, transport, delays = client_with(
        *[reply(429, problem(429, "rate_limited", "too many requests"), retry_after="1")] * 3,
        max_attempts=3,
    )
    with pytest.raises(RateLimited) as caught:
        client.request("GET", "/x")
    assert caught.value.message == "too many requests"
    assert caught.value.exit_code == 7
    assert len(transport.sent) == 3
    assert delays == [1.0, 1.0]


def test_a_503_that_never_recovers_raises_unavailable() -> None:
    client, _, delays = client_with(
        *[reply(503, problem(503, "unavailable", "db down"))] * 2, max_attempts=2
    )
    with pytest.raises(Unavailable, match="db down"):
        client.request("GET", "/x")
    assert len(delays) == 1


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500])
def test_other_errors_are_not_retried(status: int) -> None:
    client, transport, delays = client_with(reply(status, problem(status, "whatever", "no")))
    with pytest.raises(AppError):
        client.request("GET", "/x")
    assert (len(transport.sent), delays) == (1, [])


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "error_class", "exit_code"),
    [
        (422, "invalid_input", InvalidInput, 3),
        (404, "not_found", NotFound, 4),
        (409, "conflict", Conflict, 5),
        (409, "already_exists", AlreadyExists, 5),
        (409, "version_conflict", VersionConflict, 5),
        (409, "in_use", InUse, 5),
        (401, "unauthenticated", Unauthenticated, 6),
        (403, "permission_denied", PermissionDenied, 6),
        (503, "unavailable", Unavailable, 7),
        (500, "internal", AppError, 1),
    ],
)
def test_problem_documents_become_the_same_error_class(
    status: int, code: str, error_class: type[AppError], exit_code: int
) -> None:
    client, _, _ = client_with(
        reply(status, problem(status, code, "what mcpd said")), max_attempts=1
    )
    with pytest.raises(AppError) as caught:
        client.request("GET", "/x")
    assert type(caught.value) is error_class
    assert (caught.value.message, caught.value.exit_code) == ("what mcpd said", exit_code)


def test_problem_details_survive_the_trip() -> None:
    used_by = [{"kind": "Server", "name": "time", "field": "spec.env[0]"}]
    client, _, _ = client_with(reply(409, problem(409, "in_use", "in use", usedBy=used_by)))
    with pytest.raises(InUse) as caught:
        client.request("DELETE", "/api/v1/secrets/creds")
    assert caught.value.details == {"code": "in_use", "usedBy": used_by}


def test_an_unknown_problem_code_falls_back_on_the_http_status() -> None:
    client, _, _ = client_with(reply(404, problem(404, "gone_fishing", "not here")))
    with pytest.raises(NotFound, match="not here"):
        client.request("GET", "/x")


def test_an_error_without_a_problem_body_quotes_the_status_and_body() -> None:
    client, _, _ = client_with(RawResponse(502, {}, b"<html>Bad Gateway</html>"))
    with pytest.raises(AppError) as caught:
        client.request("GET", "/x")
    assert type(caught.value) is AppError
    assert str(caught.value) == "mcpd answered HTTP 502: b'<html>Bad Gateway</html>'"


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        socket.gaierror(-2, "Name or service not known"),
        http.client.RemoteDisconnected("Remote end closed connection without response"),
    ],
)
def test_network_failures_become_unavailable_naming_the_server(failure: BaseException) -> None:
    client, _, delays = client_with(failure)
    with pytest.raises(Unavailable) as caught:
        client.request("GET", "/x")
    assert str(caught.value).startswith("cannot reach mcpd at http://mcpd.test:7460 (")
    assert "start it with `mcpctl up` or `mcpd serve`" in str(caught.value)
    assert caught.value.__cause__ is failure
    assert delays == []


# -- HttpTransport -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://host", "localhost:7460", "http://"])
def test_http_transport_refuses_urls_that_are_not_http(url: str) -> None:
    with pytest.raises(InvalidInput, match="is not an http"):
        HttpTransport(url)


@contextmanager
def one_request_per_connection(listener: socket.socket) -> Iterator[list[str]]:
    """Serve on ``listener``, answering one request per connection and then hanging up without
    saying so, as a server does when it drops an idle kept-alive connection."""
    listener.listen()
    paths: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            conn, _ = listener.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                if not request:
                    continue
                paths.append(request.split(b" ")[1].decode())
                body = json.dumps({"n": len(paths)}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield paths
    finally:
        stop.set()
        # accept() does not return when the socket is closed under it: connect to wake it.
        socket.create_connection(listener.getsockname(), timeout=5).close()
        thread.join(timeout=10)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback socket, bound but not yet listening (connecting to it is refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}/prefix"


def test_http_transport_reconnects_once_when_a_kept_alive_connection_was_closed(
    listener: socket.socket,
) -> None:
    with (
        one_request_per_connection(listener) as paths,
        McpdClient(url_of(listener), None) as client,
    ):
        assert client.request("GET", "/a") == {"n": 1}
        assert client.request("GET", "/b") == {"n": 2}
    assert paths == ["/prefix/a", "/prefix/b"]


def test_http_transport_is_usable_again_after_a_failed_connect(listener: socket.socket) -> None:
    # `mcpctl up` polls one client until mcpd answers: a refused connect must not poison it.
    with McpdClient(url_of(listener), None, max_attempts=1) as client:
        for _ in range(2):
            with pytest.raises(Unavailable, match="ConnectionRefusedError"):
                client.request("GET", "/healthz")
        with one_request_per_connection(listener) as paths:
            assert client.request("GET", "/healthz") == {"n": 1}
    assert paths == ["/prefix/healthz"]
