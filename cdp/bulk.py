"""Bulk writes for the ingestion path: COPY instead of INSERT, one UPDATE instead of CASE WHEN.

Why not Django's bulk_create / bulk_update: on the ingestion path they dominated the profile.
bulk_create compiles a multi-row INSERT with one placeholder per value, which Django prepares
value by value and psycopg then re-parses on the client (large statements miss its query
cache); bulk_update builds a CASE expression per field and row. PostgreSQL's COPY takes the
rows as a stream with no statement to compile or parse, and UPDATE ... FROM jsonb_to_recordset
sets every row from one JSON document. Elsewhere (SQLite) both fall back to Django's methods.

They take model instances or `new_row` records, and prepare values through each field's own
`pre_save` / `get_db_prep_save` (or an equivalent plain form), so what is stored is what
bulk_create would store (auto_now timestamps, JSON, bytes). Neither sends signals, as
bulk_create does not. Also here: the `in_array` lookup for the batch's key lists.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections, models

BATCH = 500
_PASS_THROUGH = frozenset({str, int, bool, bytes, uuid.UUID, datetime, type(None)})


def _insert_fields(model: type[models.Model], objs: list) -> list[models.Field]:
    """Concrete local fields, without an auto primary key that no instance has set."""
    fields = [f for f in model._meta.local_concrete_fields if not f.generated]
    pk = model._meta.pk
    if isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField) and all(
        getattr(o, pk.attname, None) is None for o in objs
    ):
        fields = [f for f in fields if f is not pk]
    return fields


class Row(SimpleNamespace):
    """A row to insert, as a plain record of a model's attnames: what `new_row` builds.

    Why: the ingestion path creates tens of thousands of rows per second that it only ever
    writes with `copy_insert`; a Django model instance costs about 10 us to build (signals,
    descriptors), a record about 1 us. `pk` reads the primary key, as on a model instance.
    """

    _pk_attname = "id"

    @property
    def pk(self) -> Any:
        return getattr(self, self._pk_attname, None)


@cache
def _row_plan(model: type[models.Model]) -> tuple[dict[str, Any], tuple[models.Field, ...], frozenset[str], str]:
    """(constant defaults, fields whose default is callable, every attname, pk attname) of a model."""
    constant, per_row = {}, []
    for f in model._meta.concrete_fields:
        if f.has_default() and callable(f.default):
            per_row.append(f)
        else:
            constant[f.attname] = f.get_default()
    allowed = frozenset(f.attname for f in model._meta.concrete_fields)
    return constant, tuple(per_row), allowed, model._meta.pk.attname


def new_row(model: type[models.Model], **values: Any) -> Row:
    """A Row of `model` with its defaults, like `model(**values)` for `copy_insert` only.

    Values are by attname (`profile_id=...`, not `profile=...`); an unknown name is a TypeError,
    as for a model. Callable defaults (dict, list, uuid4) are called for every row.
    """
    constant, per_row, allowed, pk_attname = _row_plan(model)
    if not values.keys() <= allowed:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(sorted(values.keys() - allowed))}")
    row = Row()
    fields = row.__dict__
    fields.update(constant)
    fields["_pk_attname"] = pk_attname
    for f in per_row:
        if f.attname not in values:
            fields[f.attname] = f.get_default()
    fields.update(values)
    return row


def _prepares(field: models.Field) -> bool:
    """Fields whose every value goes through Django's preparation, whatever its Python type:
    a JSON field's str, bool or number is a JSON document, not text for the column."""
    return isinstance(field, models.JSONField)


def copy_insert(model: type[models.Model], objs: list) -> None:
    """Insert the instances (or `new_row` records) with one COPY on PostgreSQL (bulk_create elsewhere).

    Unlike bulk_create on PostgreSQL, auto primary keys are NOT read back: instances whose
    pk was None keep None. Callers on the ingestion path never read them after the flush.
    A unique or foreign-key violation fails the whole COPY, and with it the caller's transaction.
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([_as_instance(model, o) for o in objs], batch_size=BATCH)
        return
    conn = connections[DEFAULT_DB_ALIAS]  # the connection itself: the `connection` proxy costs per value
    fields = _insert_fields(model, objs)
    columns = ", ".join(conn.ops.quote_name(f.column) for f in fields)
    table = conn.ops.quote_name(model._meta.db_table)
    # The psycopg cursor under Django's wrapper (.cursor): COPY is not part of the DB-API.
    # pre_save only where it does something (auto_now timestamps); plain getattr elsewhere.
    plan = [
        (f, f.attname, bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)), _prepares(f))
        for f in fields
    ]
    # wrap_database_errors: psycopg's errors surface as Django's (IntegrityError, ...), as for bulk_create.
    with (
        conn.wrap_database_errors,
        conn.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            row = []
            for f, attname, stamped, always in plan:
                value = f.pre_save(obj, True) if stamped else getattr(obj, attname)
                if always:
                    row.append(f.get_db_prep_save(value, conn))
                    continue
                # Values of these exact types (aware datetimes only) are what Django would pass on
                # unchanged; anything else (JSON, enums, naive datetimes, ...) goes through the
                # field's own preparation.
                plain = type(value) in _PASS_THROUGH and (type(value) is not datetime or value.tzinfo is not None)
                row.append(value if plain else f.get_db_prep_save(value, conn))
            copy.write_row(row)


def _as_instance(model: type[models.Model], obj: Any) -> models.Model:
    """A model instance for Django's own bulk methods (the fallback off PostgreSQL)."""
    if isinstance(obj, model):
        return obj
    return model(**{f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields})


def fast_bulk_update(model: type[models.Model], objs: list, fields: list[str]) -> None:
    """bulk_update without Django's CASE WHEN: on PostgreSQL one UPDATE ... FROM jsonb_to_recordset.

    The rows travel as one JSON document, encoded by the C json module, instead of one array
    per column that psycopg would render value by value in Python; bytes go as base64 and are
    decoded by the server. `objs` are model instances or any objects with the fields' attnames.
    """
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update([_as_instance(model, o) for o in objs], fields, batch_size=BATCH)
        return
    conn = connections[DEFAULT_DB_ALIAS]
    quote = conn.ops.quote_name
    pk = model._meta.pk
    concrete = [pk] + [model._meta.get_field(name) for name in fields]
    binary = [f.get_internal_type() == "BinaryField" for f in concrete]
    columns = [quote(f.column) for f in concrete]
    table = quote(model._meta.db_table)
    types = ["text" if is_bytes else f.db_type(conn) for f, is_bytes in zip(concrete, binary, strict=True)]
    declared = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
    values = [f"decode(v.{c}, 'base64')" if is_bytes else f"v.{c}" for c, is_bytes in zip(columns, binary, strict=True)]
    assignments = ", ".join(f"{c} = {v}" for c, v in zip(columns[1:], values[1:], strict=True))
    sql = (
        f"UPDATE {table} SET {assignments} FROM jsonb_to_recordset(%s::jsonb) AS v({declared}) "  # noqa: S608
        f"WHERE {table}.{columns[0]} = v.{columns[0]}"
    )  # identifiers come from model metadata; the values are the one JSON parameter
    # Keyed by column, as the record's columns are declared (a field's db_column may differ).
    names = [(f.attname, f.column) for f in concrete]
    for start in range(0, len(objs), 5 * BATCH):
        chunk = objs[start : start + 5 * BATCH]
        rows = [{column: _json_value(getattr(obj, attname)) for attname, column in names} for obj in chunk]
        with conn.cursor() as cursor:
            cursor.execute(sql, [json.dumps(rows, separators=(",", ":"))])


def _json_value(value: Any) -> Any:
    """A column value as JSON the server casts back: uuid and timestamps as text, bytes as base64."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a bulk update")
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, date | Decimal):
        return str(value)  # ISO date; exact decimal text, not a float
    return value  # str (choices included), numbers, bool, None, and JSON fields' own values


def array_literal(values, base_type: str) -> str:
    """A PostgreSQL array literal: one text parameter (`%s::text[]`), quoted in C-speed str
    methods instead of psycopg rendering the array element by element."""
    if base_type in ("bigint", "integer", "smallint"):
        return "{" + ",".join(str(int(v)) for v in values) + "}"
    quoted = (str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + '","'.join(quoted) + '"}'


@models.Field.register_lookup
class InArray(models.Lookup):
    """`field__in_array=values`: one array literal (`= ANY(%s::text[])`) on PostgreSQL, `IN` elsewhere.

    Why: a batch looks up ~1,000 message ids and blind indexes at once. Django's `__in` renders
    one placeholder per value, which Django prepares value by value and psycopg re-parses on the
    client for every batch (long statements miss its cache); one array literal costs neither,
    and stays a constant that PostgreSQL hashes for `= ANY` (a parameter would be searched row
    by row). Values are str, UUID or int.
    """

    lookup_name = "in_array"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            raise EmptyResultSet
        field = self.lhs.output_field
        if connection.vendor == "postgresql":
            base = "text" if isinstance(field, models.CharField | models.TextField) else field.db_type(connection)
            return f"{lhs} = ANY(%s::{base}[])", [*lhs_params, array_literal(values, base)]
        prepared = [field.get_db_prep_value(v, connection, prepared=False) for v in values]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *prepared]


# Foreign keys keep their own lookup table (ForeignObject.get_class_lookups stops at it).
models.ForeignObject.register_lookup(InArray)
