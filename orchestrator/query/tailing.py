"""Following the log store as rows arrive, without missing the ones that arrive late.

Log handlers ship in batches (every few seconds, or with a worker's heartbeat), so a
row stamped a few seconds ago can reach the database after a newer one from another
process. A tail that only reads strictly after the newest row it showed would skip it
for good. :class:`LagWindow` is the rule ``orchestrator logs -f`` and the dashboard
share: every read starts ``lag`` before the newest row shown (keyset on
``("timestamp", id)``, so the read is an index range), and rows already shown are
recognised by id: the read passes their ids (``except_ids``), so the database builds
and sends only the rows not shown yet, and any that still come are dropped. A row
that arrives more than ``lag`` after a newer one is in the store but not in the tail.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from orchestrator.query.model import Cursor, LogRow

NIL_ID = "00000000-0000-0000-0000-000000000000"


class LagWindow:
    """Where a tail's next read starts and which rows it has shown already."""

    def __init__(self, lag: timedelta, after: Cursor | None = None) -> None:
        self.lag = lag
        self.newest: datetime | None = None
        self.seen: dict[str, datetime] = {}
        self.floor: Cursor | None = None
        if after is not None:
            self.newest = datetime.fromisoformat(after.timestamp)
            self.seen[after.id] = self.newest
            self.floor = after

    def start(self) -> Cursor | None:
        """The cursor of the next read: ``lag`` before the newest row shown, but never
        before the floor (None before anything was shown or marked)."""
        if self.newest is None:
            return None
        start = Cursor((self.newest - self.lag).isoformat(), NIL_ID)
        if self.floor is not None and key(self.floor) > key(start):
            return self.floor
        return start

    def hold_back(self, first: Cursor) -> None:
        """Rows up to ``first`` were left out on purpose (a first read that showed only
        the newest rows): the lag window never reads them as late arrivals."""
        self.floor = first

    @property
    def known(self) -> Cursor | None:
        """The newest row shown (the end of the overlap a read starts with)."""
        if self.newest is None:
            return None
        newest = [i for i, at in self.seen.items() if at == self.newest]
        return Cursor(self.newest.isoformat(), max(newest) if newest else NIL_ID)

    def shown_since(self, start: Cursor | None) -> frozenset[str]:
        """The ids of the rows shown at or after ``start``: a read from there passes
        them as ``except_ids``, so the database sends only the rows not shown yet."""
        if start is None:
            return frozenset()
        since = datetime.fromisoformat(start.timestamp)
        return frozenset(i for i, at in self.seen.items() if at >= since)

    def mark(self, moment: datetime) -> None:
        """Nothing was shown up to ``moment`` (an empty first read): start from there."""
        if self.newest is None or moment > self.newest:
            self.newest = moment

    def admit(self, rows: Iterable[LogRow]) -> list[LogRow]:
        """The rows not shown yet, in the order given; they count as shown from now on.
        Ids older than the window are forgotten, so memory follows the lag, not time."""
        fresh: list[LogRow] = []
        for row in rows:
            if row.id in self.seen:
                continue
            fresh.append(row)
            self.seen[row.id] = row.timestamp
            if self.newest is None or row.timestamp > self.newest:
                self.newest = row.timestamp
        if fresh and self.newest is not None:
            horizon = self.newest - self.lag
            self.seen = {k: v for k, v in self.seen.items() if v >= horizon}
        return fresh


def key(cursor: Cursor) -> tuple[datetime, str]:
    """A cursor's place in ``("timestamp", id)`` order."""
    return datetime.fromisoformat(cursor.timestamp), cursor.id
