"""The HTTP exchange both adapters share: one POST, its failures sorted into the error tree of
``base``, and a server-sent-event stream read line by line into a dialect's ``Decoder``.

One request, one attempt: nothing here retries, and a stream is read only as fast as its
consumer asks, so a slow caller slows the backend down (TCP back-pressure) instead of
buffering the answer in mcpd.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import Any, Protocol

import httpx

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


def failure(response: httpx.Response) -> BackendFailed:
    """The error for a non-2xx response whose body has been read."""
    return BackendFailed(
        response.status_code, error_text(response.content), retry_after(response.headers)
    )


def unreachable(url: str, exc: httpx.TransportError, timeouts: Timeouts) -> BackendUnreachable:
    return BackendUnreachable(f"POST {url}: {describe(exc, timeouts)}")


def describe(exc: httpx.TransportError, timeouts: Timeouts) -> str:
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return f"no connection within {timeouts.connect:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"nothing received for {timeouts.read:g} s (read timeout)"
    if isinstance(exc, httpx.WriteTimeout):
        return f"request not sent within {timeouts.write:g} s"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc or 'connection failed'})"
    return f"{type(exc).__name__}: {exc or 'connection failed'}"


def malformed(url: str, problem: object) -> BackendFailed:
    return BackendFailed(502, f"{url} answered something that is not its API: {problem}")


class Exchange:
    """One backend endpoint on the shared client: where to POST, with which headers and
    timeouts. Both adapters are a dialect (a body, a parser, a decoder) over one of these."""

    __slots__ = ("_client", "_headers", "_stream_headers", "_timeout", "timeouts", "url")

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        headers: Mapping[str, str],
        timeouts: Timeouts,
    ) -> None:
        self._client = client
        self.url = url
        self.timeouts = timeouts
        self._timeout = timeouts.for_httpx()
        self._headers = {"content-type": "application/json", "accept": "application/json"}
        self._headers.update(headers)
        self._stream_headers = {
            **self._headers,
            "accept": "text/event-stream",
            "accept-encoding": "identity",  # a compressed stream would be held back in buffers
        }

    async def post(self, body: bytes, parse_answer: Callable[[Any], Answer]) -> Answer:
        """POST ``body`` and parse the JSON of a 2xx answer.

        Raises:
            BackendUnreachable: no complete answer arrived.
            BackendFailed: a non-2xx answer, an error document, or a 2xx answer that is not
                the API (status 502).
        """
        try:
            response = await self._client.post(
                self.url, content=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc, self.timeouts) from exc
        except httpx.DecodingError as exc:
            raise malformed(self.url, exc) from exc
        if not response.is_success:
            raise failure(response)
        try:
            return parse_answer(json.loads(response.content))
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
        request = self._client.build_request(
            "POST", url, content=body(), headers=self._stream_headers, timeout=self._timeout
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise unreachable(url, exc, timeouts) from exc
        seen = False
        try:
            whole = await _opened(response, parse_answer)
            source = _sse(response, decoder) if whole is None else _replay(whole)
            async with aclosing(source) as events:
                async for event in events:
                    seen = True
                    yield event
        except (httpx.TransportError, Truncated) as exc:
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
        except (*SHAPE_ERRORS, httpx.DecodingError) as exc:
            if seen:
                raise StreamBroken(f"the stream from {url} became unreadable: {exc}") from exc
            raise malformed(url, exc) from exc
        finally:
            await response.aclose()


def _describe(exc: httpx.TransportError | Truncated, timeouts: Timeouts) -> str:
    return describe(exc, timeouts) if isinstance(exc, httpx.TransportError) else str(exc)


async def _opened(
    response: httpx.Response, parse_answer: Callable[[Any], Answer]
) -> list[StreamEvent] | None:
    """``None`` for a stream; the events of a JSON answer (a backend that ignored ``stream``).

    Raises:
        BackendFailed: an error status.
    """
    if not response.is_success:
        await response.aread()
        raise failure(response)
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    await response.aread()
    return events_of(parse_answer(json.loads(response.content)))


async def _replay(events: list[StreamEvent]) -> AsyncGenerator[StreamEvent, None]:
    for event in events:
        yield event


async def _sse(response: httpx.Response, decoder: Decoder) -> AsyncGenerator[StreamEvent, None]:
    """Server-sent events (``event:`` and ``data:`` fields, dispatched at a blank line) fed to
    ``decoder`` until it has finished or the response ends."""
    name = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif not line:
            if data:
                for event in decoder.feed(name, "\n".join(data)):
                    yield event
                if decoder.finished:
                    return
            name, data = "", []
        # Comments (": ping"), id: and retry: mean nothing here.
    if data:  # the last event lacked its blank line
        for event in decoder.feed(name, "\n".join(data)):
            yield event
    if not decoder.finished:
        for event in decoder.end():
            yield event
