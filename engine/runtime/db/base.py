"""The declarative base of the ORM classes (``tables.py``), on the Core schema's metadata.

The column types and the clock live in ``schema.py`` (importable without the ORM) and are
re-exported here for the callers that have always imported them from ``base``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.orm import DeclarativeBase

from .schema import (
    NAMING_CONVENTION,
    Money,
    UtcDateTime,
    metadata,
    utcnow,
    with_postgresql_options,
)

__all__ = ["NAMING_CONVENTION", "Base", "Money", "UtcDateTime", "utcnow"]

with_postgresql_options()  # the ORM's and alembic's metadata is whole for either database


class Base(DeclarativeBase):
    """Base of every ``*Row`` model; ``Base.metadata`` (``schema.metadata``) is alembic's
    target."""

    metadata = metadata
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UtcDateTime(),
        Decimal: Money,
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }
