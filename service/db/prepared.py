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
    names: tuple[str, ...]  # parameter names, in the order a positional driver expects them (may repeat)
    defaults: dict[str, Any]  # values the statement carries itself (a LIMIT, say)
    positional: bool
    binds: dict[str, Processor]  # each distinct parameter's type processor
    results: tuple[Processor, ...]
    plain_rows: bool  # no result column needs processing

    def parameters(self, values: dict[str, Any]) -> Any:
        """The driver's parameters for ``values`` (positional or by name, as the driver wants them): each
        distinct parameter through its type's processor once, however often the statement repeats it."""
        found = {}
        for name, process in self.binds.items():
            value = values.get(name, self.defaults.get(name))
            found[name] = value if process is None or value is None else process(value)
        return [found[name] for name in self.names] if self.positional else found

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if self.plain_rows:
            return tuple(raw)
        return tuple(
            value if process is None else process(value) for process, value in zip(self.results, raw, strict=True)
        )


@dataclass(frozen=True)
class Bound:
    """A statement with its parameters ready for the driver (``Prepared.bind``)."""

    compiled: _Compiled
    parameters: Any

    def run(self, conn: Connection) -> list[tuple[Any, ...]]:
        """Run it in the connection's current transaction; the rows, processed (none for a statement
        without any)."""
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.compiled.sql, self.parameters)
            if not self.compiled.results:
                return []
            return [self.compiled.row(raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()


class Prepared:
    """One statement, compiled on first use for each dialect."""

    def __init__(self, statement: ClauseElement, *, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def rows(self, conn: Connection, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement with ``values``; the rows, processed (none for a statement without any)."""
        return self.bind(conn.dialect, values).run(conn)

    def bind(self, dialect: Dialect, values: dict[str, Any]) -> Bound:
        """The statement with ``values`` as the driver wants them. Pure Python: do it before taking any lock."""
        compiled = self._by_dialect.get(dialect.name) or self._compile(dialect)
        return Bound(compiled, compiled.parameters(values))

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect, column_keys=self.column_keys))
        names = tuple(compiled.positiontup or ()) if dialect.positional else tuple(compiled.binds)
        if any(compiled.binds[name].expanding for name in names):
            raise ValueError("expanding parameters are not supported by Prepared")
        binds: dict[str, Processor] = {
            name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        }
        # A SELECT's columns, or what an INSERT ... RETURNING returns.
        selected: list[ColumnElement[Any]] = list(
            getattr(self.statement, "selected_columns", None) or getattr(self.statement, "exported_columns", [])
        )
        results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected)
        defaults = {name: value for name, value in compiled.params.items() if value is not None}
        plain = all(process is None for process in results)
        found = _Compiled(compiled.string, names, defaults, dialect.positional, binds, results, plain)
        self._by_dialect[dialect.name] = found
        return found
