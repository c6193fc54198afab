"""Experiments: benchmark circuits, the demo, and (later) the distributed-vs-centralized harness (FR-013)."""

if __name__ != "qb2.experiments":  # one import path only (issue 12): the folder is installed as qb2.experiments
    raise ImportError(f"import qb2.experiments, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")
