-- depends: 0002_priority_tags_events_nodes
DROP INDEX reservation_events_job;
DROP TABLE reservation_events;
DROP INDEX quality_node_at;
DROP TABLE quality_snapshots;
