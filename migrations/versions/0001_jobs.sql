-- Jobs and their fragment records (FR-006, FR-009, FR-010).
CREATE TABLE jobs (
    job_id          TEXT PRIMARY KEY,
    state           TEXT NOT NULL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    name            TEXT NOT NULL,
    format          TEXT NOT NULL,
    qasm            TEXT NOT NULL,
    shots           INTEGER NOT NULL,
    seed            INTEGER,
    num_qubits      INTEGER NOT NULL,
    num_operations  INTEGER NOT NULL,
    plan_json       TEXT,
    result_json     TEXT,
    error_json      TEXT
);
CREATE INDEX jobs_state_created ON jobs (state, created_at);
CREATE INDEX jobs_created ON jobs (created_at);

CREATE TABLE fragments (
    job_id          TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    fragment_id     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    node_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      REAL,
    ended_at        REAL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    detail_json     TEXT,
    PRIMARY KEY (job_id, fragment_id)
);
