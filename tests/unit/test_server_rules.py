"""Server rules without Discord: where images may be made, and the refusals a blocklist gives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bot.billing.server_rules import check_blocklist, check_place, check_prompt, discord_time
from bot.errors import Refused
from bot.storage.guilds import GuildConfig

HERE, THERE = 1001, 1002


def refusal(call: Callable[..., None], *args: object, **kwargs: object) -> tuple[str, str]:
    """The (title, message) of the Refused a rule raises."""
    with pytest.raises(Refused) as caught:
        call(*args, **kwargs)
    return caught.value.title_text(), caught.value.message


def test_any_channel_is_fine_without_rules() -> None:
    check_place(GuildConfig(), HERE, channel_nsfw=False)  # raises when refused


def test_only_the_allowed_channels_are_fine() -> None:
    config = GuildConfig(allowed_channels=[THERE, 1003])
    check_place(config, THERE, channel_nsfw=False)
    assert refusal(check_place, config, HERE, False) == (
        "🚧 Not in this channel",
        "Images can be made here: <#1002>, <#1003>.",
    )


def test_the_refusal_names_at_most_ten_allowed_channels() -> None:
    config = GuildConfig(allowed_channels=list(range(2000, 2015)))
    _, message = refusal(check_place, config, HERE, False)
    assert message == "Images can be made here: " + ", ".join(f"<#{c}>" for c in range(2000, 2010)) + "."


def test_age_restricted_servers_refuse_ordinary_channels() -> None:
    config = GuildConfig(age_restricted_only=True)
    check_place(config, HERE, channel_nsfw=True)
    assert refusal(check_place, config, HERE, False) == (
        "🚧 Not in this channel",
        "On this server images can only be made in age-restricted channels.",
    )


def test_the_channel_list_is_checked_before_the_age_restriction() -> None:
    config = GuildConfig(allowed_channels=[THERE], age_restricted_only=True)
    _, message = refusal(check_place, config, HERE, True)
    assert message.startswith("Images can be made here:")


def test_a_prompt_with_a_blocked_phrase_is_refused_naming_it() -> None:
    config = GuildConfig(blocklist=["red panda", "gore"])
    check_prompt(config, "a red fox in the snow")
    assert refusal(check_prompt, config, "A  RED   Panda eating bamboo") == (
        "🚫 Prompt not allowed",
        "Your prompt contains “red panda”, which this server does not allow.",
    )


def test_the_first_listed_phrase_is_named() -> None:
    config = GuildConfig(blocklist=["gore", "blood"])
    _, message = refusal(check_prompt, config, "blood and gore")
    assert "“gore”" in message


def test_disguised_phrases_are_still_found() -> None:
    config = GuildConfig(blocklist=["gore"])
    for prompt in ("g\u200bore", "GＯRE", "gоre"):  # a zero-width space; a fullwidth O; a Cyrillic о
        assert refusal(check_prompt, config, prompt)[0] == "🚫 Prompt not allowed", prompt


def test_the_blocklist_message_names_its_owner() -> None:
    check_blocklist(["gore"], "a sunny meadow", owner="bot")
    assert refusal(check_blocklist, ["gore"], "gore", owner="bot") == (
        "🚫 Prompt not allowed",
        "Your prompt contains “gore”, which this bot does not allow.",
    )


def test_an_empty_phrase_blocks_nothing() -> None:
    check_blocklist(["\u200b", ""], "anything at all")


def test_discord_time_is_a_relative_timestamp() -> None:
    assert discord_time(datetime(2025, 6, 4, 12, 0, tzinfo=UTC)) == "<t:1749038400:R>"


def test_a_blocked_phrase_is_named_in_the_members_language() -> None:
    for owner, who in (("server", "este servidor"), ("bot", "este bot")):
        with pytest.raises(Refused) as caught:
            check_blocklist(["gore"], "gore", owner=owner)  # type: ignore[arg-type]
        assert caught.value.title_text("es-ES") == "🚫 Prompt no permitido"
        assert caught.value.reply_text("es-ES") == f"Tu prompt contiene «gore», algo que {who} no permite."
