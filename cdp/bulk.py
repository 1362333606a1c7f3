"""Bulk writes for the ingestion path: COPY instead of INSERT, one UPDATE instead of CASE WHEN.

Why not Django's bulk_create / bulk_update: on the ingestion path they dominated the profile.
bulk_create compiles a multi-row INSERT with one placeholder per value, which Django prepares
value by value and psycopg then re-parses on the client (large statements miss its query
cache); bulk_update builds a CASE expression per field and row. PostgreSQL's COPY takes the
rows as a stream with no statement to compile or parse, and UPDATE ... FROM (VALUES ...) sets
every row in one statement. Elsewhere (SQLite) both fall back to Django's own methods.

Both take model instances and use each field's own `pre_save` / `get_db_prep_save`, so what is
stored is exactly what bulk_create would store (auto_now timestamps, JSON adaptation, bytes).
Neither sends signals, as bulk_create does not.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections, models

BATCH = 500
_PASS_THROUGH = frozenset({str, int, bool, bytes, uuid.UUID, datetime, type(None)})


def _insert_fields(model: type[models.Model], objs: list[models.Model]) -> list[models.Field]:
    """Concrete local fields, without an auto primary key that no instance has set."""
    fields = [f for f in model._meta.local_concrete_fields if not f.generated]
    pk = model._meta.pk
    if isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField) and all(
        o.pk is None for o in objs
    ):
        fields = [f for f in fields if f is not pk]
    return fields


def copy_insert(model: type[models.Model], objs: list[models.Model]) -> None:
    """Insert the instances with one COPY on PostgreSQL (bulk_create elsewhere).

    Unlike bulk_create on PostgreSQL, auto primary keys are NOT read back: instances whose
    pk was None keep None. Callers on the ingestion path never read them after the flush.
    A unique or foreign-key violation fails the whole COPY, and with it the caller's transaction.
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=BATCH)
        return
    conn = connections[DEFAULT_DB_ALIAS]  # the connection itself: the `connection` proxy costs per value
    fields = _insert_fields(model, objs)
    columns = ", ".join(conn.ops.quote_name(f.column) for f in fields)
    table = conn.ops.quote_name(model._meta.db_table)
    # The psycopg cursor under Django's wrapper (.cursor): COPY is not part of the DB-API.
    # pre_save only where it does something (auto_now timestamps); plain getattr elsewhere.
    plan = [(f, f.attname, bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))) for f in fields]
    # wrap_database_errors: psycopg's errors surface as Django's (IntegrityError, ...), as for bulk_create.
    with (
        conn.wrap_database_errors,
        conn.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            row = []
            for f, attname, stamped in plan:
                value = f.pre_save(obj, True) if stamped else getattr(obj, attname)
                # Values of these exact types (aware datetimes only) are what Django would pass on
                # unchanged; anything else (JSON, enums, naive datetimes, ...) goes through the
                # field's own preparation.
                plain = type(value) in _PASS_THROUGH and (type(value) is not datetime or value.tzinfo is not None)
                row.append(value if plain else f.get_db_prep_save(value, conn))
            copy.write_row(row)


def fast_bulk_update(model: type[models.Model], objs: list[models.Model], fields: list[str]) -> None:
    """bulk_update without Django's CASE WHEN: on PostgreSQL one UPDATE ... FROM unnest(arrays).

    One array parameter per column, so the statement stays the same short text for any number
    of rows.
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=BATCH)
        return
    conn = connections[DEFAULT_DB_ALIAS]
    quote = conn.ops.quote_name
    pk = model._meta.pk
    concrete = [pk] + [model._meta.get_field(name) for name in fields]
    columns = [quote(f.column) for f in concrete]
    table = quote(model._meta.db_table)
    arrays = ", ".join(f"%s::{f.db_type(conn)}[]" for f in concrete)
    assignments = ", ".join(f"{c} = v.{c}" for c in columns[1:])
    sql = (
        f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({', '.join(columns)}) "  # noqa: S608
        f"WHERE {table}.{columns[0]} = v.{columns[0]}"
    )  # identifiers come from model metadata, values are parameters
    for start in range(0, len(objs), 5 * BATCH):
        chunk = objs[start : start + 5 * BATCH]
        params = [[f.get_db_prep_save(getattr(obj, f.attname), conn) for obj in chunk] for f in concrete]
        with conn.cursor() as cursor:
            cursor.execute(sql, params)


@models.Field.register_lookup
class InArray(models.Lookup):
    """`field__in_array=values`: one array parameter (`= ANY(%s)`) on PostgreSQL, `IN` elsewhere.

    Why: a batch looks up ~1,000 message ids and blind indexes at once. Django's `__in` renders
    one placeholder per value, which Django prepares value by value and psycopg re-parses on the
    client for every batch (long statements miss its cache); one array parameter costs neither.
    Values must already be in the column's Python type (str, UUID, int); on PostgreSQL they are
    passed as they are, elsewhere each goes through the field's preparation (UUIDs to text).
    """

    lookup_name = "in_array"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            raise EmptyResultSet
        if connection.vendor == "postgresql":
            # A literal array (client-side binding renders it into the statement): PostgreSQL
            # hashes a constant array for `= ANY`, where a parameter would be searched row by row.
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        field = self.lhs.output_field
        prepared = [field.get_db_prep_value(v, connection, prepared=False) for v in values]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *prepared]


# Foreign keys keep their own lookup table (ForeignObject.get_class_lookups stops at it).
models.ForeignObject.register_lookup(InArray)
