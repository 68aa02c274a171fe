"""A page of a list reads its rows in index order: every listed table has an ``(org_id, created_at, id)`` index,
and the page's query (one row-value comparison after the cursor) is answered by it, with no sort of all the
organization's rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from service.domain.pages import encode_cursor, page
from service.models import (
    ApiKey,
    Assessment,
    Consent,
    Deletion,
    Device,
    GuardianRequest,
    Incident,
    Purpose,
    RightsRequest,
    Subject,
    utcnow,
)

if TYPE_CHECKING:
    from tests.support import Tenant

LISTED: dict[str, Any] = {
    "subjects": Subject,
    "consents": Consent,
    "guardian_requests": GuardianRequest,
    "deletions": Deletion,
    "api_keys": ApiKey,
    "purposes": Purpose,
    "devices": Device,
    "assessments": Assessment,
    "incidents": Incident,
    "rights_requests": RightsRequest,
}


@contextmanager
def _statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements run on the session's connection meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []
    connection = session.connection()

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", record)


def _page_query(session: Session, table: str, org_id: str) -> tuple[str, Any]:
    """The statement a second page of the list of ``table`` runs (one after a cursor)."""
    model = LISTED[table]
    with _statements(session) as seen:
        page(
            session,
            select(model).where(model.org_id == org_id),
            model,
            kind=table,
            cursor=encode_cursor(table, utcnow(), "00000000-0000-0000-0000-000000000000"),
            limit=100,
        )
    [(statement, parameters)] = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    return statement, parameters


@pytest.mark.parametrize("table", sorted(LISTED))
def test_a_page_reads_the_list_in_index_order(db_session: Session, tenant: Tenant, table: str) -> None:
    statement, parameters = _page_query(db_session, table, tenant.org_id)
    assert f"({table}.created_at, {table}.id) >" in statement  # a row-value comparison, not an OR
    index = f"ix_{table}_org_created_id"
    connection = db_session.connection()
    if connection.dialect.name == "sqlite":
        columns = [row[2] for row in connection.execute(text(f"PRAGMA index_info({index})"))]
        assert columns == ["org_id", "created_at", "id"]
        plan = " | ".join(row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
        assert index in plan and "TEMP B-TREE" not in plan, plan
        return
    definition = connection.execute(
        text("SELECT indexdef FROM pg_indexes WHERE tablename = :table AND indexname = :index"),
        {"table": table, "index": index},
    ).scalar_one()
    assert definition.endswith("(org_id, created_at, id)"), definition
    valid = connection.execute(
        text("SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid WHERE relname = :index"),
        {"index": index},
    ).scalar_one()
    assert valid
    # On tables this small a scan and a sort are cheapest whatever the indexes: with them priced out, the plan
    # shows whether an index can answer the page in order (no Sort node left) or not.
    for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
        connection.exec_driver_sql(f"SET LOCAL {setting} = off")
    plan = " | ".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters))
    assert index in plan and "Sort" not in plan, plan
