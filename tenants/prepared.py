"""Statements that nearly every request runs, compiled to SQL once per connection, not per request.

Django turns a queryset into SQL each time it is evaluated. For a lookup by one key that
compiling costs several times the database's own answer (0.2 to 0.4 ms of CPU against about
0.05 ms for the statement itself, more with ``select_related``), and a tus request of a folder
drop runs a handful of them (issue 13: on two cores every CPU-millisecond of the web server is
wall time a patient waits; ``tests/benchmarks/bench_upload_cpu.py``). A :class:`PreparedSelect`
builds its queryset once with marker values in place of the parameters, keeps the SQL and the
row layout the ORM worked out for it, and then only runs that SQL with the request's values and
builds the model instances as the ORM does (``ModelIterable``): the same statement, the same
objects, through the same cursor (so ``CaptureQueriesContext`` and the per-statement schema of
``config.database`` see it as any other query).

Compiled per database connection object (one per thread), so nothing compiled in one thread
(converters are bound to their connection) is used in another. The SQL names no schema: each
statement carries the request's ``search_path`` (``config.database``), so one compiled
statement serves every institution. Here in ``tenants``, the lowest app that needs it.

:class:`PreparedUpdate` does the same for an UPDATE of a few fields of the rows a filter picks
(a tus chunk's commit).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql import UpdateQuery

M = TypeVar("M", bound=Model)

# Django 5.2's signature (klass_info, select, db); the type stubs describe a later Django's.
_related_populators: Callable[..., list[Any]] = get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # For each parameter of ``sql``: (_CALLER, the index of the value the caller passes), or
    # (a type, that index) when the ORM wraps such values in that type (psycopg's Int8 for a
    # big integer), or (None, a constant written into the queryset itself, such as a status).
    slots: tuple[tuple[Any, Any], ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]
    model: type[Model]
    init_list: tuple[str, ...]
    model_slice: slice
    related_populators: tuple[Any, ...]
    annotations: tuple[tuple[str, int], ...]


_CALLER = object()  # marks a slot whose value the caller passes


def _bind(slots: tuple[tuple[Any, Any], ...], values: tuple[Any, ...]) -> list[Any]:
    return [
        value if kind is None else values[value] if kind is _CALLER else kind(values[value])
        for kind, value in slots
    ]


class PreparedSelect(Generic[M]):
    """``build(*markers)`` is a queryset whose parameters are the ``markers``; ``first(*values)``
    runs its SQL with ``values`` in their place and returns the first object, or None.

    Markers must be distinct values of the types the caller passes, each used as a plain
    parameter (``field=marker``): a lookup that rewrites its value (``__contains``, ``__iexact``)
    cannot be prepared, and compiling refuses it. The queryset may use ``select_related``,
    ``only`` and ``annotate``, not ``prefetch_related``.
    """

    def __init__(self, build: Callable[..., QuerySet[M]], *markers: Any, using: str = "default") -> None:
        self._build = build
        self._markers = markers
        self._using = using
        self._compiled: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _Compiled] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def first(self, *values: Any) -> M | None:
        connection = connections[self._using]
        compiled = self._compiled.get(connection)
        if compiled is None:
            compiled = self._compile(connection)
            with self._lock:
                self._compiled[connection] = compiled
        params = _bind(compiled.slots, values)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        row = list(row)
        for position, functions, expression in compiled.converters:
            value = row[position]
            for function in functions:
                value = function(value, expression, connection)
            row[position] = value
        instance = compiled.model.from_db(self._using, compiled.init_list, row[compiled.model_slice])
        for populator in compiled.related_populators:
            populator.populate(row, instance)
        for name, position in compiled.annotations:
            setattr(instance, name, row[position])
        return instance  # type: ignore[return-value]  # the model of build's queryset

    def _compile(self, connection: BaseDatabaseWrapper) -> _Compiled:
        queryset = self._build(*self._markers)
        internals: Any = queryset  # the private attributes ModelIterable reads, untyped
        assert not internals._prefetch_related_lookups, "a prepared select cannot prefetch"
        assert not internals._known_related_objects, "a prepared select builds its own objects"
        compiler = queryset.query.get_compiler(using=self._using, connection=connection)
        sql, params = compiler.as_sql()
        slots = tuple(self._slot(param) for param in params)
        used = {index for kind, index in slots if kind is not None}
        if used != set(range(len(self._markers))):
            raise ValueError(f"each marker must be a parameter of the SQL as it is: {sql}")
        fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
        klass_info = compiler.klass_info
        assert klass_info is not None
        select_fields: Sequence[int] = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        return _Compiled(
            sql=sql,
            slots=slots,
            converters=tuple(
                (position, tuple(functions), expression)
                for position, (functions, expression) in compiler.get_converters(fields).items()
            ),
            model=klass_info["model"],
            init_list=tuple(column[0].target.attname for column in compiler.select[start:end]),
            model_slice=slice(start, end),
            related_populators=tuple(_related_populators(klass_info, compiler.select, self._using)),
            annotations=tuple((compiler.annotation_col_map or {}).items()),
        )

    def _slot(self, param: Any) -> tuple[Any, Any]:
        for index, marker in enumerate(self._markers):
            if isinstance(param, type(marker)) and param == marker:
                return (_CALLER if type(param) is type(marker) else type(param), index)
        return (None, param)


@dataclass(frozen=True)
class _CompiledUpdate:
    sql: str
    fields: tuple[Field[Any, Any], ...]  # the fields set, in the order of their parameters
    slots: tuple[tuple[Any, Any], ...]  # the WHERE clause's parameters, as _Compiled.slots


class PreparedUpdate(Generic[M]):
    """``build(*markers)`` is a queryset of the rows to update, filtered as a
    :class:`PreparedSelect`'s; ``run(values, *params)`` sets the fields named in ``values`` where
    that filter holds with ``params`` in place of the markers, and returns how many rows changed.

    Values are plain values (no ``F()`` or other expressions), prepared for the database by
    their fields on every run as the ORM's ``update()`` does. One statement is compiled per set
    of field names and of which values are None (the ORM writes those as ``= NULL``).
    """

    def __init__(self, build: Callable[..., QuerySet[M]], *markers: Any, using: str = "default") -> None:
        self._build = build
        self._markers = markers
        self._using = using
        self._compiled: weakref.WeakKeyDictionary[
            BaseDatabaseWrapper, dict[tuple[tuple[str, bool], ...], _CompiledUpdate]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._select: PreparedSelect[M] = PreparedSelect(build, *markers, using=using)

    def run(self, values: dict[str, Any], *params: Any) -> int:
        connection = connections[self._using]
        shape = tuple((name, value is None) for name, value in values.items())
        compiled_here = self._compiled.get(connection)
        compiled = compiled_here.get(shape) if compiled_here is not None else None
        if compiled is None:
            compiled = self._compile(connection, values)
            with self._lock:
                self._compiled.setdefault(connection, {})[shape] = compiled
        set_params = [
            field.get_db_prep_save(value, connection=connection)
            for field, value in zip(compiled.fields, values.values(), strict=True)
            if value is not None
        ]
        where_params = _bind(compiled.slots, params)
        # As QuerySet.update: an error inside a transaction marks it for rollback.
        with transaction.mark_for_rollback_on_error(using=self._using), connection.cursor() as cursor:
            cursor.execute(compiled.sql, [*set_params, *where_params])
            return int(cursor.rowcount)

    def _compile(self, connection: BaseDatabaseWrapper, values: dict[str, Any]) -> _CompiledUpdate:
        if any(hasattr(value, "resolve_expression") for value in values.values()):
            raise ValueError("a prepared update sets plain values, not expressions")
        # UpdateQuery's attributes (values, related_updates) are missing from the type stubs.
        query: Any = self._build(*self._markers).query.chain(UpdateQuery)
        query.add_update_values(values)
        query.annotations = {}
        if query.related_updates:
            raise ValueError("a prepared update sets fields of its own table only")
        sql, params = query.get_compiler(using=self._using, connection=connection).as_sql()
        set_count = sum(value is not None for value in values.values())
        slots = tuple(self._select._slot(param) for param in params[set_count:])
        if {index for kind, index in slots if kind is not None} != set(range(len(self._markers))):
            raise ValueError(f"each marker must be a parameter of the SQL as it is: {sql}")
        return _CompiledUpdate(
            sql=sql, fields=tuple(field for field, _model, _value in query.values), slots=slots
        )
