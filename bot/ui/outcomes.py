"""The audit log's codes in words: a job's kind and outcome as /audit shows them to an admin.

The database keeps the codes the core writes (English, stable: the CSV export shows them as they
are); this reads the known ones back as catalogue messages and leaves any other as written.
"""

from __future__ import annotations

import functools

from bot.billing.settle import RESERVED_NOTE
from bot.billing.store import RECOVERED
from bot.errors import NanoBotError
from bot.i18n import Credits, Text, Words
from bot.jobs.recovery import INTERRUPTED, LOST, SHUT_DOWN
from bot.jobs.service import CANCELLED_CHARGED
from bot.jobs.spec import JobKind

KINDS: frozenset[str] = frozenset(JobKind.__args__)  # type: ignore[attr-defined]
REFUNDED = "refunded: "
#: Outcomes written whole by the core, and their message.
WHOLE = {
    "ok": "audit.outcome.ok",
    CANCELLED_CHARGED: "audit.outcome.cancelled_charged",
    INTERRUPTED: "audit.outcome.restart",
    SHUT_DOWN: "audit.outcome.shutdown",
    LOST: "audit.outcome.lost",
    RECOVERED: "audit.outcome.recovered",
}
#: Reasons of a refund that are not an error class's name.
REASONS = {
    "cancelled": "audit.reason.cancelled",
    "delivery failed": "audit.reason.delivery",  # i18n: not a message (the service's code)
}


def kind_words(kind: str) -> Words:
    """A job's kind in words (an unknown one as written)."""
    return Text(f"audit.kind.{kind}") if kind in KINDS else kind


def outcome_words(outcome: str | None, status: str) -> Words:
    """A job's outcome in words: ok, refunded and why (an error's own title), charged after a cancel,
    interrupted; with what was reserved when the job cost less; anything else as written."""
    if not outcome:
        return Text(f"audit.status.{status}") if status in ("reserved", "committed", "refunded") else status
    if (found := RESERVED_NOTE.match(outcome)) is not None:
        amount = Credits(round(float(found["amount"]) * 100))
        return Text("audit.outcome.reserved", outcome=outcome_words(found["outcome"], status), amount=amount)
    if outcome in WHOLE:
        return Text(WHOLE[outcome])
    if outcome.startswith(REFUNDED):
        return Text("audit.outcome.refunded", why=_reason(outcome.removeprefix(REFUNDED)))
    return outcome


def _reason(reason: str) -> Words:
    """Why a job was refunded: a known reason, an error's title (its class name was recorded)."""
    if reason in REASONS:
        return Text(REASONS[reason])
    if (error := _errors().get(reason)) is not None:
        return error.title
    # Another exception's class name (a network error, a bug): the code means nothing to an admin.
    return Text("audit.reason.unexpected") if reason.isidentifier() else reason


@functools.cache  # the classes are all defined once the providers are imported, before any job runs
def _errors() -> dict[str, type[NanoBotError]]:
    """Every error class by name (the service records a refunded job's error by its class name)."""
    found: dict[str, type[NanoBotError]] = {}
    todo: list[type[NanoBotError]] = [NanoBotError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found
