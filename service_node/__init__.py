"""Service node daemon: a simulated QPU that advertises, reserves and executes fragments."""

if __name__ != "qb2.service_node":  # one import path only (issue 12): the folder is installed as qb2.service_node
    raise ImportError(f"import qb2.service_node, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")
