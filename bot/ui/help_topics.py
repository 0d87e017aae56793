"""The pages of /help, each drawn from the live configuration: the facts they show, and their embeds."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import discord

from bot.billing.allowance import Allowance
from bot.billing.costs import CostRules, scaled, to_cents
from bot.billing.server_rules import discord_time
from bot.config import Settings
from bot.i18n import Credits, Text, language_of, number, t
from bot.providers.base import ModelSpec
from bot.providers.router import Router
from bot.ui.buttons import ACTIONS
from bot.ui.help import (
    EMOJI,
    FIELD_VALUE_LIMIT,
    TOPICS,
    CommandEntry,
    add_field,
    fit_embed,
    fit_lines,
    new_embed,
)

#: The package whose version the version page shows.
PACKAGE = "nanobot"
#: Characters of channel mentions the rules page lists before counting the rest.
CHANNELS_SHOWN = 700

#: A result's buttons as they are labelled (bot/ui/buttons.py), for the pages that name them.
BUTTONS = {
    name: ACTIONS[action][0]
    for name, action in (("reroll", "reroll"), ("subtle", "vsub"), ("strong", "vstr"), ("edit", "edit"))
}


@dataclass(frozen=True, slots=True)
class RulesFacts:
    """The rules where the member asked (a server's, or the DM ones) and their own allowance."""

    in_server: bool
    allowed: bool = True
    operator_blocked: bool = False
    allowance: Allowance | None = None
    pool: Allowance | None = None
    cooldown: int = 0
    running: int = 1
    queued: int = 0
    channels: tuple[int, ...] = ()
    age_restricted_only: bool = False
    here: bool = True
    multiplier: float = 1.0


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model a provider serves: its limits and what one image costs at each size (cents)."""

    model: str
    provider: str
    spec: ModelSpec
    sizes: tuple[tuple[str, int], ...]
    by_tokens: bool
    reference_cents: int


@dataclass(frozen=True, slots=True)
class PriceList:
    """Every model with its prices, as this server pays them (its cost multiplier applied)."""

    models: tuple[ModelPrice, ...]
    default_model: str | None
    multiplier: float
    refine_turn_cents: int
    upscale_cents: tuple[int, int, int]


def price_list(router: Router, costs: CostRules, multiplier: float, default_model: str | None) -> PriceList:
    """The router's models (each once, from the first provider serving it, as autocomplete lists them)
    priced by the cost rules for one image, scaled as admission scales a job."""

    seen: set[str] = set()
    models = []
    for provider, model in router.models():
        if model in seen:
            continue
        seen.add(model)
        spec = router.get(provider).spec(model)
        by_tokens = costs.token_price(spec.name) is not None
        sizes = tuple(
            (size, scaled(_one_image(costs, spec.name, size, by_tokens), multiplier))
            for size in spec.resolutions
        )
        models.append(
            ModelPrice(
                model, provider, spec, sizes, by_tokens, scaled(to_cents(costs.reference_image), multiplier)
            )
        )
    x2, x4, local = (
        costs.upscale(2, local=False),
        costs.upscale(4, local=False),
        costs.upscale(2, local=True),
    )
    return PriceList(
        tuple(models),
        default_model,
        multiplier,
        scaled(to_cents(costs.refine_turn), multiplier),
        (scaled(x2, multiplier), scaled(x4, multiplier), scaled(local, multiplier)),
    )


def _one_image(costs: CostRules, model: str, size: str, by_tokens: bool) -> int:
    """Cents one image costs (by tokens: what a job with a short prompt reserves)."""
    if by_tokens:
        return costs.token_estimate(model, size, 1, chars=0, images=0)
    return costs.generation(model, size, 1)


def _shown(entries: Sequence[CommandEntry]) -> Mapping[str, CommandEntry]:
    """The member's commands by English qualified name."""
    return {entry.english: entry for entry in entries}


def overview_embed(locale: str, bot_name: str, entries: Sequence[CommandEntry]) -> discord.Embed:
    """What the bot does, how to start, and the topics of the menu."""
    embed = new_embed(t(locale, "help.overview.title", bot=bot_name), t(locale, "help.overview.body"))
    start = _shown(entries).get("imagine")
    if start is not None and start.example:
        add_field(embed, t(locale, "help.overview.start"), f"`{start.example}`", inline=False)
    change = t(locale, "help.overview.change_value", **BUTTONS)
    add_field(embed, t(locale, "help.overview.change"), change, inline=False)
    topics = [
        f"{EMOJI[name]} **{t(locale, f'help.topic.{name}')}**: {t(locale, f'help.topic.{name}.hint')}"
        for name in TOPICS[1:]
    ]
    add_field(
        embed, t(locale, "help.overview.topics"), fit_lines(topics, FIELD_VALUE_LIMIT, locale), inline=False
    )
    embed.set_footer(text=t(locale, "help.overview.pick"))
    return fit_embed(embed, locale)


def commands_embed(locale: str, entries: Sequence[CommandEntry]) -> discord.Embed:
    """Each command the member can use here, with what it does and one example."""
    intro = t(locale, "help.commands.intro" if entries else "help.commands.none")
    lines = []
    for entry in entries:
        line = f"**{entry.shown}**: {entry.description}"
        if entry.example and entry.example != entry.shown:
            line += f"\n`{entry.example}`"
        lines.append(line)
    room = 4096 - len(intro) - 2
    return fit_embed(
        new_embed(t(locale, "help.commands.title"), f"{intro}\n\n{fit_lines(lines, room, locale)}"), locale
    )


def models_embed(locale: str, prices: PriceList) -> discord.Embed:
    """Each model with its shapes, sizes and credits per image, references and the other costs."""
    if not prices.models:
        return new_embed(t(locale, "help.models.title"), t(locale, "help.models.none"))
    lines = [t(locale, "help.models.intro", model=prices.default_model or prices.models[0].model)]
    if prices.multiplier != 1:
        lines.append(
            t(locale, "help.models.multiplier", factor="×" + number(prices.multiplier, language_of(locale)))
        )
    x2, x4, local = (Credits(c) for c in prices.upscale_cents)
    extras = t(
        locale, "help.models.extras_value", turn=Credits(prices.refine_turn_cents), x2=x2, x4=x4, local=local
    )
    lines.append(f"**{t(locale, 'help.models.extras')}**: {extras}")
    embed = new_embed(t(locale, "help.models.title"), "\n".join(lines))
    for price in prices.models:
        add_field(embed, f"{price.model} ({price.provider})", _model_text(locale, price), inline=False)
    return fit_embed(embed, locale)


def _model_text(locale: str, price: ModelPrice) -> str:
    """A model's shapes, sizes with their credits, references, thinking and search."""
    spec = price.spec
    sizes = " · ".join(f"{size}: {Credits(cents).render(locale)}" for size, cents in price.sizes)
    lines = [
        t(locale, "help.models.ratios", ratios=", ".join(spec.aspect_ratios)),
        t(locale, "help.models.sizes_tokens" if price.by_tokens else "help.models.sizes", sizes=sizes),
    ]
    count = spec.max_input_images
    if count == 0:
        lines.append(t(locale, "help.models.no_references"))
    elif price.by_tokens:
        lines.append(t(locale, "help.models.references_tokens", count=count))
    else:
        lines.append(t(locale, "help.models.references", count=count, cost=Credits(price.reference_cents)))
    if spec.thinking_levels:
        lines.append(t(locale, "help.models.thinking", levels=", ".join(spec.thinking_levels)))
    if spec.grounding:
        lines.append(t(locale, "help.models.search"))
    return "\n".join(lines)


def rules_embed(locale: str, facts: RulesFacts) -> discord.Embed:
    """Where, how often and how much: the server's (or the DM) rules and the member's credits."""
    title = t(locale, "help.rules.title_server" if facts.in_server else "help.rules.title_dm")
    if not facts.allowed:
        return new_embed(title, t(locale, "help.rules.dms_off"))
    notes = [t(locale, "help.rules.operator_blocked")] if facts.operator_blocked else []
    embed = new_embed(title, "\n".join(notes) or None)
    if facts.in_server:
        add_field(embed, t(locale, "help.rules.where"), _where(locale, facts), inline=False)
    cooldown = t(locale, "help.rules.cooldown_value", seconds=facts.cooldown) if facts.cooldown else None
    add_field(embed, t(locale, "help.rules.cooldown"), cooldown or t(locale, "help.rules.no_cooldown"))
    jobs = t(locale, "help.rules.jobs_value", running=facts.running, queued=facts.queued)
    add_field(embed, t(locale, "help.rules.jobs"), jobs)
    if facts.multiplier != 1:
        add_field(
            embed, t(locale, "help.rules.multiplier"), "×" + number(facts.multiplier, language_of(locale))
        )
    if facts.allowance is not None:
        _allowance_fields(embed, locale, facts.allowance, facts.pool)
    if facts.pool is not None:
        pool = facts.pool
        window = t(locale, f"help.window.{pool.window}")
        value = t(
            locale,
            "help.rules.pool_value",
            used=Credits(pool.used_cents),
            limit=Credits(pool.limit_cents),
            window=window,
        )
        add_field(embed, t(locale, "help.rules.pool"), value, inline=False)
    return fit_embed(embed, locale)


def _where(locale: str, facts: RulesFacts) -> str:
    """The allowed channels (or any), age-restricted only, and whether this channel is one."""
    if facts.channels:
        mentions = [f"<#{channel}>" for channel in facts.channels]
        listed = fit_lines(mentions, CHANNELS_SHOWN, locale).replace("\n", ", ")
        lines = [t(locale, "help.rules.channels", channels=listed)]
    else:
        lines = [t(locale, "help.rules.anywhere")]
    if facts.age_restricted_only:
        lines.append(t(locale, "help.rules.age_restricted"))
    lines.append(t(locale, "help.rules.here_yes" if facts.here else "help.rules.here_no"))
    return "\n".join(lines)


def _allowance_fields(
    embed: discord.Embed, locale: str, allowance: Allowance, pool: Allowance | None = None
) -> None:
    """The member's limit, used, reserved and reset time, as /usage counts them, and what is left: the
    least of what their own limit and the server pool still allow (admission needs both)."""
    if allowance.blocked:
        add_field(embed, t(locale, "help.rules.limit"), t(locale, "help.rules.blocked"), inline=False)
        return
    if allowance.limit_cents is None:
        limit = t(locale, "help.rules.unlimited")
    else:
        window = t(locale, f"help.window.{allowance.window}")
        amount = Credits(allowance.limit_cents)
        limit = t(locale, "help.rules.limit_value", credits=amount, count=amount, window=window)
    add_field(embed, t(locale, "help.rules.limit"), limit)
    add_field(
        embed,
        t(locale, "help.rules.used"),
        t(
            locale,
            "help.rules.credits",
            credits=Credits(allowance.used_cents),
            count=Credits(allowance.used_cents),
        ),
    )
    reserved = Credits(allowance.reserved_cents)
    add_field(
        embed,
        t(locale, "help.rules.reserved"),
        t(locale, "help.rules.credits", credits=reserved, count=reserved),
    )
    lefts = [a.left_cents for a in (allowance, pool) if a is not None and a.left_cents is not None]
    left = min(lefts) if lefts else None
    shown = (
        t(locale, "help.rules.unlimited")
        if left is None
        else t(locale, "help.rules.credits", credits=Credits(left), count=Credits(left))
    )
    add_field(embed, t(locale, "help.rules.left"), shown)
    if allowance.resets_at is not None:
        add_field(embed, t(locale, "help.rules.resets"), discord_time(allowance.resets_at))


def refine_embed(locale: str, settings: Settings, turn_cents: int) -> discord.Embed:
    """How a reply refines an image: what to write, what the model is sent, who may continue."""
    lines = [t(locale, "help.refine.how")]
    if not settings.message_content_intent:
        lines.append(t(locale, "help.refine.mention"))
    turn = Credits(turn_cents)
    cost = Text("usage.credits", amount=turn, count=turn)  # "0.2 credits", "1 credit"
    lines.append(t(locale, "help.refine.depth", count=settings.history_depth, cost=cost))
    lines.append(
        t(locale, "help.refine.anyone" if settings.continue_policy == "anyone" else "help.refine.starter")
    )
    lines.append(t(locale, "help.refine.private"))
    lines.append(t(locale, "help.refine.buttons", **BUTTONS))
    return new_embed(t(locale, "help.refine.title"), "\n\n".join(f"• {line}" for line in lines))


def privacy_embed(locale: str, settings: Settings, entries: Sequence[CommandEntry]) -> discord.Embed:
    """What is kept and for how long, where it goes, and the commands that hide or delete it."""
    shown = _shown(entries)
    lines = [t(locale, "help.privacy.stored"), t(locale, "help.privacy.sent")]
    days = settings.prompt_retention_days
    if days is None:
        lines.append(t(locale, "help.privacy.kept"))
    else:
        lines.append(t(locale, "help.privacy.retention", count=max(1, round(days)), days=days))
    if (prefs := shown.get("prefs set")) is not None:  # i18n: not a message (a command name)
        lines.append(t(locale, "help.privacy.private", command=f"`{prefs.shown} private:True`"))
    if (forget := shown.get("forget")) is not None:
        lines.append(t(locale, "help.privacy.forget", command=f"`{forget.shown}`"))
    lines.append(t(locale, "help.privacy.delete"))
    if (show := shown.get("show")) is not None:
        key = (
            "help.privacy.show_server" if settings.show_policy == "server" else "help.privacy.show_requester"
        )
        lines.append(t(locale, key, command=f"`{show.shown}`"))
    return new_embed(t(locale, "help.privacy.title"), "\n\n".join(f"• {line}" for line in lines))


def version_embed(locale: str, router: Router) -> discord.Embed:
    """The bot's version, discord.py's, and the configured image services by name (never a key or URL)."""
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = t(locale, "help.version.unknown")
    embed = new_embed(t(locale, "help.version.title"))
    add_field(embed, t(locale, "help.version.bot"), f"{PACKAGE} {version}")
    add_field(embed, t(locale, "help.version.library"), f"discord.py {discord.__version__}")
    services = [
        t(locale, "help.version.provider", name=p.name, kind=p.kind, count=len(p.models))
        for p in router.providers
    ]
    value = (
        fit_lines(services, FIELD_VALUE_LIMIT, locale) if services else t(locale, "help.version.no_providers")
    )
    add_field(embed, t(locale, "help.version.providers"), value, inline=False)
    return fit_embed(embed, locale)
