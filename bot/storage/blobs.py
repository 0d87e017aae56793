"""Content-addressed image files under DATA_DIR, with a row per blob for retention."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import String, cast, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.db import Database, insert_for
from bot.storage.tables import blobs, styles, utcnow
from bot.storage.turns import BlobRef

log = logging.getLogger(__name__)

SHA256_RE = re.compile(r"[0-9a-f]{64}")
PRUNE_BATCH = 500


def blob_path(root: Path, sha256: str) -> Path:
    """Where a blob lives: root/ab/cd/<sha256> (two fan-out levels keep directories small)."""
    if not SHA256_RE.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return root / sha256[:2] / sha256[2:4] / sha256


def _store_file(root: Path, data: bytes) -> str:
    """Hash and write the bytes atomically unless an intact copy is already there; runs in a thread."""
    sha256 = hashlib.sha256(data).hexdigest()
    path = blob_path(root, sha256)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size == len(data):
            return sha256
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{sha256}.{uuid.uuid4().hex}.tmp")
    try:
        # No fsync: a blob lost or torn by a power cut fails its hash check on load and is fetched
        # back from Discord (the turn keeps the message); fsyncing 48 MB would delay every reply.
        with tmp.open("wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return sha256


def _load_file(path: Path, sha256: str) -> bytes | None:
    """Read and verify a blob; a corrupt file is deleted and counts as missing. Runs in a thread."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if hashlib.sha256(data).hexdigest() != sha256:
        log.warning("blob %s is corrupt; deleting it", sha256)
        path.unlink(missing_ok=True)
        return None
    return data


def _delete_files(paths: list[Path]) -> None:
    """Remove blob files, ignoring ones already gone; runs in a thread."""
    for path in paths:
        path.unlink(missing_ok=True)


class BlobStore:
    """Images stored once by content hash; rows track use so old ones can be pruned."""

    def __init__(self, root: Path, db: Database, *, retention_days: float | None = None) -> None:
        self.root = root
        self.db = db
        self.retention_days = retention_days

    async def put(self, data: bytes, mime: str, width: int, height: int) -> BlobRef:
        """Store bytes (hashing and writing off the event loop) and record or refresh the row."""
        sha256 = await asyncio.to_thread(_store_file, self.root, data)
        now = utcnow()
        row = {
            "sha256": sha256,
            "mime": mime,
            "size": len(data),
            "width": width,
            "height": height,
            "created_at": now,
            "last_used_at": now,
        }
        query = insert_for(self.db.dialect, blobs).values(row)
        query = query.on_conflict_do_update(index_elements=[blobs.c.sha256], set_={"last_used_at": now})
        await self.db.write(lambda conn: conn.execute(query))
        return BlobRef(sha256=sha256, mime=mime, size=len(data), width=width, height=height)

    async def get(self, ref: BlobRef | str) -> bytes | None:
        """The verified bytes of a blob, or None when it is missing or corrupt."""
        sha256 = ref.sha256 if isinstance(ref, BlobRef) else ref
        data = await asyncio.to_thread(_load_file, blob_path(self.root, sha256), sha256)
        if data is not None:
            await self._touch(sha256)
        return data

    async def exists(self, sha256: str) -> bool:
        """Whether the blob's file is on disk."""
        return await asyncio.to_thread(blob_path(self.root, sha256).is_file)

    async def prune(self, *, now: datetime | None = None) -> int:
        """Delete blobs not used within the retention period; returns how many went."""
        if self.retention_days is None:
            return 0
        cutoff = (now or utcnow()) - timedelta(days=self.retention_days)
        removed = 0
        while batch := await self._delete_rows(cutoff):
            await asyncio.to_thread(_delete_files, [blob_path(self.root, sha) for sha in batch])
            removed += len(batch)
        if removed:
            log.info("pruned %d blobs unused since %s", removed, cutoff.isoformat())
        return removed

    async def discard(self, sha256s: list[str], *, unused_since: datetime) -> int:
        """Remove these blobs' rows and files (the caller checked no result uses them); how many.

        A blob stored again since `unused_since` (a job writing the same image right now) is kept.
        """
        if not sha256s:
            return 0
        query = (
            delete(blobs)
            .where(blobs.c.sha256.in_(sha256s), blobs.c.last_used_at < unused_since)
            .returning(blobs.c.sha256)
        )

        async def work(conn: AsyncConnection) -> list[str]:
            return list((await conn.execute(query)).scalars())

        gone = await self.db.write(work)
        await asyncio.to_thread(_delete_files, [blob_path(self.root, sha) for sha in gone])
        return len(gone)

    async def _touch(self, sha256: str) -> None:
        """Mark a blob as used now, for retention."""
        query = update(blobs).where(blobs.c.sha256 == sha256).values(last_used_at=utcnow())
        await self.db.write(lambda conn: conn.execute(query))

    async def _delete_rows(self, cutoff: datetime) -> list[str]:
        """Delete up to one batch of stale rows and return their hashes (re-checked in the DELETE)."""
        # A saved style's images have no copy on Discord to fetch back: they stay while it does.
        unstyled = ~exists().where(cast(styles.c.images, String).contains(blobs.c.sha256))
        stale = select(blobs.c.sha256).where(blobs.c.last_used_at < cutoff, unstyled).limit(PRUNE_BATCH)

        async def work(conn: AsyncConnection) -> list[str]:
            candidates = list((await conn.execute(stale)).scalars())
            if not candidates:
                return []
            query = (
                delete(blobs)
                .where(blobs.c.sha256.in_(candidates), blobs.c.last_used_at < cutoff, unstyled)
                .returning(blobs.c.sha256)
            )
            return list((await conn.execute(query)).scalars())

        return await self.db.write(work)  # one writer at a time on SQLite, retried on contention
