-- depends: 0001_jobs
-- Job priority and tags (FR-009), the job event log (state changes, FR-010),
-- and the persisted node registry, reloaded stale after a restart (FR-010).
ALTER TABLE jobs ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
ALTER TABLE jobs ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';

CREATE TABLE job_events (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    at          REAL NOT NULL,
    detail_json TEXT
);
CREATE INDEX job_events_job ON job_events (job_id, event_id);

CREATE TABLE nodes (
    node_id     TEXT PRIMARY KEY,
    advert_json TEXT NOT NULL,
    received_at REAL NOT NULL
);
