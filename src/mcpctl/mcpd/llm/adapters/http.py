"""The HTTP exchange both adapters share: one POST on mcpd's kept-alive connections
(``mcpctl.http11``), its failures sorted into the error tree of ``base``, and a server-sent-event
stream read event by event into a dialect's ``Decoder``.

One request, one attempt: nothing here retries (mcpd's connections are made with
``resend_stale`` off, so not even a stale keep-alive connection sends a request twice), and a
stream is read only as fast as its consumer asks, so a slow caller slows the backend down (TCP
back-pressure) instead of buffering the answer in mcpd. Once a stream's final marker is in, the
rest of its body (the end of the chunked encoding) is read too, briefly, so that its connection
can be reused; a stream broken off, closed early or failed never leaves its connection behind.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import Any, Protocol

from mcpctl.errors import InvalidInput
from mcpctl.http11 import (
    ConnectError,
    ConnectTimeout,
    HttpError,
    Origins,
    PoolTimeout,
    ReadTimeout,
    Response,
    WriteTimeout,
)
from mcpctl.mcpd.llm.adapters.base import (
    BackendFailed,
    BackendUnreachable,
    StreamBroken,
    Timeouts,
    retry_after,
)
from mcpctl.mcpd.llm.messages import Answer, StreamEvent, events_of

MESSAGE_LIMIT = 500  # characters of a backend's error text kept in an error
# What parsing a body of the wrong shape raises (a missing key, a list where a dict should be).
SHAPE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError)
# How long the end of a finished stream's body may take to come for its connection to be kept.
TAIL_SECONDS = 0.25
USER_AGENT = "mcpctl"


class Truncated(Exception):
    """The stream ended before the backend said the answer was complete."""


class Decoder(Protocol):
    """One dialect's stream parser: fed each server-sent event in order."""

    finished: bool  # the backend said the answer is complete: stop reading

    def feed(self, event: str, data: str) -> list[StreamEvent]:
        """The events carried by one server-sent event (often none).

        Raises:
            BackendFailed: the event reports an error.
            ValueError: the event is not what the dialect allows.
        """
        ...

    def end(self) -> list[StreamEvent]:
        """The closing events once the response ends without the final marker.

        Raises:
            Truncated: the answer is incomplete.
        """
        ...


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def error_text(content: bytes) -> str:
    """The readable part of an error body: ``error.message`` (OpenAI, Anthropic, vLLM),
    ``error`` as a string (Ollama), ``detail`` (FastAPI), else the text itself."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    message: object = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        message = message or body.get("detail") or body.get("message")
    if message is None or message == "":
        message = content.decode("utf-8", "replace").strip() or "(empty body)"
    text = message if isinstance(message, str) else json.dumps(message)
    return text[:MESSAGE_LIMIT]


def failure(response: Response, content: bytes) -> BackendFailed:
    """The error for a non-2xx ``response`` whose body is ``content``."""
    return BackendFailed(response.status, error_text(content), retry_after(response.headers))


def unreachable(url: str, exc: HttpError, timeouts: Timeouts) -> BackendUnreachable:
    return BackendUnreachable(f"POST {url}: {describe(exc, timeouts)}")


def describe(exc: HttpError, timeouts: Timeouts) -> str:
    if isinstance(exc, ConnectTimeout | PoolTimeout):
        return f"no connection within {timeouts.connect:g} s"
    if isinstance(exc, ReadTimeout):
        return f"nothing received for {timeouts.read:g} s (read timeout)"
    if isinstance(exc, WriteTimeout):
        return f"request not sent within {timeouts.write:g} s"
    if isinstance(exc, ConnectError):
        return f"cannot connect ({exc.reason or 'connection failed'})"
    return f"{type(exc).__name__}: {exc or 'connection failed'}"


def malformed(url: str, problem: object) -> BackendFailed:
    return BackendFailed(502, f"{url} answered something that is not its API: {problem}")


def _is_success(response: Response) -> bool:
    return 200 <= response.status < 300


def _check_encoding(response: Response) -> None:
    """Raises:
    ValueError: the body is compressed (asked for ``identity``, so not the API's answer)."""
    coding = response.headers.get("content-encoding", "identity").lower()
    if coding not in ("identity", ""):
        raise ValueError(f"a body in content-encoding {coding!r}, where identity was asked for")


class Exchange:
    """One backend endpoint on mcpd's connections: where to POST, with which headers and
    timeouts. Both adapters are a dialect (a body, a parser, a decoder) over one of these."""

    __slots__ = (
        "_client",
        "_headers",
        "_stream_headers",
        "_target",
        "_timeout",
        "timeouts",
        "url",
    )

    def __init__(
        self,
        origins: Origins,
        url: str,
        headers: Mapping[str, str],
        timeouts: Timeouts,
    ) -> None:
        """Raises:
        InvalidInput: ``url`` is not one an HTTP client can reach (no host)."""
        try:
            self._client, self._target = origins.for_url(url)
        except ValueError as exc:
            raise InvalidInput(f"LLM url {url!r}: {exc}", details={"field": "url"}) from exc
        self.url = url
        self.timeouts = timeouts
        self._timeout = timeouts.for_http11()
        self._headers = {
            "content-type": "application/json",
            "accept": "application/json",
            # A compressed answer would be held back in buffers, and costs CPU to inflate.
            "accept-encoding": "identity",
            "user-agent": USER_AGENT,
        }
        self._headers.update(headers)
        self._stream_headers = {**self._headers, "accept": "text/event-stream"}

    async def post(self, body: bytes, parse_answer: Callable[[Any], Answer]) -> Answer:
        """POST ``body`` and parse the JSON of a 2xx answer.

        Raises:
            BackendUnreachable: no complete answer arrived.
            BackendFailed: a non-2xx answer, an error document, or a 2xx answer that is not
                the API (status 502).
        """
        try:
            async with self._client.request(
                "POST", self._target, headers=self._headers, body=body, timeouts=self._timeout
            ) as response:
                content = await response.read()
        except HttpError as exc:
            raise unreachable(self.url, exc, self.timeouts) from exc
        if not _is_success(response):
            raise failure(response, content)
        try:
            _check_encoding(response)
            return parse_answer(json.loads(content))
        except SHAPE_ERRORS as exc:
            raise malformed(self.url, exc) from exc

    async def stream(
        self,
        body: Callable[[], bytes],
        decoder: Decoder,
        parse_answer: Callable[[Any], Answer],
    ) -> AsyncGenerator[StreamEvent, None]:
        """POST ``body()`` and yield the events of the answer, decoded from server-sent events
        by ``decoder`` (or from a JSON answer by ``parse_answer``, for a backend that ignored
        ``stream``). Errors follow the rule of ``base``: retryable kinds before the first
        event, ``StreamBroken`` after it. ``body`` is called on the first ``__anext__``, so
        that every error, a request that cannot be mapped included, is raised there.
        """
        url, timeouts = self.url, self.timeouts
        data = body()
        seen = False
        try:
            async with self._client.request(
                "POST",
                self._target,
                headers=self._stream_headers,
                body=data,
                timeouts=self._timeout,
            ) as response:
                whole = await _opened(response, parse_answer)
                if whole is not None:
                    for event in whole:
                        seen = True
                        yield event
                    return
                async with aclosing(_sse(response, decoder)) as events:
                    async for event in events:
                        seen = True
                        yield event
                await response.discard_rest(TAIL_SECONDS)
        except (HttpError, Truncated) as exc:
            if seen:
                raise StreamBroken(
                    f"the stream from {url} broke off: {_describe(exc, timeouts)}"
                ) from exc
            if isinstance(exc, Truncated):
                raise BackendUnreachable(f"POST {url}: {exc}") from exc
            raise unreachable(url, exc, timeouts) from exc
        except BackendFailed as exc:
            if seen:
                raise StreamBroken(f"the stream from {url} ended with an error: {exc}") from exc
            raise
        except SHAPE_ERRORS as exc:
            if seen:
                raise StreamBroken(f"the stream from {url} became unreadable: {exc}") from exc
            raise malformed(url, exc) from exc


def _describe(exc: HttpError | Truncated, timeouts: Timeouts) -> str:
    return describe(exc, timeouts) if isinstance(exc, HttpError) else str(exc)


async def _opened(
    response: Response, parse_answer: Callable[[Any], Answer]
) -> list[StreamEvent] | None:
    """``None`` for a stream; the events of a JSON answer (a backend that ignored ``stream``).

    Raises:
        BackendFailed: an error status.
        ValueError: a compressed body.
    """
    if not _is_success(response):
        raise failure(response, await response.read())
    _check_encoding(response)
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    return events_of(parse_answer(json.loads(await response.read())))


async def _sse(response: Response, decoder: Decoder) -> AsyncGenerator[StreamEvent, None]:
    """Server-sent events fed to ``decoder`` until it has finished or the response ends (a
    last event without its blank line counts, as in the providers' own clients)."""
    async for event in response.events(dispatch_unterminated=True):
        # The event's name only matters where the stream names it (Anthropic's).
        for out in decoder.feed("" if event.event == "message" else event.event, event.data):
            yield out
        if decoder.finished:
            return
    for out in decoder.end():
        yield out
