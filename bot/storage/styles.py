"""Saved styles: style words and reference images a member keeps (or a server's admins publish),
found by name, listed, deleted, and copied to another member by a share code."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.errors import InputError, Refused
from bot.i18n import Text
from bot.storage.db import Database
from bot.storage.tables import styles, utcnow
from bot.storage.turns import BlobRef

log = logging.getLogger(__name__)

#: Base32 without the look-alikes 0, O, 1 and I: a code read aloud or retyped is not mistaken.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
#: The most reference images a style holds (no model takes more references than this).
MAX_STYLE_IMAGES = 14
MAX_NAME = 32
MAX_WORDS = 4000
#: A new share code colliding with an old one is a 1 in 32^8 event; a few tries settle it.
CODE_ATTEMPTS = 5
OWN = 0
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Style:
    """One saved style: a member's own (guild_id 0) or a server's."""

    id: int
    owner_id: int
    guild_id: int
    name: str
    prompt: str
    images: tuple[BlobRef, ...]
    share_code: str
    created_at: datetime
    #: Whose words and images it holds, when not its owner's.
    origin_id: int | None = None

    @property
    def is_server(self) -> bool:
        """Whether the style was published to a server (else it is its owner's own)."""
        return self.guild_id != OWN


def new_code() -> str:
    """A random share code (8 characters of unambiguous base32: 40 bits)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def clean_code(text: str) -> str:
    """A share code as typed: upper case, spaces and dashes dropped."""
    return re.sub(r"[\s-]", "", text).upper()


def clean_name(text: str) -> str:
    """A style name as stored: trimmed, inner spaces collapsed; InputError when empty or too long."""
    name = _SPACES.sub(" ", text).strip()
    if not name:
        raise InputError(Text("styles.name.missing"))
    if len(name) > MAX_NAME:
        raise InputError(Text("styles.name.too_long", limit=MAX_NAME))
    return name


def _style(row: Row[Any]) -> Style:
    """A Style from a styles row."""
    m = row._mapping
    return Style(
        id=m["id"],
        owner_id=m["owner_id"],
        guild_id=m["guild_id"],
        name=m["name"],
        prompt=m["prompt"],
        images=tuple(BlobRef.from_json(x) for x in m["images"] or ()),
        share_code=m["share_code"],
        created_at=m["created_at"],
        origin_id=m["origin_id"],
    )


def _visible(user_id: int, guild_id: int | None) -> Any:
    """The styles a member may use here: their own, and this server's."""
    own = and_(styles.c.owner_id == user_id, styles.c.guild_id == OWN)
    return or_(own, styles.c.guild_id == guild_id) if guild_id else own


def _same_name(name: str) -> Any:
    """Names compared without regard to case ("Ink" and "ink" are one style)."""
    return func.lower(styles.c.name) == name.lower()


def _taken(owner_id: int, scope: int, name: str) -> Any:
    """A query finding a style that already has this name where a new one would go."""
    query = select(styles.c.id).where(_same_name(name), styles.c.guild_id == scope)
    return (query.where(styles.c.owner_id == owner_id) if scope == OWN else query).limit(1)


def _name_taken(scope: int, name: str) -> InputError:
    """The refusal of a name already used there."""
    return InputError(Text("styles.exists.server" if scope else "styles.exists.user", name=name))


class StyleStore:
    """Reads and writes styles rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        owner_id: int,
        guild_id: int | None,
        name: str,
        prompt: str,
        images: Sequence[BlobRef],
        *,
        origin_id: int | None = None,
    ) -> Style:
        """Save a style (guild_id: publish it to that server; origin_id: the member whose words and
        images it holds, when not the owner); InputError when the name is taken."""
        name, scope = clean_name(name), guild_id or OWN
        if len(images) > MAX_STYLE_IMAGES:
            raise InputError(Text("styles.images.too_many", limit=MAX_STYLE_IMAGES, have=len(images)))
        if not prompt.strip() and not images:
            raise InputError(Text("styles.empty"))
        if len(prompt) > MAX_WORDS:
            raise InputError(Text("styles.words.too_long", limit=MAX_WORDS))
        values = {
            "owner_id": owner_id,
            "guild_id": scope,
            "name": name,
            "prompt": prompt.strip(),
            "images": [ref.to_json() for ref in images],
            "origin_id": origin_id if origin_id != owner_id else None,
            "created_at": utcnow(),
        }
        taken = _taken(owner_id, scope, name)

        async def work(conn: AsyncConnection) -> Style:
            if (await conn.execute(taken)).first() is not None:
                raise _name_taken(scope, name)
            query = styles.insert().values(share_code=new_code(), **values).returning(*styles.c)
            return _style((await conn.execute(query)).one())

        for attempt in range(CODE_ATTEMPTS):
            try:
                return await self.db.write(work)
            except IntegrityError:  # a code (or, in a race, the name) taken meanwhile: check again
                log.info("a new style collided with an existing one; attempt %d", attempt + 1)
        raise InputError(Text("styles.save_failed"))

    async def check_free(self, owner_id: int, guild_id: int | None, name: str) -> None:
        """Refuse a name already used where the style would go (before its images are stored)."""
        scope = guild_id or OWN
        async with self.db.connect() as conn:
            if (await conn.execute(_taken(owner_id, scope, clean_name(name)))).first() is not None:
                raise _name_taken(scope, clean_name(name))

    async def visible(self, user_id: int, guild_id: int | None) -> list[Style]:
        """A member's own styles, then this server's, each by name."""
        query = (
            select(styles)
            .where(_visible(user_id, guild_id))
            .order_by(styles.c.guild_id != OWN, func.lower(styles.c.name), styles.c.id)
        )
        async with self.db.connect() as conn:
            return [_style(row) for row in await conn.execute(query)]

    async def find(self, user_id: int, guild_id: int | None, name: str) -> Style | None:
        """The style of this name a member may use here: their own first, then the server's."""
        query = (
            select(styles)
            .where(_visible(user_id, guild_id), _same_name(_SPACES.sub(" ", name).strip()))
            .order_by(styles.c.guild_id != OWN, styles.c.id)
            .limit(1)
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _style(row)

    async def by_code(self, code: str) -> Style | None:
        """The style a share code stands for."""
        query = select(styles).where(styles.c.share_code == clean_code(code))
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _style(row)

    async def delete(self, user_id: int, guild_id: int | None, name: str, *, admin: bool) -> Style:
        """Delete a member's own style, or (guild_id given) a server style; only admins may delete
        those. InputError when there is none of that name, Refused for a non-admin."""
        scope = guild_id or OWN
        if scope != OWN and not admin:
            raise Refused(Text("styles.admins.title"), Text("styles.admins.body"))
        where = and_(styles.c.guild_id == scope, _same_name(_SPACES.sub(" ", name).strip()))
        if scope == OWN:
            where = and_(where, styles.c.owner_id == user_id)

        async def work(conn: AsyncConnection) -> Style | None:
            row = (await conn.execute(select(styles).where(where).limit(1))).first()
            if row is not None:
                await conn.execute(delete(styles).where(styles.c.id == row.id))
            return None if row is None else _style(row)

        gone = await self.db.write(work)
        if gone is None:
            raise InputError(Text("styles.missing.server" if scope else "styles.missing.user", name=name))
        return gone

    async def import_code(self, user_id: int, code: str, name: str | None = None) -> Style:
        """Copy the style behind a share code into the member's own styles (with a new code)."""
        found = await self.by_code(code)
        if found is None:
            raise InputError(Text("styles.code.unknown", code=clean_code(code)))
        origin = found.origin_id or found.owner_id
        return await self.create(
            user_id, None, name or found.name, found.prompt, found.images, origin_id=origin
        )
