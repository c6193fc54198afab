"""Versioned, reversible SQL migrations (FR-010), applied with yoyo-migrations.

Each step ``NNNN_name.sql`` has a ``NNNN_name.rollback.sql`` that undoes it.
"""

from pathlib import Path

#: Folder holding the migration files, for ``yoyo.read_migrations``.
MIGRATIONS_DIR = Path(__file__).parent / "versions"
