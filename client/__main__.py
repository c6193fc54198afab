"""``python -m qb2.client``: the ``qb2`` command line (:mod:`qb2.client.cli`)."""

from qb2.client.cli import main

main()
