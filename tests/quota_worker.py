"""Run as a process by tests/storage/test_quotas.py: fire many concurrent reservations at one shared limit.

usage: python tests/quota_worker.py URL COUNT LIMIT_CENTS
Opens the (already migrated) database, warms the pool, prints "ready" and waits for a line on stdin
(so that several workers fire together), reserves COUNT one-credit jobs at once, commits those that
fit, and prints one JSON line: {"ok": ..., "refused": ..., "retries": ..., "seconds": ...}, where
retries counts the whole transactions the store had to retry on lock contention.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.billing.rules import Check, Reservation
from bot.billing.store import QuotaStore
from bot.storage.db import Database

GUILD, USER, COST = 4242, 7, 100
WARM_CONNECTIONS = 5


class Counter(logging.Handler):
    """Counts the warnings it sees."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record."""
        self.count += 1


async def _warm(store: QuotaStore) -> None:
    """Open a few pooled connections now, so the burst does not pay for connecting."""
    await asyncio.gather(*(store.usage(GUILD, "warm", None) for _ in range(WARM_CONNECTIONS)))


async def _burst(store: QuotaStore, count: int, limit_cents: int) -> int:
    """Reserve count jobs at once, commit the ones that fit; how many did."""
    check = Check(GUILD, "shared", "day", limit_cents, "the shared limit")
    outcomes = await asyncio.gather(
        *(
            store.reserve(
                guild_id=GUILD, user_id=USER, cost_cents=COST, checks=[check], kind="imagine", prompt="w"
            )
            for _ in range(count)
        )
    )
    won = [o for o in outcomes if isinstance(o, Reservation)]
    await asyncio.gather(*(store.commit(r.id) for r in won))
    return len(won)


async def run(url: str, count: int, limit_cents: int) -> dict[str, float]:
    """Warm up, say ready, wait for the go line, then fire the burst."""
    retries = Counter()
    logging.getLogger("bot.billing.store").addHandler(retries)
    db = await Database.open(url, migrate=False)
    try:
        store = QuotaStore(db)
        await _warm(store)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        began = time.perf_counter()
        won = await _burst(store, count, limit_cents)
        seconds = time.perf_counter() - began
    finally:
        await db.close()
    return {"ok": won, "refused": count - won, "retries": retries.count, "seconds": round(seconds, 3)}


def main() -> None:
    """Parse the arguments, run, print the JSON line."""
    url, count, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(asyncio.run(run(url, count, limit))), flush=True)


if __name__ == "__main__":
    main()
