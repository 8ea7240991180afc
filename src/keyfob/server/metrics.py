"""The base of the Prometheus metric sets (the REST app's, ``api/app.py``; RADIUS's,
``radius/server.py``): each lives in a registry of its own, so that several apps can live in one
process, or shares the app's, so that ``/metrics`` shows RADIUS beside the REST API."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds to decide a code check, REST or RADIUS alike: 1 ms to 1 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class MetricSet:
    """Metrics in ``registry`` (a new one when none is given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

    def counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def latency(self, name: str, documentation: str) -> Histogram:
        return Histogram(name, documentation, registry=self.registry, buckets=LATENCY_BUCKETS)
