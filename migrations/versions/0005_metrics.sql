-- depends: 0004_job_options
-- Periodic snapshots of the coordinator's metrics (FR-010, FR-012), so figures survive restarts.
CREATE TABLE metrics_snapshots (
    snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    name        TEXT NOT NULL,
    labels_json TEXT NOT NULL,
    value       REAL NOT NULL
);
CREATE INDEX metrics_name_at ON metrics_snapshots (name, at);
