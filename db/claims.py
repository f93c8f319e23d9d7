"""Claims on sources: one process at a time downloads or transcribes a source.

A claim is taken with a single conditional UPDATE (atomic on SQLite and PostgreSQL): it succeeds
only when the source is still in the expected state and unclaimed, claimed by this same owner, or
claimed by an owner that is gone (a process on this host that no longer runs) or that has held it
longer than ``stale_after``. The work then runs outside any transaction; recording its outcome
clears the claim in the same transaction that moves the state on.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from functools import cache

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.files import pid_alive
from db.models import Source, SourceState, utcnow

STALE_AFTER = timedelta(hours=2)  # longer than any one download or transcription takes


@cache
def _process_token() -> str:
    return uuid.uuid4().hex[:8]


def owner() -> str:
    """This process: ``host:pid:token`` (the token tells a reused pid from the process that claimed)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{_process_token()}"


def _gone(claimant: str) -> bool:
    """True when ``claimant`` is a process on this host that no longer runs."""
    host, _, rest = claimant.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname()[:80] or not pid_text.isdigit():
        return False
    if claimant == owner():
        return False
    return not pid_alive(int(pid_text)) or int(pid_text) == os.getpid()  # our pid, another token: a reused pid


def claim(
    sessions: sessionmaker[Session],
    source_id: int,
    states: SourceState | tuple[SourceState, ...],
    *,
    stale_after: timedelta = STALE_AFTER,
) -> bool:
    """Claim ``source_id`` while it is in one of ``states``; False when it moved on or a live owner holds it."""
    states = states if isinstance(states, tuple) else (states,)
    me = owner()
    with sessions.begin() as session:
        current = session.execute(select(Source.claimed_by, Source.state).where(Source.id == source_id)).one_or_none()
        if current is None or current.state not in states:
            return False
        state = current.state
        holder = current.claimed_by
        takeover = holder is not None and holder != me and _gone(holder)
        condition = [Source.id == source_id, Source.state == state]
        if takeover:  # the holder we saw is gone: take it over only if it still holds it
            condition.append(Source.claimed_by == holder)
        else:
            condition.append(
                or_(
                    Source.claimed_by.is_(None),
                    Source.claimed_by == me,
                    Source.claimed_at < utcnow() - stale_after,
                )
            )
        result = session.execute(
            update(Source).where(*condition).values(claimed_by=me, claimed_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(source: Source) -> None:
    """Clear ``source``'s claim (inside the transaction that records the outcome)."""
    source.claimed_by, source.claimed_at = None, None


def release_mine(sessions: sessionmaker[Session]) -> int:
    """Clear every claim this process holds (a command stopping before it recorded its outcomes); how many."""
    with sessions.begin() as session:
        result = session.execute(
            update(Source).where(Source.claimed_by == owner()).values(claimed_by=None, claimed_at=None),
            execution_options={"synchronize_session": False},
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
