"""Model instances from hand-written SQL, for the few reads on the review queue's hot path.

Building a query through the ORM costs more CPU (resolving lookups, compiling joins, about 0.3 to
1 ms a query) than PostgreSQL takes to run these one-row lookups. ``columns`` writes a model's
select list once per process; ``instance`` turns that slice of a row back into a model instance with
the same database converters the ORM applies (JSON, datetimes and UUIDs on SQLite), so callers get
exactly what ``Model.objects.get`` would give them.
"""

from __future__ import annotations

from functools import cache

from django.db import connection


@cache
def _layout(model, alias: str, vendor: str) -> tuple[str, list[str], list[tuple], int]:
    """(select list, attribute names, (converters, column) per field, index of the primary key)."""
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    select = ", ".join(f"{alias}.{quote(field.column)}" for field in fields)
    converters = []
    for field in fields:
        col = field.get_col(alias)
        converters.append(
            (tuple(connection.ops.get_db_converters(col) + col.get_db_converters(connection)), col)
        )
    return select, [field.attname for field in fields], converters, fields.index(model._meta.pk)


def columns(model, alias: str) -> str:
    """``alias.col1, alias.col2, ...`` for every concrete field of ``model``, in model order."""
    return _layout(model, alias, connection.vendor)[0]


def width(model) -> int:
    return len(model._meta.concrete_fields)


def instance(model, alias: str, row, start: int = 0):
    """The instance stored in ``row[start:start + width(model)]`` (selected with ``columns``), or
    None when its primary key is NULL (a LEFT JOIN that found nothing)."""
    _, attnames, converters, pk_index = _layout(model, alias, connection.vendor)
    values = list(row[start : start + len(attnames)])
    if values[pk_index] is None:
        return None
    for index, (funcs, col) in enumerate(converters):
        if funcs:
            value = values[index]
            for func in funcs:
                value = func(value, col, connection)
            values[index] = value
    return model.from_db(connection.alias, attnames, values)


def id_in_range(value: int) -> bool:
    """Whether an id from a URL fits a BigAutoField: larger numbers match no row (the ORM answers
    nothing for them), but sent to PostgreSQL as a parameter they would be an error."""
    return -(2**63) <= value < 2**63
