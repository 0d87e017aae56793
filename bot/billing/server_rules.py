"""Server rules applied before a job is charged: channel, age restriction, blocklist, bans, cooldown."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Literal

from confusable_homoglyphs import categories, confusables

from bot.errors import Refused
from bot.i18n import Text
from bot.storage.guilds import GuildConfig

#: Default_Ignorable_Code_Point, from DerivedCoreProperties.txt of Unicode 14.0.0 (the version of Python
#: 3.11's unicodedata, which does not expose the property). Hand-written because no dependency carries
#: it; the ranges are those of the data file, including its reserved code points.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),  # SOFT HYPHEN
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x061C, 0x061C),  # ARABIC LETTER MARK
    (0x115F, 0x1160),  # HANGUL CHOSEONG FILLER..HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ..KHMER VOWEL INHERENT AA
    (0x180B, 0x180F),  # MONGOLIAN FREE VARIATION SELECTORS, MONGOLIAN VOWEL SEPARATOR
    (0x200B, 0x200F),  # ZERO WIDTH SPACE..RIGHT-TO-LEFT MARK
    (0x202A, 0x202E),  # LEFT-TO-RIGHT EMBEDDING..RIGHT-TO-LEFT OVERRIDE
    (0x2060, 0x206F),  # WORD JOINER..NOMINAL DIGIT SHAPES (bidi isolates, invisible operators)
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTOR-1..VARIATION SELECTOR-16
    (0xFEFF, 0xFEFF),  # ZERO WIDTH NO-BREAK SPACE
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # reserved
    (0x1BCA0, 0x1BCA3),  # SHORTHAND FORMAT LETTER OVERLAP..SHORTHAND FORMAT UP STEP
    (0x1D173, 0x1D17A),  # MUSICAL SYMBOL BEGIN BEAM..MUSICAL SYMBOL END PHRASE
    (0xE0000, 0xE0FFF),  # LANGUAGE TAG, TAG characters, VARIATION SELECTOR-17..256, reserved
)
_IGNORABLE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _DEFAULT_IGNORABLE) + "]")
_SPACES = re.compile(r"\s+")
_MARKS = frozenset({"Mn", "Me"})
#: Scripts whose letters stay the same letter without their marks (c̶ is c, é matches e); elsewhere marks
#: are part of the letter (Japanese が is not か, Devanagari vowel signs change the word) and stay.
_DECORATED_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC", "COMMON", "INHERITED", "Unknown"})


@functools.lru_cache(maxsize=1)
def _homoglyphs() -> Mapping[str, tuple[str, ...]]:
    """Unicode's confusables (UTS #39) as a graph: each prototype to its look-alikes and back.

    The library keeps the display form of its data file, which wraps right-to-left characters in
    direction marks; those are removed here."""
    graph: dict[str, list[str]] = {}
    for key, entries in confusables.confusables_data.items():
        graph.setdefault(_IGNORABLE.sub("", key), []).extend(_IGNORABLE.sub("", e["c"]) for e in entries)
    return {key: tuple(value) for key, value in graph.items() if key}


def _look_alikes(char: str, graph: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """Char's confusable class: its prototype and everything else mapped to that prototype.

    Spellings that NFKC rewrites are left out: text is matched after NFKC, so they never occur."""
    found = {char}
    for other in graph.get(char, ()):
        found.add(other)
        found.update(graph.get(other, ()))
    return frozenset(s for s in found if s and unicodedata.is_normalized("NFKC", s))


def _classes(graph: Mapping[str, tuple[str, ...]]) -> Iterator[frozenset[str]]:
    """Each confusable class once."""
    seen: set[str] = set()
    for key in graph:
        if key not in seen and (alike := _look_alikes(key, graph)):
            seen.update(alike)
            yield alike


def _representative(alike: frozenset[str], graph: Mapping[str, tuple[str, ...]]) -> str:
    """The spelling a class folds to: a plain ASCII letter if any, else Unicode's prototype."""

    def rank(s: str) -> tuple[bool, bool, bool, int, int, str]:
        latin = s.isascii(), s.isalpha() and s.islower(), s.isalnum()
        return (not latin[0], not latin[1], not latin[2], -len(graph.get(s, ())), len(s), s)

    return unicodedata.normalize("NFD", min(alike, key=rank).casefold())


def _foldable(char: str) -> bool:
    """Whether a class member is folded: single non-ASCII characters other than combining marks.

    Hangul is left as it is: NFD splits each syllable into jamo, and folding a final consonant into the
    like-looking initial one would let a word match across two syllables."""
    if len(char) != 1 or char.isascii() or unicodedata.category(char) in _MARKS:
        return False
    return bool(categories.alias(char) != "HANGUL")


@functools.lru_cache(maxsize=1)
def _skeleton_tables() -> tuple[Mapping[int, str], Mapping[int, str]]:
    """Two str.translate tables: capitals that imitate an ASCII capital (applied before case-folding),
    then every other look-alike to its class's spelling (applied after).

    Capitals go first because Cyrillic В, Н, К, М, Т look like B, H, K, M, T while their small forms do
    not look like b, h, k, m, t; their small forms then fold to the same letter, so that Cyrillic stays
    case-insensitive. ASCII is never folded: the TS #39 prototypes of m (rn), I and 1 (l) and 0 (O)
    would make "porn" match "pomegranate" in a substring search, and ASCII is not a Unicode trick."""
    graph = _homoglyphs()
    capitals: dict[int, str] = {}
    folded: dict[int, str] = {}
    for alike in _classes(graph):
        spelling = _representative(alike, graph)
        capital = min((s for s in alike if len(s) == 1 and s.isascii() and s.isupper()), default=None)
        for char in filter(_foldable, alike):
            if capital and char.isupper():
                capitals[ord(char)] = capital.lower()
            elif spelling != char:
                folded[ord(char)] = spelling
    for code, letter in capitals.items():
        small = chr(code).casefold()
        if len(small) != 1 or small.isascii():
            continue
        own = folded.get(ord(small), small)
        if not (own.isascii() and own.isalpha()):  # Greek ν stays v, though Ν is N
            folded[ord(small)] = letter
    return capitals, {code: _settled(spelling, folded) for code, spelling in folded.items()}


def _settled(text: str, table: Mapping[int, str]) -> str:
    """Text translated until it stops changing: a class's spelling, case-folded, can fall in another
    class (Greek ϛ folds to ς, then σ, which looks like o), and matching must be idempotent."""
    for _ in range(8):
        done = text.translate(table).casefold()
        if done == text:
            break
        text = done
    return text


@functools.lru_cache(maxsize=4096)
def _keeps_marks(base: str) -> bool:
    """Whether combining marks on this character are part of the letter (outside Latin/Greek/Cyrillic)."""
    return categories.alias(base) not in _DECORATED_SCRIPTS


def _strip_marks(text: str) -> str:
    """Decomposed text without the combining marks that only decorate a Latin/Greek/Cyrillic letter."""
    out: list[str] = []
    keep = False
    for char in text:
        if unicodedata.category(char) in _MARKS:
            if keep:
                out.append(char)
            continue
        keep = not char.isascii() and _keeps_marks(char)
        out.append(char)
    return "".join(out)


def normalize(text: str) -> str:
    """The blocklist matching form: NFKC, no default-ignorable characters, a TS #39 skeleton folded to
    Latin where characters imitate it, case-folded, without decorating marks, single spaces."""
    if text.isascii():  # nothing to fold but case (the common prompt, kept cheap)
        return _SPACES.sub(" ", text.lower()).strip()
    text = _IGNORABLE.sub("", unicodedata.normalize("NFKC", text))
    capitals, folded = _skeleton_tables()
    text = unicodedata.normalize("NFD", text).translate(capitals).casefold().translate(folded)
    text = _strip_marks(unicodedata.normalize("NFD", text))
    return _SPACES.sub(" ", text).strip()


@functools.lru_cache(maxsize=4096)
def _phrase_key(phrase: str) -> str:
    """A stored phrase's matching form (cached: the same phrases are checked on every job)."""
    return normalize(phrase)


def same_phrase(first: str, second: str) -> bool:
    """Whether two phrases match the same prompts (so a blocklist holds only one of them)."""
    return _phrase_key(first) == _phrase_key(second)


def blocked_phrase(prompt: str, blocklist: list[str]) -> str | None:
    """The first blocklisted phrase the prompt contains once both are normalised, if any.

    Phrases that normalise to nothing (stored before they were checked) match nothing."""
    clean = normalize(prompt)
    return next((p for p in blocklist if (key := _phrase_key(p)) and key in clean), None)


def discord_time(moment: datetime) -> str:
    """A Discord timestamp that each user sees in their own time zone, relative ("in 3 hours")."""
    return f"<t:{int(moment.timestamp())}:R>"


def check_place(config: GuildConfig, channel_id: int, channel_nsfw: bool) -> None:
    """Refuse jobs outside the allowed channels or outside age-restricted channels when required."""
    if config.allowed_channels and channel_id not in config.allowed_channels:
        where = ", ".join(f"<#{c}>" for c in config.allowed_channels[:10])
        raise Refused(Text("rules.channel.title"), Text("rules.channel.allowed", channels=where))
    if config.age_restricted_only and not channel_nsfw:
        raise Refused(Text("rules.channel.title"), Text("rules.channel.age_restricted"))


def check_blocklist(phrases: list[str], prompt: str, *, owner: Literal["server", "bot"] = "server") -> None:
    """Refuse a prompt containing one of the phrases; owner names who blocked it in the message."""
    phrase = blocked_phrase(prompt, phrases)
    if phrase is not None:
        raise Refused(Text("rules.prompt.title"), Text(f"rules.prompt.{owner}", phrase=phrase))


def check_prompt(config: GuildConfig, prompt: str) -> None:
    """Refuse prompts containing a phrase on the server's blocklist."""
    check_blocklist(config.blocklist, prompt, owner="server")
