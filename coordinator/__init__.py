"""The qb2 coordinator daemon: registry, planner calls, runtime, job API, persistence."""
