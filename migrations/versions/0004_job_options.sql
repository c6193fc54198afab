-- depends: 0003_quality_reservations
-- Per-job planner options (cost weights, fidelity floor, seed), kept for re-planning after a restart.
ALTER TABLE jobs ADD COLUMN options_json TEXT NOT NULL DEFAULT '{}';
