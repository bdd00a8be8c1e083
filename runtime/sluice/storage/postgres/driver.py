"""The few PostgreSQL driver (asyncpg) names that code outside this backend may use: the connection type of
same-database projections and the one driver error their SQL target handles.

Same-database projections hand user handlers the connection of the checkpoint's transaction
(``ProjectionContext.connection``: asyncpg's pooled connection, its public API), and the SQL target runs its
statements on it. Inside that transaction they see the driver's own errors, as every module of the backend
does inside an ``acquire()`` block (``driver_errors``); what escapes it is translated. Naming the types here
keeps ``asyncpg`` imported by this backend only (the import-linter contract ``asyncpg-in-the-backend``).
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

__all__ = ["DatabaseConnection", "InvalidTableDefinitionError"]

DatabaseConnection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
"""A connection borrowed from the store's pool (asyncpg's ``fetch``, ``execute``, ``transaction``...)."""

InvalidTableDefinitionError = asyncpg.InvalidTableDefinitionError
"""SQLSTATE 42P16: e.g. ``CREATE OR REPLACE VIEW`` cannot change the view's columns that way."""
