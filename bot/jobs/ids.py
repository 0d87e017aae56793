"""Job ids as members see them: a turn's id in base 36, upper case ("3F9K"), short to type and stable."""

from __future__ import annotations

import string

DIGITS = string.digits + string.ascii_uppercase
#: Longer codes are not ours (a turn id is a 64-bit integer: 13 base-36 digits at most).
MAX_CODE = 13


def job_code(turn_id: int) -> str:
    """The code of a turn id (a positive integer)."""
    if turn_id < 1:
        raise ValueError(f"not a turn id: {turn_id}")
    digits: list[str] = []
    while turn_id:
        turn_id, digit = divmod(turn_id, 36)
        digits.append(DIGITS[digit])
    return "".join(reversed(digits))


def turn_id_of(code: str) -> int | None:
    """The turn id a code names (any case, spaces and a leading # ignored); None when it is not a code."""
    text = code.strip().lstrip("#").strip().upper()
    if not text or len(text) > MAX_CODE or any(c not in DIGITS for c in text):
        return None
    value = int(text, 36)
    return value if 0 < value < 2**63 else None
