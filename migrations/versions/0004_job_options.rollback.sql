-- depends: 0003_quality_reservations
ALTER TABLE jobs DROP COLUMN options_json;
