"""The qb2 coordinator daemon: registry, planner calls, runtime, job API, persistence."""

if __name__ != "qb2.coordinator":  # one import path only (issue 12): the folder is installed as qb2.coordinator
    raise ImportError(f"import qb2.coordinator, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")
