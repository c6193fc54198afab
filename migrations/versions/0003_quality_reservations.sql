-- depends: 0002_priority_tags_events_nodes
-- Quality snapshots per node and link (FR-008) and the reservation events of our jobs (FR-005).
CREATE TABLE quality_snapshots (
    snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id     TEXT NOT NULL,
    at          REAL NOT NULL,
    rtt_s       REAL,
    loss        REAL NOT NULL,
    gate_1q     REAL NOT NULL,
    gate_2q     REAL NOT NULL,
    readout     REAL NOT NULL,
    degraded    TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX quality_node_at ON quality_snapshots (node_id, at);

CREATE TABLE reservation_events (
    event_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL,
    fragment_id     TEXT NOT NULL,
    node_id         TEXT NOT NULL,
    reservation_id  TEXT NOT NULL,
    kind            TEXT NOT NULL,
    at              REAL NOT NULL,
    start           REAL,
    end_            REAL,
    reason          TEXT
);
CREATE INDEX reservation_events_job ON reservation_events (job_id, event_id);
