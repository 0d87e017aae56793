"""Settling a reservation at a job's real cost: what each counter keeps, and what the audit row says.

A job priced by tokens reserves its estimate and is charged what the provider reported, never more.
Each credit counter keeps the same share of what it held (rounded up): the member's and the server's
counters hold the cost after the server's multiplier, the operator's budget the cost before it, and
both keep the real cost on their own scale.
"""

from __future__ import annotations

import re
from typing import Any, Final

from bot.billing.costs import credits

#: The note settled_row appends to the outcome of a job charged less than it reserved, as read back
#: (by /audit and its export): the outcome before it, and the credits reserved.
RESERVED_NOTE: Final = re.compile(r"^(?P<outcome>.*) \(reserved (?P<amount>[0-9.]+)\)$")


def kept(held_cents: int, reserved_cents: int, actual_cents: int | None) -> int:
    """What a counter keeps of the `held_cents` it held for a job reserved at `reserved_cents` that
    cost `actual_cents`: all of it when the cost is unknown, not below the reservation, or the
    reservation was free (nothing to take a share of)."""
    if actual_cents is None or reserved_cents <= 0 or actual_cents >= reserved_cents:
        return held_cents
    share = -(-held_cents * max(0, actual_cents) // reserved_cents)  # rounded up
    return min(held_cents, share)


def settled_row(reserved_cents: int, actual_cents: int | None, outcome: str) -> dict[str, Any] | None:
    """The audit row's cost and outcome once charged less than reserved (None: the row stands)."""
    if actual_cents is None or actual_cents >= reserved_cents:
        return None
    spent = max(0, actual_cents)
    return {"cost_cents": spent, "outcome": f"{outcome} (reserved {credits(reserved_cents)})"[:200]}
