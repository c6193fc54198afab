"""SQLite persistence for jobs and fragment records (FR-010).

One connection, one writer: every call goes through :class:`JobStore`'s async
methods, which run the blocking sqlite3 work in a worker thread serialised by a
capacity limiter of 1 (``aiosqlite`` does not run under trio). WAL mode keeps
readers from blocking the writer. The schema comes from ``migrations/``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio
from yoyo import get_backend, read_migrations

from qb2.migrations import MIGRATIONS_DIR
from qb2.protocol.jobs import (
    ErrorInfo,
    FragmentRecord,
    JobEvent,
    JobOptions,
    JobRecord,
    JobResult,
    JobState,
    Priority,
)

T = TypeVar("T")

_JOB_COLUMNS = (
    "job_id, state, created_at, updated_at, name, format, shots, seed, num_qubits, num_operations, error_json,"
    " priority, tags_json, options_json"
)


def migrate(db_path: Path) -> None:
    """Apply every pending migration to the database at ``db_path`` (created if missing)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    backend = get_backend(f"sqlite:///{db_path}")
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))


def migration_status(db_path: Path) -> list[tuple[str, bool]]:
    """``(migration id, applied?)`` for every migration, oldest first."""
    backend = get_backend(f"sqlite:///{db_path}")
    migrations = read_migrations(str(MIGRATIONS_DIR))
    applied = {m.id for m in migrations if backend.is_applied(m)}
    return [(m.id, m.id in applied) for m in migrations]


def downgrade(db_path: Path, steps: int = 1) -> list[str]:
    """Roll back the newest ``steps`` applied migrations; returns their ids (newest first)."""
    backend = get_backend(f"sqlite:///{db_path}")
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        targets = backend.to_rollback(migrations)[:steps]
        backend.rollback_migrations(targets)
    return [m.id for m in targets]


class JobStore:
    """Jobs, plans, results and fragment records in one SQLite file.

    Args:
        db_path: database file; migrated on open.
    """

    def __init__(self, db_path: Path) -> None:
        migrate(db_path)
        self.db_path = db_path
        self._conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.Lock()
        self._limiter = trio.CapacityLimiter(1)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT (ROLLBACK on error): the connection autocommits otherwise."""
        self._conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return fn(*args)

        return await trio.to_thread.run_sync(locked, limiter=self._limiter)

    # -- jobs -------------------------------------------------------------------------
    async def insert_job(self, job: JobRecord, qasm: str) -> None:
        """Persist a new job (state QUEUED) with its source text."""

        def insert() -> None:
            with self._transaction():
                self._conn.execute(
                    "INSERT INTO jobs (job_id, state, created_at, updated_at, name, format, qasm, shots, seed,"
                    " num_qubits, num_operations, priority, tags_json, options_json)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (job.job_id, job.state.value, job.created_at, job.updated_at, job.name, job.format, qasm,
                     job.shots, job.seed, job.num_qubits, job.num_operations, job.priority.value,
                     json.dumps(job.tags), job.options.model_dump_json()),
                )
                self._conn.execute("INSERT INTO job_events (job_id, state, at) VALUES (?,?,?)",
                                   (job.job_id, job.state.value, job.created_at))

        await self._run(insert)

    async def set_state(
        self, job_id: str, state: JobState, updated_at: float, *, error: ErrorInfo | None = None,
        result: JobResult | None = None, detail: dict[str, Any] | None = None,
    ) -> int:
        """Record a state transition (with the error for FAILED, the result for COMPLETED)
        and append it to the job's event log, in one transaction. Returns the event id.

        ``detail`` (JSON-serialisable) is stored with the event, e.g. why a job was re-planned;
        the error, if any, is added to it under ``"error"``.
        """
        error_json = error.model_dump_json() if error else None
        result_json = result.model_dump_json() if result else None
        merged = {**(detail or {}), **({"error": error.model_dump()} if error else {})}
        detail_json = json.dumps(merged) if merged else None

        def write() -> int:
            with self._transaction():
                self._conn.execute(
                    "UPDATE jobs SET state=?, updated_at=?, error_json=COALESCE(?, error_json),"
                    " result_json=COALESCE(?, result_json) WHERE job_id=?",
                    (state.value, updated_at, error_json, result_json, job_id),
                )
                cursor = self._conn.execute(
                    "INSERT INTO job_events (job_id, state, at, detail_json) VALUES (?,?,?,?)",
                    (job_id, state.value, updated_at, detail_json),
                )
                return int(cursor.lastrowid)

        return await self._run(write)

    async def events(self, job_id: str, after_event_id: int = 0) -> list[JobEvent]:
        """The job's state changes with ``event_id > after_event_id``, oldest first."""
        rows = await self._run(
            lambda: self._conn.execute(
                "SELECT event_id, job_id, state, at, detail_json FROM job_events WHERE job_id=? AND event_id>?"
                " ORDER BY event_id", (job_id, after_event_id)).fetchall()
        )
        return [JobEvent(event_id=r["event_id"], job_id=r["job_id"], state=JobState(r["state"]), at=r["at"],
                         detail=json.loads(r["detail_json"] or "{}")) for r in rows]

    async def set_plan(self, job_id: str, plan_json: str) -> None:
        """Store the job's plan JSON."""
        await self._run(lambda: self._conn.execute("UPDATE jobs SET plan_json=? WHERE job_id=?", (plan_json, job_id)))

    async def complete(self, job_id: str, result: JobResult, updated_at: float) -> None:
        """Store the result and mark the job COMPLETED in one transaction (with its event)."""
        await self.set_state(job_id, JobState.COMPLETED, updated_at, result=result)

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or None if unknown."""
        row = await self._run(
            lambda: self._conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        )
        return _job(row) if row else None

    async def get_source(self, job_id: str) -> tuple[str, str] | None:
        """``(format, qasm)`` of the job, or None."""
        row = await self._run(
            lambda: self._conn.execute("SELECT format, qasm FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        )
        return (row["format"], row["qasm"]) if row else None

    async def get_result(self, job_id: str) -> JobResult | None:
        """The stored result, or None if the job has none (yet)."""
        row = await self._run(
            lambda: self._conn.execute("SELECT result_json FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        )
        return JobResult.model_validate_json(row["result_json"]) if row and row["result_json"] else None

    async def get_plan(self, job_id: str) -> str | None:
        """The stored plan JSON, or None."""
        row = await self._run(
            lambda: self._conn.execute("SELECT plan_json FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        )
        return row["plan_json"] if row else None

    async def list_jobs(
        self, *, state: JobState | None = None, tag: str | None = None, created_after: float | None = None,
        created_before: float | None = None, limit: int = 50, offset: int = 0,
    ) -> tuple[list[JobRecord], int]:
        """Jobs newest first, filtered by state, tag and creation time (Unix seconds,
        ``created_after <= created_at < created_before``); returns ``(page, total matching)``."""
        clauses: list[str] = []
        args: list[Any] = []
        if state is not None:
            clauses.append("state=?")
            args.append(state.value)
        if tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(jobs.tags_json) WHERE json_each.value=?)")
            args.append(tag)
        if created_after is not None:
            clauses.append("created_at>=?")
            args.append(created_after)
        if created_before is not None:
            clauses.append("created_at<?")
            args.append(created_before)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""

        def query() -> tuple[list[sqlite3.Row], int]:
            total = self._conn.execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()[0]
            rows = self._conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, job_id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
            return rows, total

        rows, total = await self._run(query)
        return [_job(r) for r in rows], total

    async def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs not in a final state, oldest first (for recovery after a restart)."""
        finals = tuple(s.value for s in JobState if s.final)
        rows = await self._run(
            lambda: self._conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state NOT IN (?,?,?) ORDER BY created_at", finals
            ).fetchall()
        )
        return [_job(r) for r in rows]

    async def ping(self) -> bool:
        """True when the database answers a trivial query (health check)."""
        try:
            return await self._run(lambda: self._conn.execute("SELECT 1").fetchone()[0] == 1)
        except sqlite3.Error:
            return False

    # -- node registry --------------------------------------------------------------------
    async def save_node(self, advert_json: str, node_id: str, received_at: float) -> None:
        """Persist a node's latest advertisement (reloaded stale after a restart, FR-010)."""
        await self._run(lambda: self._conn.execute(
            "INSERT OR REPLACE INTO nodes (node_id, advert_json, received_at) VALUES (?,?,?)",
            (node_id, advert_json, received_at)))

    async def load_nodes(self) -> list[tuple[str, float]]:
        """``(advert_json, received_at)`` of every persisted node."""
        rows = await self._run(lambda: self._conn.execute("SELECT advert_json, received_at FROM nodes").fetchall())
        return [(r["advert_json"], r["received_at"]) for r in rows]

    async def save_quality(self, node_id: str, at: float, rtt_s: float | None, loss: float, gate_1q: float,
                           gate_2q: float, readout: float, degraded: list[str]) -> None:
        """Append one quality snapshot (FR-008); times in Unix seconds, RTT in seconds."""
        await self._run(lambda: self._conn.execute(
            "INSERT INTO quality_snapshots (node_id, at, rtt_s, loss, gate_1q, gate_2q, readout, degraded)"
            " VALUES (?,?,?,?,?,?,?,?)", (node_id, at, rtt_s, loss, gate_1q, gate_2q, readout, json.dumps(degraded))))

    async def quality_history(self, node_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The node's latest quality snapshots, newest first."""
        rows = await self._run(lambda: self._conn.execute(
            "SELECT at, rtt_s, loss, gate_1q, gate_2q, readout, degraded FROM quality_snapshots WHERE node_id=?"
            " ORDER BY snapshot_id DESC LIMIT ?", (node_id, limit)).fetchall())
        return [{**dict(r), "degraded": json.loads(r["degraded"])} for r in rows]

    async def record_reservation(self, job_id: str, kind: str, fragment_id: str, node_id: str, reservation_id: str,
                                 start: float, end: float, reason: str | None) -> None:
        """Append one reservation event of a job (FR-005); window bounds in Unix seconds."""
        await self._run(lambda: self._conn.execute(
            "INSERT INTO reservation_events (job_id, fragment_id, node_id, reservation_id, kind, at, start, end_,"
            " reason) VALUES (?,?,?,?,?,?,?,?,?)",
            (job_id, fragment_id, node_id, reservation_id, kind, time.time(), start, end, reason)))

    async def reservation_events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's reservation events, oldest first."""
        rows = await self._run(lambda: self._conn.execute(
            "SELECT fragment_id, node_id, reservation_id, kind, at, start, end_ AS end, reason FROM"
            " reservation_events WHERE job_id=? ORDER BY event_id", (job_id,)).fetchall())
        return [dict(r) for r in rows]

    async def save_metrics(self, at: float, samples: list[tuple[str, dict[str, str], float]]) -> None:
        """Append one snapshot of metric samples (name, labels, value) taken at ``at`` (Unix seconds)."""

        def write() -> None:
            with self._transaction():
                self._conn.executemany(
                    "INSERT INTO metrics_snapshots (at, name, labels_json, value) VALUES (?,?,?,?)",
                    [(at, name, json.dumps(labels, sort_keys=True), value) for name, labels, value in samples])

        await self._run(write)

    async def count_by_state(self) -> dict[str, int]:
        """Number of jobs per state."""
        rows = await self._run(
            lambda: self._conn.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        )
        return {r["state"]: r["n"] for r in rows}

    async def delete_job(self, job_id: str) -> None:
        """Remove a job and its fragment records (used when admission is rolled back)."""
        await self._run(lambda: self._conn.execute("DELETE FROM jobs WHERE job_id=?", (job_id,)))

    # -- fragments ----------------------------------------------------------------------
    async def delete_fragments(self, job_id: str) -> None:
        """Forget the job's fragment records (a recovered job re-plans and reruns)."""
        await self._run(lambda: self._conn.execute("DELETE FROM fragments WHERE job_id=?", (job_id,)))

    async def save_fragment(self, job_id: str, record: FragmentRecord) -> None:
        """Insert or replace one fragment record."""
        detail = record.model_dump_json(exclude={"fragment_id", "kind", "node_id", "status", "started_at",
                                                 "ended_at", "attempts", "error"})
        await self._run(
            lambda: self._conn.execute(
                "INSERT OR REPLACE INTO fragments (job_id, fragment_id, kind, node_id, status, started_at,"
                " ended_at, attempts, error, detail_json) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (job_id, record.fragment_id, record.kind, record.node_id, record.status, record.started_at,
                 record.ended_at, record.attempts, record.error, detail),
            )
        )

    async def list_fragments(self, job_id: str) -> list[FragmentRecord]:
        """The job's fragment records, by fragment id order of creation."""
        rows = await self._run(
            lambda: self._conn.execute(
                "SELECT * FROM fragments WHERE job_id=? ORDER BY CAST(SUBSTR(fragment_id, 2) AS INTEGER)", (job_id,)
            ).fetchall()
        )
        return [
            FragmentRecord(
                fragment_id=r["fragment_id"], kind=r["kind"], node_id=r["node_id"], status=r["status"],
                started_at=r["started_at"], ended_at=r["ended_at"], attempts=r["attempts"], error=r["error"],
                **json.loads(r["detail_json"] or "{}"),
            )
            for r in rows
        ]


def _job(row: sqlite3.Row) -> JobRecord:
    error = ErrorInfo.model_validate_json(row["error_json"]) if row["error_json"] else None
    return JobRecord(
        job_id=row["job_id"], state=JobState(row["state"]), created_at=row["created_at"],
        updated_at=row["updated_at"], name=row["name"], format=row["format"], shots=row["shots"],
        seed=row["seed"], num_qubits=row["num_qubits"], num_operations=row["num_operations"], error=error,
        priority=Priority(row["priority"]), tags=json.loads(row["tags_json"]),
        options=JobOptions.model_validate_json(row["options_json"]),
    )
