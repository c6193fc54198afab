"""``python -m qb2.service_node``: run the daemon (see :mod:`qb2.service_node.command`)."""

from qb2.service_node.command import main

main()
