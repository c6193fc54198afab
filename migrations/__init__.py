"""Versioned, reversible SQL migrations (FR-010), applied with yoyo-migrations.

Each step ``NNNN_name.sql`` has a ``NNNN_name.rollback.sql`` that undoes it.
"""

if __name__ != "qb2.migrations":  # one import path only (issue 12): the folder is installed as qb2.migrations
    raise ImportError(f"import qb2.migrations, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")

from pathlib import Path

#: Folder holding the migration files, for ``yoyo.read_migrations``.
MIGRATIONS_DIR = Path(__file__).parent / "versions"
