"""The server blocklist: invisible characters, homoglyphs and combining marks do not dodge it."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from bot.billing.server_rules import blocked_phrase, normalize
from bot.storage.guilds import GuildConfig
from tests.botenv import running_bot, settled_usage
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "blocklist-key"
EMPTY = "That phrase is empty once invisible characters are removed"


@dataclass
class Env:
    discord: FakeDiscord
    gemini: FakeGemini
    bot: NanoBot

    async def command(self, name: str, options: dict[str, Any], user: str = "alice") -> dict[str, Any]:
        inter = await self.discord.send_slash(name, options, user=user)
        return await inter.wait_done()

    async def imagine(self, prompt: str) -> dict[str, Any]:
        return await self.command("imagine", {"prompt": prompt})

    async def blocklist(self, action: str, phrase: str) -> dict[str, Any]:
        return await self.command("settings blocklist", {"action": action, "phrase": phrase}, user="admin")

    async def stored(self) -> list[str]:
        """The blocklist as saved in the database."""
        assert self.bot.guild_settings is not None
        return (await self.bot.guild_settings.get(int(self.discord.guild_id))).blocklist

    async def usage(self) -> tuple[int, int]:
        return await settled_usage(self.discord, self.bot, "alice")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry) as bot:
            env = Env(fake, gemini, bot)
            done = await env.command("quota set", {"scope": "default", "limit": "10"}, user="admin")
            assert "✅" in done["content"], done
            yield env
        assert fake.violations == []


def title(message: dict[str, Any]) -> str:
    return str(message["embeds"][0]["title"]) if message.get("embeds") else str(message.get("content"))


def has_image(env: Env, message: dict[str, Any]) -> bool:
    return bool(env.discord.files_of(message))


def strike(word: str, mark: str = "\u0336") -> str:
    """Each letter followed by a combining mark (c̶o̶c̶o̶a̶)."""
    return "".join(letter + mark for letter in word)


#: "cocoa" spelled so that it looks the same (or near enough) but is not the same string.
TRICKS = {
    "soft hyphen": "co\u00adcoa",
    "bidi isolates U+2066-2069": "c\u2066o\u2067c\u2068o\u2069a",
    "combining grapheme joiner": "coc\u034foa",
    "mongolian vowel separator": "co\u180ecoa",
    "variation selectors U+FE00-FE0F": "c\ufe00oc\ufe0foa",
    "variation selectors U+E0100-E01EF": "co\U000e0100co\U000e01efa",
    "tag characters": "coc\U000e0001\U000e0063\U000e007foa",
    "hangul filler": "co\u3164coa",
    "cyrillic es": "\u0441o\u0441oa",
    "cyrillic capitals": "\u0421\u041e\u0421\u041e\u0410",
    "greek omicron": "c\u03bfc\u03bfa",
    "fullwidth letters": "ｃｏｃｏａ",
    "combining strikethrough": strike("cocoa"),
    "combining marks of several kinds": "c\u0301o\u0308c\u20ddo\u0489a\u0327",
}


@pytest.mark.parametrize("dodged", list(TRICKS.values()), ids=list(TRICKS))
async def test_unicode_tricks_do_not_dodge_the_blocklist(env: Env, dodged: str) -> None:
    await env.blocklist("add", "cocoa")
    refused = await env.imagine(f"a mug of hot {dodged} by the fire")
    assert "Prompt not allowed" in title(refused), refused
    assert "“cocoa”" in refused["embeds"][0]["description"]
    assert refused["flags"] & 64 and not has_image(env, refused)
    assert env.gemini.calls == 0
    assert await env.usage() == (0, 0)
    assert has_image(env, await env.imagine("a mug of hot tea by the fire"))
    assert env.gemini.calls == 1
    assert await env.usage() == (100, 0)


@pytest.mark.parametrize(
    "phrase", ["\u200b", "\u200b\u200c\u200d\u2060", "\u00ad \ufe0f \U000e0020", "\u3164"]
)
async def test_invisible_only_phrase_is_refused(env: Env, phrase: str) -> None:
    await env.blocklist("add", "cocoa")
    refused = await env.blocklist("add", phrase)
    assert "Bad input" in title(refused) and EMPTY in refused["embeds"][0]["description"]
    assert refused["flags"] & 64
    assert await env.stored() == ["cocoa"]
    assert has_image(env, await env.imagine("a lighthouse at dawn"))
    assert "Prompt not allowed" in title(await env.imagine("hot cocoa"))


async def test_stored_invisible_phrase_blocks_nothing(env: Env) -> None:
    """A row saved before phrases were checked (an invisible-only phrase) must not block every prompt."""
    assert env.bot.guild_settings is not None
    await env.bot.guild_settings.put(
        int(env.discord.guild_id), GuildConfig(blocklist=["\u200b\u2063", "cocoa"])
    )
    assert has_image(env, await env.imagine("a lighthouse at dawn"))
    assert "Prompt not allowed" in title(await env.imagine("hot ｃｏｃｏａ"))


async def test_same_skeleton_is_one_entry_and_removal_matches_it(env: Env) -> None:
    await env.blocklist("add", "cocoa")
    await env.blocklist("add", "Forbidden Thing")
    shown = await env.blocklist("add", "\u0421\u041e\u0421\u041e\u0410")  # Cyrillic capitals
    assert len(await env.stored()) == 2
    assert shown["embeds"][0]["title"] == "Server settings"
    await env.blocklist("add", "forbidden\u200b  thing")
    assert len(await env.stored()) == 2
    await env.blocklist("remove", "ｃｏｃｏａ")
    assert [normalize(p) for p in await env.stored()] == ["forbidden thing"]
    assert has_image(env, await env.imagine("hot cocoa"))


# Fast unit tests of the normalisation itself.


@pytest.mark.parametrize(("text", "expected"), [(t, "cocoa") for t in TRICKS.values()])
def test_normalize_folds_every_trick(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_removes_every_default_ignorable_range() -> None:
    samples = [0xAD, 0x34F, 0x61C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180E, 0x180F, 0x200B, 0x200F]
    samples += [0x202A, 0x202E, 0x2060, 0x2065, 0x2066, 0x206F, 0x3164, 0xFE00, 0xFE0F, 0xFEFF, 0xFFA0]
    samples += [0xFFF0, 0xFFF8, 0x1BCA0, 0x1BCA3, 0x1D173, 0x1D17A, 0xE0000, 0xE0001, 0xE007F, 0xE0100]
    samples += [0xE01EF, 0xE01F0, 0xE0FFF]
    for code in samples:
        assert normalize(f"a{chr(code)}b") == "ab", hex(code)
    assert normalize("".join(map(chr, samples))) == ""


def test_normalize_case_width_and_spaces() -> None:
    assert normalize("  Forbidden\u00a0\u3000THING\n\t") == "forbidden thing"
    assert normalize("𝐁𝐎𝐋𝐃 Straße") == "bold strasse"
    assert normalize("café") == normalize("cafe") == "cafe"


def test_normalize_is_idempotent() -> None:
    for text in [*TRICKS.values(), "Ünïcödé ТЕКСТ", "がぎぐ", "नमस्ते", "naïve  café", "고양이"]:
        once = normalize(text)
        assert normalize(once) == once
    blocks = [(0x80, 0x530), (0x1D00, 0x1DC0), (0x2100, 0x2200), (0x13A0, 0x1400), (0xA640, 0xA800)]
    for char in (chr(code) for start, end in blocks for code in range(start, end)):
        once = normalize(f"x{char}y")
        assert normalize(once) == once, hex(ord(char))


def test_cyrillic_and_greek_capitals_fold_like_the_latin_capitals_they_imitate() -> None:
    assert normalize("ВОМВ НАТ КІТ") == "bomb hat kit"  # Cyrillic В, Н, К, М, Т, І
    assert normalize("ΗΟΤ ΚΙΤ") == "hot kit"  # Greek
    assert normalize("СЛОВО") == normalize("слово")  # and Cyrillic stays case-insensitive


def test_plain_ascii_letters_are_not_folded_together() -> None:
    """TS #39 maps m→rn, I→l, 0→O and 1→l; applied to ASCII that would block innocent words."""
    assert blocked_phrase("a pomegranate on a table", ["porn"]) is None
    assert blocked_phrase("click the button", ["dick"]) is None
    assert blocked_phrase("ILL", ["lll"]) is None and blocked_phrase("b0b", ["bob"]) is None


def test_marks_are_kept_where_they_change_the_letter() -> None:
    """Japanese voiced marks and Devanagari vowel signs are part of the word, not decoration."""
    assert normalize("がき") != normalize("かき")
    assert unicodedata.normalize("NFC", normalize("がき")) == "がき"
    assert blocked_phrase("かき氷", ["がき"]) is None
    assert normalize("किताब") != normalize("कताब")


def test_non_latin_phrases_still_match_themselves() -> None:
    assert blocked_phrase("Запрещённое СЛОВО здесь", ["запрещенное слово"]) == "запрещенное слово"
    assert blocked_phrase("ガキの使い", ["ガキ"]) == "ガキ"
    assert blocked_phrase("工口 manga", ["エロ"]) == "エロ"  # kanji that look like katakana
    assert blocked_phrase("고양이 사진", ["양이"]) == "양이"


def test_hangul_syllables_do_not_match_across_their_boundary() -> None:
    """NFD splits 양 into jamo; its final ㅇ must not match the initial ㅇ of the next syllable."""
    assert blocked_phrase("야이", ["양"]) is None


def test_blocked_phrase_ignores_empty_phrases_and_returns_the_stored_spelling() -> None:
    assert blocked_phrase("anything at all", ["", "\u200b", "\u00ad\ufe0f"]) is None
    assert blocked_phrase("hot сосоа", ["tea", "CoCoA"]) == "CoCoA"
