-- depends: 0004_job_options
DROP INDEX metrics_name_at;
DROP TABLE metrics_snapshots;
