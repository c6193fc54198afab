DROP TABLE fragments;
DROP INDEX jobs_created;
DROP INDEX jobs_state_created;
DROP TABLE jobs;
