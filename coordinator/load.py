"""Committed work per node, fed to the planner's queue-wait term (issue 13: load-aware placement).

Every admitted job that has not reached a final state commits work to the
nodes its plan assigns fragments to. :class:`CommittedWork` keeps, per job, the
estimated seconds of each fragment not yet finished, and sums them per node;
:meth:`qb2.coordinator.service.CoordinatorService.planner_options` passes the
sums as ``PlannerOptions.queue_wait_s``, so the next plan sees a busy node as
that much slower per fragment (``invoke = rtt + queue``, :mod:`qb2.compiler.cost`)
and concurrent jobs spread over capable nodes.

Units: seconds. A fragment's estimate is its planned ``cost.latency_s`` (gate
times, the invocation's round trip, and teleports into it; the readout:
readout times plus one round trip per node holding a measured qubit) *minus*
the queue waits the planner added to it (:func:`fragment_work_s`), so a job's
commitment does not count the work of the jobs before it a second time.

Leak-proof by construction: the work is kept per job (``job id -> fragment id
-> (node id, seconds)``), and a job's entry is dropped as a whole when the job
ends (:meth:`CommittedWork.drop`); per-node totals are always recomputed from
the entries that remain, never kept as running sums.

Thread safety: plans are made in worker threads (``trio.to_thread``) that read
:meth:`CommittedWork.per_node` while the trio thread commits and finishes
fragments, so every access holds one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from qb2.compiler import Plan

#: ``fragment id -> (node id, seconds)`` of one job.
JobWork = dict[str, tuple[str, float]]


def fragment_work_s(plan: Plan, queue_wait_s: Mapping[str, float], prefix: str = "") -> JobWork:
    """The estimated seconds of each fragment of ``plan``, keyed ``prefix + fragment_id``.

    ``queue_wait_s`` is what the plan was made against (``PlannerOptions.queue_wait_s``):
    the planner added the fragment's node's wait once to a gate fragment, and
    the wait of every node holding a measured qubit (``plan.final_residency``) to
    the readout fragment; both are taken off again (never below 0).
    """
    out: JobWork = {}
    for fragment in plan.fragments:
        if fragment.kind == "readout":
            holders = {plan.final_residency[q] for q in fragment.qubits if q < len(plan.final_residency)}
            waited = sum(float(queue_wait_s.get(n, 0.0)) for n in holders)
        else:
            waited = float(queue_wait_s.get(fragment.node_id, 0.0))
        out[prefix + fragment.fragment_id] = (fragment.node_id, max(0.0, fragment.cost.latency_s - waited))
    return out


class CommittedWork:
    """Per job, the estimated seconds of its unfinished fragments, per node (issue 13).

    Args:
        on_change: called with :meth:`per_node` after every change (the metrics gauge).
    """

    def __init__(self, on_change: Callable[[dict[str, float]], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobWork] = {}
        self._on_change = on_change

    def commit(self, job_id: str, plan: Plan, queue_wait_s: Mapping[str, float], prefix: str = "") -> None:
        """Make ``plan`` (made against ``queue_wait_s``) the job's committed work, replacing what it had.

        Used at admission, and again when the job is re-planned or falls back
        (``prefix``: the fallback's fragment id prefix, ``fb1-``, as its records carry).
        """
        work = fragment_work_s(plan, queue_wait_s, prefix)
        with self._lock:
            self._jobs[job_id] = work
        self._changed()

    def finish(self, job_id: str, fragment_id: str) -> None:
        """The fragment finished (DONE, FAILED or CANCELLED): its work is no longer pending."""
        with self._lock:
            work = self._jobs.get(job_id)
            if work is None or work.pop(fragment_id, None) is None:
                return
        self._changed()

    def drop(self, job_id: str) -> None:
        """The job ended (or was never stored): forget all its work. Idempotent."""
        with self._lock:
            if self._jobs.pop(job_id, None) is None:
                return
        self._changed()

    def per_node(self, exclude_job: str | None = None) -> dict[str, float]:
        """Committed seconds per node (nodes with none are absent)."""
        totals: dict[str, float] = {}
        with self._lock:
            for job_id, work in self._jobs.items():
                if job_id == exclude_job:
                    continue
                for node_id, seconds in work.values():
                    totals[node_id] = totals.get(node_id, 0.0) + seconds
        return totals

    def of_job(self, job_id: str) -> dict[str, float]:
        """Committed seconds per node of one job (empty when it has none)."""
        totals: dict[str, float] = {}
        with self._lock:
            for node_id, seconds in self._jobs.get(job_id, {}).values():
                totals[node_id] = totals.get(node_id, 0.0) + seconds
        return totals

    def jobs(self) -> set[str]:
        """Ids of the jobs holding committed work."""
        with self._lock:
            return set(self._jobs)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.per_node())
