-- depends: 0001_jobs
DROP TABLE nodes;
DROP INDEX job_events_job;
DROP TABLE job_events;
ALTER TABLE jobs DROP COLUMN tags_json;
ALTER TABLE jobs DROP COLUMN priority;
