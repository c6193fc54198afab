"""Experiments: benchmark circuits, the demo, and (later) the distributed-vs-centralized harness (FR-013)."""
