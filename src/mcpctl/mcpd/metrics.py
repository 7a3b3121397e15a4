"""Prometheus metrics, in a registry owned by the app (never the process-global one)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcpctl.mcpd.changes import ObjectChanges


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "mcpd_http_requests_total",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "mcpd_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # The labelled children by (method, route, status): ``labels()`` builds and locks for
        # every lookup, and this runs for every request (the relay's too).
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request answered ``status`` after ``seconds``."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def watch_waiters(registry: CollectorRegistry, changes: ObjectChanges) -> None:
    """Export how many requests wait for an object to change (long-polls), read on scrape."""
    gauge = Gauge(
        "mcpd_object_waiters",
        "Requests waiting for an object to change (GET ...?changedAfter=)",
        registry=registry,
    )
    gauge.set_function(lambda: changes.waiting)


class MetricsMiddleware:
    """Counts requests per route template (not per URL, which would explode cardinality)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = str(scope.get("method", ""))
            self.metrics.observe(
                method, _route_template(scope), status, time.perf_counter() - start
            )


def _route_template(scope: Scope) -> str:
    # The router records the matched route in the scope (it is shared, so we see it here).
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")
