"""/help on Discord: the topic menu (a DynamicItem whose custom_id names the member it answers, so it
keeps working after a restart), the commands this bot has registered as the member's client names
them, and text fitted into Discord's embed limits."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import catalogue, language_of, t
from bot.ui.embeds import OK_COLOUR, clip
from bot.ui.types import Interaction

#: The cog that answers the menu.
HANDLER = "Help"
TEMPLATE = re.compile(r"nb:help:(?P<member>\d{1,20})")
#: The topics in menu order; the first is the overview the command answers with.
TOPICS = ("overview", "commands", "models", "rules", "refine", "privacy", "version")
EMOJI = {
    "overview": "🍌",
    "commands": "⌨️",
    "models": "🎨",
    "rules": "📏",
    "refine": "💬",
    "privacy": "🔒",
    "version": "ℹ️",
}
#: Discord's limits on an embed (characters) and on a select option's label and description.
TITLE_LIMIT, DESCRIPTION_LIMIT, FIELD_NAME_LIMIT, FIELD_VALUE_LIMIT = 256, 4096, 256, 1024
FIELD_COUNT_LIMIT, EMBED_LIMIT, OPTION_LIMIT = 25, 6000, 100
#: Room kept for the footer that counts the fields left out.
FOOTER_ROOM = 40
COMMAND_MENUS = {
    discord.AppCommandType.message: "help.commands.message_menu",
    discord.AppCommandType.user: "help.commands.user_menu",
}


class HelpHandler(Protocol):
    """What answers the menu (the Help cog)."""

    async def on_help_topic(self, interaction: Interaction, member_id: int, topic: str) -> None: ...


class TopicSelect(discord.ui.DynamicItem[discord.ui.Select[Any]], template=TEMPLATE):
    """The help's topic menu: `nb:help:<member>`, each value a topic."""

    def __init__(
        self, member_id: int, options: Sequence[discord.SelectOption] = (), placeholder: str | None = None
    ) -> None:
        select: discord.ui.Select[Any] = discord.ui.Select(
            custom_id=f"nb:help:{member_id}", options=list(options), placeholder=placeholder
        )
        super().__init__(select)
        self.member_id = member_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Select[Any], match: re.Match[str]
    ) -> TopicSelect:
        """Rebuild the menu from a choice (the chosen value is read back from the interaction)."""
        return cls(int(match["member"]), item.options, item.placeholder)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Hand the chosen topic to the Help cog."""
        values = self.item.values
        topic = values[0] if values and values[0] in TOPICS else TOPICS[0]
        cog = interaction.client.get_cog(HANDLER)
        assert cog is not None, "the help cog is not loaded"
        handler: HelpHandler = cog  # type: ignore[assignment]
        await handler.on_help_topic(interaction, self.member_id, topic)


def help_view(member_id: int, topic: str, locale: str | None) -> discord.ui.View:
    """The topic menu, in the member's language, showing the topic on screen as chosen."""
    options = [
        discord.SelectOption(
            label=clip(t(locale, f"help.topic.{name}"), OPTION_LIMIT),
            value=name,
            emoji=EMOJI[name],
            description=clip(t(locale, f"help.topic.{name}.hint"), OPTION_LIMIT),
            default=name == topic,
        )
        for name in TOPICS
    ]
    view = discord.ui.View(timeout=None)
    view.add_item(TopicSelect(member_id, options, clip(t(locale, "help.menu.placeholder"), OPTION_LIMIT)))
    return view


# --- the commands this bot has registered, as the member's client shows them ------------------------


@dataclass(frozen=True, slots=True)
class CommandEntry:
    """One command the member can use here: its English qualified name (what keys are made of), how
    their client names it ("/ajustes establecer"), what it does and one example."""

    english: str
    shown: str
    description: str
    example: str | None
    menu: bool = False


Leaf = app_commands.Command[Any, ..., Any] | app_commands.ContextMenu


async def command_entries(interaction: Interaction) -> list[CommandEntry]:
    """Every command of the live tree the member may use where they asked, in the tree's order."""
    tree = interaction.client.tree
    locale = interaction.locale
    entries = []
    for leaf in _leaves(tree, interaction.guild_id):
        if not offered_here(leaf, interaction):
            continue
        if isinstance(leaf, app_commands.ContextMenu):
            name = await _translated(tree, leaf.name, Where.command_name, leaf, locale)
            words = t(locale.value, COMMAND_MENUS.get(leaf.type, "help.commands.message_menu"), name=name)
            entries.append(CommandEntry(leaf.qualified_name, name, words, None, menu=True))
            continue
        shown = "/" + " ".join([await _name(tree, part, locale) for part in _chain(leaf)])
        words = await _translated(tree, leaf.description, Where.command_description, leaf, locale)
        entries.append(CommandEntry(leaf.qualified_name, shown, words, example_of(leaf, shown, locale.value)))
    return entries


def _leaves(tree: app_commands.CommandTree[Any], guild_id: int | None) -> Iterator[Leaf]:
    """Slash commands (sub-commands for a group) and context menus: global ones, then this server's
    own (a development sync copies the global ones there: each is listed once)."""
    seen: set[tuple[str, int]] = set()
    guild = discord.Object(guild_id) if guild_id else None
    found = [*tree.get_commands(), *(tree.get_commands(guild=guild) if guild else [])]
    for command in found:
        commands = command.walk_commands() if isinstance(command, app_commands.Group) else [command]
        for leaf in commands:
            if isinstance(leaf, app_commands.Group):
                continue
            kind = leaf.type.value if isinstance(leaf, app_commands.ContextMenu) else 1
            if (leaf.qualified_name, kind) not in seen:
                seen.add((leaf.qualified_name, kind))
                yield leaf


def _chain(command: app_commands.Command[Any, ..., Any]) -> list[Any]:
    """The command's groups from the root, then the command."""
    parts: list[Any] = [command]
    parent = command.parent
    while parent is not None:
        parts.insert(0, parent)
        parent = parent.parent
    return parts


async def _name(tree: app_commands.CommandTree[Any], part: Any, locale: discord.Locale) -> str:
    """A command's or a group's name in the member's language."""
    where = Where.group_name if isinstance(part, app_commands.Group) else Where.command_name
    return await _translated(tree, part.name, where, part, locale)


async def _translated(
    tree: app_commands.CommandTree[Any], english: str, where: Where, data: Any, locale: discord.Locale
) -> str:
    """A command text as Discord shows it to this locale: the tree's translation, else the default."""
    translator = tree.translator
    if translator is None:
        return english
    # The location is one of the overloads' literals; mypy cannot tell which from a variable.
    context: app_commands.TranslationContext[Any, Any] = app_commands.TranslationContext(where, data)  # type: ignore[call-overload]
    found = await translator.translate(app_commands.locale_str(english), locale, context)
    return found or english


def offered_here(command: Leaf, interaction: Interaction) -> bool:
    """Whether Discord offers the command to this member where they asked: its contexts and installs,
    and (in a server) the permissions it needs by default (a sub-command has its group's)."""
    top: Leaf | app_commands.Group = command
    if isinstance(command, app_commands.Command) and command.root_parent is not None:
        top = command.root_parent
    contexts, place = top.allowed_contexts, interaction.context
    if place.guild:
        allowed = contexts is None or contexts.guild
    elif place.dm_channel:
        allowed = contexts.dm_channel if contexts is not None else not top.guild_only
    else:
        allowed = contexts is not None and contexts.private_channel
    if not interaction.is_guild_integration() and not place.dm_channel:  # the member's own install
        allowed = allowed and top.allowed_installs is not None and top.allowed_installs.user
    if allowed and place.guild and top.default_permissions is not None:
        allowed = interaction.permissions >= top.default_permissions
    return allowed


def example_of(command: app_commands.Command[Any, ..., Any], shown: str, locale: str) -> str:
    """One example: the catalogue's for this command, else its name with its required options."""
    key = f"help.example.{command.qualified_name}"
    if catalogue().lookup(language_of(locale), key) is not None:
        return t(locale, key, command=shown)
    required = [f"{p.display_name}:…" for p in command.parameters if p.required]
    return " ".join([shown, *required])


# --- fitting text into an embed ------------------------------------------------------------------


def fit_lines(lines: Sequence[str], limit: int, locale: str | None) -> str:
    """Whole lines within limit characters; the lines left out counted on a last line."""
    kept = list(lines)
    text = "\n".join(kept)
    while len(text) > limit and kept:
        kept.pop()
        text = "\n".join([*kept, t(locale, "help.more", count=len(lines) - len(kept))])
    return clip(text, limit)


def add_field(embed: discord.Embed, name: str, value: str, *, inline: bool = True) -> None:
    """A field clipped to Discord's limits (an empty value would be refused: shown as a dash)."""
    embed.add_field(
        name=clip(name, FIELD_NAME_LIMIT), value=clip(value or "—", FIELD_VALUE_LIMIT), inline=inline
    )


def fit_embed(embed: discord.Embed, locale: str | None) -> discord.Embed:
    """The embed within 25 fields and 6000 characters: trailing fields are left out, and counted."""
    dropped = 0
    while embed.fields and (
        len(embed.fields) > FIELD_COUNT_LIMIT or len(embed) + (FOOTER_ROOM if dropped else 0) > EMBED_LIMIT
    ):
        embed.remove_field(len(embed.fields) - 1)
        dropped += 1
    if dropped:
        embed.set_footer(text=t(locale, "help.more", count=dropped))
    return embed


def new_embed(title: str, description: str | None = None) -> discord.Embed:
    """A help page: its title and text clipped to Discord's limits."""
    text = clip(description, DESCRIPTION_LIMIT) if description else None
    return discord.Embed(title=clip(title, TITLE_LIMIT), description=text, colour=OK_COLOUR)
