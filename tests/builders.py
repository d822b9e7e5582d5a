"""Hand-made rows for tests with known answers: every column has a dull default."""

from __future__ import annotations

import itertools
import sqlite3
from typing import Any

NOW = "2026-11-01T00:00:00.000Z"


class Dataset:
    """Inserts rows into a migrated database and returns their ids."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._numbers = itertools.count(1)

    def _insert(self, table: str, values: dict[str, Any]) -> int:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cursor = self.connection.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(values.values()))
        self.connection.commit()
        return cursor.lastrowid

    def user(self, role: str = "LAWYER", is_active: int = 1, **values: Any) -> int:
        number = next(self._numbers)
        row = {"name": f"User {number}", "email": f"user{number}@firm.example", "role": role, "is_active": is_active}
        row.update({"password_hash": "pbkdf2$secret-hash", "api_token": "tok_secret", "phone": "+91 9800000000"})
        row.update(created_at=NOW, updated_at=NOW, **values)
        return self._insert("users", row)

    def team(self, lead_id: int | None, **values: Any) -> int:
        return self._insert("teams", {"name": f"Team {next(self._numbers)}", "lead_id": lead_id, **values})

    def case(self, lawyer_id: int | None = None, status: str = "OPEN", **values: Any) -> int:
        number = next(self._numbers)
        row = {"case_number": f"CASE-2026-{number:06d}", "title": f"Case {number}", "client_name": "Client"}
        row.update(status=status, priority="MEDIUM", is_confidential=0, lawyer_id=lawyer_id, created_at=NOW)
        row.update(values)
        return self._insert("cases", row)

    def task(self, case_id: int, assignee_id: int | None, status: str = "TODO", **values: Any) -> int:
        row = {"case_id": case_id, "title": "Task", "category": "DRAFTING", "status": status, "priority": "MEDIUM"}
        row.update(assignee_id=assignee_id, created_at=NOW, **values)
        return self._insert("tasks", row)

    def subtask(self, task_id: int, assignee_id: int | None, status: str = "TODO", **values: Any) -> int:
        return self._insert(
            "subtasks", {"task_id": task_id, "title": "Subtask", "status": status, "assignee_id": assignee_id, **values}
        )

    def hearing(self, case_id: int, hearing_date: str, attendee_id: int | None, status: str = "SCHEDULED") -> int:
        return self._insert(
            "hearings",
            {"case_id": case_id, "hearing_date": hearing_date, "status": status, "attendee_id": attendee_id},
        )

    def order(self, case_id: int, reviewer_id: int | None, review_status: str = "PENDING_REVIEW", **values: Any) -> int:
        row = {"case_id": case_id, "order_no": str(next(self._numbers)), "kind": "INTERIM"}
        row.update(review_status=review_status, reviewer_id=reviewer_id, **values)
        return self._insert("orders", row)

    def worklog(self, user_id: int, status: str = "DRAFT", approver_id: int | None = None) -> int:
        return self._insert(
            "worklogs",
            {"user_id": user_id, "work_date": "2026-11-01", "hours": 1, "status": status, "approver_id": approver_id},
        )

    def leave_request(self, user_id: int, approver_id: int | None, start_date: str, status: str = "PENDING") -> int:
        row = {"user_id": user_id, "approver_id": approver_id, "start_date": start_date, "end_date": start_date}
        return self._insert("leave_requests", {**row, "status": status})

    def document(
        self, case_id: int, status: str, owner_id: int | None = None, reviewer_id: int | None = None, **values: Any
    ) -> int:
        row = {
            "case_id": case_id,
            "title": "Document",
            "status": status,
            "owner_id": owner_id,
            "reviewer_id": reviewer_id,
        }
        return self._insert("documents", {**row, **values})
