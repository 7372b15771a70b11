"""Prometheus metrics, one registry per app so two apps in one process never mix their numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from ..core.platform import Platform


class Metrics:
    def __init__(self, platform: "Platform") -> None:
        self.platform = platform
        self.registry = CollectorRegistry()
        self.requests = Counter("qorgau_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("qorgau_http_request_seconds", "HTTP request latency", ["method", "route"],
                                 registry=self.registry)
        self.audit_size = Gauge("qorgau_audit_tree_size", "Entries in the audit log", registry=self.registry)
        self.signed_size = Gauge("qorgau_audit_signed_tree_size", "Entries covered by the newest signed tree head",
                                 registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        from ..core import audit

        with self.platform.db.reader() as session:
            self.audit_size.set(audit.tree_size(session))
            head = audit.latest_tree_head(session)
            self.signed_size.set(head.tree_size if head else 0)
        return generate_latest(self.registry)
