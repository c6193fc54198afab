"""Prometheus metrics of one coordinator (FR-012), served at ``GET /metrics``.

Each :class:`Metrics` owns its own registry, so several coordinators (tests)
can live in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The coordinator's metrics. Durations are seconds (Prometheus convention)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("qb2_queue_depth", "Jobs waiting in the queue", registry=r)
        self.jobs_submitted = Counter("qb2_jobs_submitted", "Jobs accepted by the API", registry=r)
        self.jobs_finished = Counter("qb2_jobs_finished", "Jobs that reached a final state", ["state"], registry=r)
        self.job_failures = Counter("qb2_job_failures", "Failed jobs by reason code", ["reason"], registry=r)
        self.job_latency = Histogram("qb2_job_latency_seconds", "Submit to final state", buckets=_LATENCY_BUCKETS,
                                     registry=r)
        self.fragment_latency = Histogram("qb2_fragment_round_trip_seconds", "Fragment invocation round trip",
                                          buckets=_LATENCY_BUCKETS, registry=r)
        self.fragment_invocations = Counter("qb2_fragment_invocations", "Fragment invocations per node and outcome",
                                            ["node_id", "outcome"], registry=r)
        self.retries = Counter("qb2_fragment_retries", "Fragment invocations retried", registry=r)
        self.success_rate = Gauge("qb2_job_success_rate", "COMPLETED / finished jobs since start, in [0, 1]",
                                  registry=r)
        self.registry_size = Gauge("qb2_registry_nodes", "Nodes in the registry by status", ["status"], registry=r)
        self.adverts_rejected = Gauge("qb2_adverts_rejected", "Advertisements rejected since start", registry=r)
        # FR-019: exposed as qb2_advertisements_rejected_total{reason}; reasons: unsigned, bad_signature,
        # invalid, forged, not_admitted, token_{malformed,bad_signature,other_coordinator,other_peer,expired}
        self.advertisements_rejected = Counter("qb2_advertisements_rejected", "Advertisements refused, by reason",
                                       ["reason"], registry=r)
        # issue 12: a job is planned once at admission and re-planned only when the nodes changed
        self.plans = Counter("qb2_plans", "Planner runs, by reason: admission, dry_run, replan, fallback",
                             ["reason"], registry=r)
        # issue 13: per node, the estimated seconds of unfinished fragments of admitted jobs (coordinator/load.py)
        self.committed_work = Gauge("qb2_node_committed_work_seconds",
                                    "Estimated seconds of work committed to the node by unfinished jobs",
                                    ["node_id"], registry=r)
        self._committed_nodes: set[str] = set()
        self._completed = 0
        self._finished = 0

    def set_committed_work(self, per_node: dict[str, float]) -> None:
        """Set ``qb2_node_committed_work_seconds`` per node; nodes seen before and absent now read 0."""
        self._committed_nodes.update(per_node)
        for node_id in self._committed_nodes:
            self.committed_work.labels(node_id=node_id).set(per_node.get(node_id, 0.0))

    def job_finished(self, state: str, latency_s: float, reason: str | None = None) -> None:
        """Count a job that reached ``state`` after ``latency_s`` seconds."""
        self.jobs_finished.labels(state=state).inc()
        self.job_latency.observe(latency_s)
        if reason:
            self.job_failures.labels(reason=reason).inc()
        self._finished += 1
        self._completed += state == "COMPLETED"
        self.success_rate.set(self._completed / self._finished)

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """Every current sample as ``(name, labels, value)``, for persistence."""
        return [(s.name, dict(s.labels), float(s.value)) for metric in self.registry.collect() for s in metric.samples]

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
