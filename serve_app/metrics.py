"""Prometheus metrics of the ingress, in a registry of its own.

A dedicated CollectorRegistry (not prometheus_client's global one) per ingress replica,
so that several replicas, apps or tests in one process never register a name twice.
Batch sizes are decided in the scorer replicas; each scored request comes back with the
size of the batch it rode in and whether it was that batch's first, so the ingress counts
every batch exactly once without asking the scorers for their own registries.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ocsf_serve_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("ocsf_serve_request_seconds", "HTTP request latency by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.scored = Counter("ocsf_serve_events_scored", "Events given a score", registry=self.registry)
        self.errors = Counter("ocsf_serve_event_errors", "Events answered with an error instead of a score",
                              registry=self.registry)
        self.flagged = Counter("ocsf_serve_anomalies_flagged", "Scored events flagged is_anomaly",
                               registry=self.registry)
        self.batch_size = Histogram("ocsf_serve_batch_requests", "Requests per @serve.batch call of a scorer replica",
                                    buckets=BATCH_BUCKETS, registry=self.registry)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, batch_size: int, first_in_batch: bool) -> None:
        if first_in_batch:
            self.batch_size.observe(batch_size)

    def observe_results(self, results: list[dict]) -> None:
        errors = sum(1 for r in results if "error" in r)
        self.scored.inc(len(results) - errors)
        self.errors.inc(errors)
        self.flagged.inc(sum(1 for r in results if r.get("is_anomaly")))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
