"""SQLite persistence (FR-010): jobs, results and fragment records survive a reopen; migrations reverse."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from yoyo import get_backend, read_migrations

from qb2.coordinator.store import JobStore, migrate
from qb2.migrations import MIGRATIONS_DIR
from qb2.protocol.jobs import ErrorInfo, FragmentRecord, JobRecord, JobResult, JobState


def job(job_id: str, created: float) -> JobRecord:
    return JobRecord(job_id=job_id, state=JobState.QUEUED, created_at=created, updated_at=created, name="ghz",
                     format="qasm2", shots=100, seed=3, num_qubits=3, num_operations=6)


async def test_jobs_results_and_fragments_survive_reopen(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    store = JobStore(db)
    await store.insert_job(job("a", 1.0), "OPENQASM 2.0;")
    await store.insert_job(job("b", 2.0), "OPENQASM 3.0;")
    await store.set_state("b", JobState.FAILED, 3.0, error=ErrorInfo(code="x", message="boom"))
    record = FragmentRecord(fragment_id="f1", kind="gates", node_id="n", status="DONE", started_at=1.0,
                            ended_at=2.0, attempts=1, qubits=(0, 1), ebits=1, native_op_counts={"cx": 2})
    await store.save_fragment("a", record)
    result = JobResult(counts={"000": 100}, shots=100, seed=3, representation="density_matrix",
                       estimated_fidelity=0.9, measured_fidelity=1.0, nodes_used=["n"], total_ebits=1,
                       execution_s=0.1, fragments=[record])
    await store.complete("a", result, 4.0)
    store.close()

    reopened = JobStore(db)
    assert (await reopened.get_job("a")).state is JobState.COMPLETED
    assert await reopened.get_result("a") == result
    assert await reopened.list_fragments("a") == [record]
    failed = await reopened.get_job("b")
    assert failed.state is JobState.FAILED and failed.error.message == "boom"
    assert await reopened.get_source("b") == ("qasm2", "OPENQASM 3.0;")
    page, total = await reopened.list_jobs(limit=1)
    assert total == 2 and [j.job_id for j in page] == ["b"]
    assert [j.job_id for j in (await reopened.list_jobs(state=JobState.COMPLETED))[0]] == ["a"]
    assert await reopened.unfinished_jobs() == []
    assert await reopened.count_by_state() == {"COMPLETED": 1, "FAILED": 1}
    reopened.close()


async def test_unfinished_jobs_are_listed_oldest_first(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "c.db")
    for i, state in enumerate([JobState.EXECUTING, JobState.COMPLETED, JobState.QUEUED, JobState.COMPILING]):
        await store.insert_job(job(f"j{i}", float(i)), "x")
        await store.set_state(f"j{i}", state, float(i))
    assert [j.job_id for j in await store.unfinished_jobs()] == ["j0", "j2", "j3"]
    store.close()


def test_migrations_roll_back_and_reapply(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    migrate(db)
    backend = get_backend(f"sqlite:///{db}")
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        backend.rollback_migrations(backend.to_rollback(migrations))
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "jobs" not in tables and "fragments" not in tables
    migrate(db)
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "fragments"} <= tables


async def test_migration_round_trip_keeps_the_data(tmp_path: Path) -> None:
    """up -> down -> up on a database with jobs (issue 5): the rows survive, new columns get defaults."""
    from qb2.coordinator.store import downgrade, migration_status

    db = tmp_path / "r.db"
    store = JobStore(db)
    await store.insert_job(job("keep", 1.0).model_copy(update={"tags": ["t"]}), "OPENQASM 2.0;")
    store.close()
    later = [m for m, _ in migration_status(db)][1:]
    assert downgrade(db, len(later)) == later[::-1]  # newest first, down to 0001
    assert migration_status(db) == [("0001_jobs", True)] + [(m, False) for m in later]
    row = sqlite3.connect(db).execute("SELECT job_id, state FROM jobs").fetchall()
    assert row == [("keep", "QUEUED")]
    reopened = JobStore(db)  # migrates up again
    again = await reopened.get_job("keep")
    assert again is not None and again.tags == [] and again.priority == "normal"
    assert all(applied for _, applied in migration_status(db))
    reopened.close()


async def test_metric_snapshots_are_persisted(tmp_path: Path) -> None:
    from qb2.coordinator.metrics import Metrics

    metrics = Metrics()
    metrics.job_finished("COMPLETED", 0.5)
    store = JobStore(tmp_path / "m.db")
    await store.save_metrics(123.0, metrics.samples())
    rows = sqlite3.connect(tmp_path / "m.db").execute(
        "SELECT at, value FROM metrics_snapshots WHERE name='qb2_job_success_rate'").fetchall()
    assert rows == [(123.0, 1.0)]
    store.close()
