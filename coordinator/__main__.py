"""``python -m qb2.coordinator``: run the daemon (see :mod:`qb2.coordinator.command`)."""

from qb2.coordinator.command import main

main()
