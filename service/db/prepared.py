"""Statements compiled once per dialect and run on the DBAPI cursor beneath a SQLAlchemy connection.

For the verification endpoint only. There, SQLAlchemy's per-execution work (cache lookup, parameter and result
bookkeeping, events) costs more than the database's own. A :class:`Prepared` statement runs inside the
connection's current transaction and passes values through the same type processors SQLAlchemy applies,
so rows come back as plain tuples holding what ``conn.execute`` would have returned. Statements with
expanding ``IN`` parameters are not supported: use ``conn.execute`` for those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter names, in the order a positional driver expects them
    defaults: dict[str, Any]  # values the statement carries itself (a LIMIT, say)
    positional: bool
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...]

    def parameters(self, values: dict[str, Any]) -> Any:
        converted = [
            value if process is None or value is None else process(value)
            for process, value in zip(
                self.binds, (values.get(name, self.defaults.get(name)) for name in self.names), strict=True
            )
        ]
        return converted if self.positional else dict(zip(self.names, converted, strict=True))

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value) for process, value in zip(self.results, raw, strict=True)
        )


class Prepared:
    """One statement, compiled on first use for each dialect."""

    def __init__(self, statement: ClauseElement, *, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def rows(self, conn: Connection, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement with ``values``; the rows, processed (none for a statement without any)."""
        compiled = self._by_dialect.get(conn.dialect.name) or self._compile(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, compiled.parameters(values))
            if not compiled.results:
                return []
            return [compiled.row(raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()

    def rows_many(self, conn: Connection, many: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Run the statement once per set of values, one after another; all rows, in order."""
        compiled = self._by_dialect.get(conn.dialect.name) or self._compile(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            found: list[tuple[Any, ...]] = []
            for values in many:
                cursor.execute(compiled.sql, compiled.parameters(values))
                found.extend(compiled.row(raw) for raw in cursor.fetchall())
            return found
        finally:
            cursor.close()

    def run_many(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Run the statement once per row of values (``executemany``): for inserts."""
        compiled = self._by_dialect.get(conn.dialect.name) or self._compile(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if len(rows) == 1:  # psycopg's executemany sets up a pipeline: dearer for a single row
                cursor.execute(compiled.sql, compiled.parameters(rows[0]))
            else:
                cursor.executemany(compiled.sql, [compiled.parameters(values) for values in rows])
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect, column_keys=self.column_keys))
        names = tuple(compiled.positiontup or ()) if dialect.positional else tuple(compiled.binds)
        if any(compiled.binds[name].expanding for name in names):
            raise ValueError("expanding parameters are not supported by Prepared")
        binds = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
        # A SELECT's columns, or what an INSERT ... RETURNING returns.
        selected: list[ColumnElement[Any]] = list(
            getattr(self.statement, "selected_columns", None) or getattr(self.statement, "exported_columns", [])
        )
        results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected)
        defaults = {name: value for name, value in compiled.params.items() if value is not None}
        found = _Compiled(compiled.string, names, defaults, dialect.positional, binds, results)
        self._by_dialect[dialect.name] = found
        return found
