"""The job queue (FR-009): priority first (urgent > high > normal > low), FIFO within a priority."""

from __future__ import annotations

import heapq
import itertools

import trio

from qb2.coordinator.errors import CoordinatorError
from qb2.protocol.jobs import Priority


class QueueFull(CoordinatorError):
    """The queue holds ``capacity`` jobs already."""


class JobQueue:
    """Bounded priority queue of job ids for the worker tasks.

    Args:
        capacity: most jobs waiting at once; :meth:`put_nowait` raises beyond it.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._heap: list[tuple[int, int, str]] = []
        self._queued: set[str] = set()
        self._order = itertools.count()
        self._nonempty = trio.Event()

    def __len__(self) -> int:
        return len(self._queued)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._queued

    def put_nowait(self, job_id: str, priority: Priority) -> None:
        """Enqueue ``job_id``; a job already queued is left where it is.

        Raises:
            QueueFull: ``capacity`` jobs are waiting.
        """
        if job_id in self._queued:
            return
        if len(self._queued) >= self.capacity:
            raise QueueFull(f"{self.capacity} jobs are queued")
        heapq.heappush(self._heap, (priority.rank, next(self._order), job_id))
        self._queued.add(job_id)
        self._nonempty.set()

    def remove(self, job_id: str) -> bool:
        """Take a waiting job out of the queue (cancel); False if it was not waiting."""
        if job_id not in self._queued:
            return False
        self._queued.discard(job_id)  # its heap entry is skipped lazily
        return True

    async def get(self) -> str:
        """Wait for and return the most urgent, oldest job id."""
        while True:
            while self._heap:
                _, _, job_id = heapq.heappop(self._heap)
                if job_id in self._queued:
                    self._queued.discard(job_id)
                    return job_id
            if self._nonempty.is_set():  # all waiters share one event until the next put
                self._nonempty = trio.Event()
            await self._nonempty.wait()
