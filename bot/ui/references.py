"""The `references` option: links to Discord messages (each message's images) and image URLs.

The text is read before the interaction is answered (a typo or too many entries is refused at once);
the links are looked up after it (a message fetch each), and nothing is downloaded until the job has
been admitted, so a job over the model's reference limit is refused before any image is fetched.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import discord
import yarl

from bot.config import Settings
from bot.errors import InputError, ProviderError
from bot.i18n import Text, Words
from bot.imaging.codec import IMAGE
from bot.jobs.spec import JobInput, PendingInput, RawInput
from bot.providers.http import HttpClient, Limits
from bot.providers.netguard import check_url
from bot.ui.attachments import is_image_attachment, pending_attachment
from bot.ui.delivery import age_restricted
from bot.ui.types import Interaction
from bot.wiring import services_of

#: The most entries the option takes (no model takes more references than this).
MAX_ENTRIES = 16
_LINK = re.compile(
    r"^https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(?P<guild>\d+|@me)/(?P<channel>\d+)/(?P<message>\d+)/?$"
)
_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class MessageLink:
    """A link to a Discord message: its images are references."""

    guild_id: int | None
    channel_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class ImageUrl:
    """An image on the web (fetched through the address guard)."""

    url: str


Reference = MessageLink | ImageUrl


def _entry(token: str) -> Reference:
    """One entry: a message link, else an http(s) URL; anything else is refused by name."""
    if match := _LINK.match(token):
        guild = match["guild"]
        return MessageLink(
            None if guild == "@me" else int(guild), int(match["channel"]), int(match["message"])
        )
    try:
        url = yarl.URL(token)
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        shown = token if len(token) <= 60 else token[:57] + "…"
        raise InputError(Text("refs.not_a_reference", entry=shown))
    return ImageUrl(token)


def parse_references(text: str | None) -> list[Reference]:
    """The entries of the option (spaces, commas or new lines between them; `<link>` accepted)."""
    tokens = [t.strip("<>") for t in _SPLIT.split(text or "") if t.strip("<>")]
    if len(tokens) > MAX_ENTRIES:
        raise InputError(Text("refs.too_many", limit=MAX_ENTRIES, given=len(tokens)))
    return list(dict.fromkeys(_entry(t) for t in tokens))


async def _linked_channel(interaction: Interaction, link: MessageLink) -> discord.abc.Messageable:
    """The channel a link points into, if the member may read it there (same server, or this DM)."""
    if link.guild_id is None or interaction.guild is None:
        if link.guild_id is None and link.channel_id == interaction.channel_id:
            channel = interaction.channel
            assert isinstance(channel, discord.abc.Messageable)
            return channel
        raise InputError(Text("refs.link.elsewhere_or_dm"))
    if link.guild_id != interaction.guild.id:
        raise InputError(Text("refs.link.elsewhere"))
    guild = interaction.guild
    try:
        channel = guild.get_channel_or_thread(link.channel_id) or await guild.fetch_channel(link.channel_id)
    except (discord.NotFound, discord.Forbidden, discord.InvalidData):
        raise InputError(Text("refs.link.unseen_channel")) from None
    member = interaction.user
    if not isinstance(member, discord.Member) or not isinstance(channel, discord.abc.Messageable):
        raise InputError(Text("refs.link.unreadable_by_bot"))
    await check_readable(channel, member)
    if age_restricted(channel) and not age_restricted(interaction.channel):
        raise InputError(Text("refs.link.age_restricted"))
    return channel


async def check_readable(channel: discord.abc.GuildChannel | discord.Thread, member: discord.Member) -> None:
    """Refuse a channel the member cannot read; a private thread also needs its membership (its
    parent's permissions are what discord.py reports for a thread) or Manage Threads."""
    try:
        allowed = channel.permissions_for(member)
    except discord.ClientException:  # a thread whose parent is not known
        raise InputError(Text("refs.link.unreadable")) from None
    if not (allowed.view_channel and allowed.read_message_history):
        raise InputError(Text("refs.link.unreadable"))
    if isinstance(channel, discord.Thread) and channel.is_private() and not allowed.manage_threads:
        try:
            await channel.fetch_member(member.id)
        except discord.HTTPException:  # NotFound: not in it; anything else: not known to be
            raise InputError(Text("refs.link.private_thread")) from None


async def _linked_images(interaction: Interaction, link: MessageLink, cap: int) -> list[PendingInput]:
    """The images of a linked message (looked up, not downloaded)."""
    channel = await _linked_channel(interaction, link)
    try:
        message = await channel.fetch_message(link.message_id)
    except discord.NotFound:
        raise InputError(Text("refs.link.missing")) from None
    except discord.Forbidden:
        raise InputError(Text("refs.link.forbidden")) from None
    images = [pending_attachment(a, cap) for a in message.attachments if is_image_attachment(a)]
    if not images:
        raise InputError(Text("refs.link.no_image", link=message.jump_url))
    return images


def _url_input(http: HttpClient, settings: Settings, url: str) -> PendingInput:
    """An image URL as a job input, downloaded (guarded, capped) once the job is admitted."""
    limits = Limits(max_download_bytes=settings.max_input_bytes, download_timeout=settings.download_timeout)
    name: Words = yarl.URL(url).name or IMAGE

    async def fetch() -> RawInput:
        try:
            image = await http.download(
                url, provider="image URL", limits=limits, trusted_hosts=settings.image_url_hosts
            )
        except ProviderError as e:
            raise InputError(Text("refs.url.download_failed", host=yarl.URL(url).host)) from e
        return RawInput(image.data, name, url)

    return PendingInput(name=name, fetch=fetch, url=url)


async def reference_inputs(
    interaction: Interaction, references: list[Reference], *, http: HttpClient, settings: Settings
) -> list[JobInput]:
    """The references as job inputs: message links looked up, URLs checked by the address guard."""
    inputs: list[JobInput] = []
    for reference in references:
        if isinstance(reference, MessageLink):
            inputs += await _linked_images(interaction, reference, settings.max_input_bytes)
        else:
            await check_url(reference.url, trusted_hosts=settings.image_url_hosts)
            inputs.append(_url_input(http, settings, reference.url))
    return inputs


def uploaded_input(attachment: discord.Attachment, cap: int) -> PendingInput:
    """A file from the upload form: an image (the form takes any file), checked by its declared size."""
    if not is_image_attachment(attachment):
        raise InputError(Text("refs.upload.not_an_image", name=attachment.filename))
    return pending_attachment(attachment, cap)


@dataclass(frozen=True, slots=True)
class Given:
    """The references a command was given: its attachments and its `references` entries."""

    attachments: list[discord.Attachment] = field(default_factory=list)
    links: list[Reference] = field(default_factory=list)

    def inputs(self, interaction: Interaction, uploaded: list[discord.Attachment]) -> list[JobInput]:
        """The attachments and the uploaded files as job inputs (checked by their declared sizes)."""
        cap = services_of(interaction.client).settings.max_input_bytes
        inputs: list[JobInput] = [pending_attachment(a, cap) for a in self.attachments]
        return inputs + [uploaded_input(a, cap) for a in uploaded]

    def finder(self, interaction: Interaction) -> Callable[[], Awaitable[list[JobInput]]] | None:
        """How the job looks up the `references` entries once the server's rules have let it through
        (a blocked member or a closed channel costs no message fetch); None without entries."""
        if not self.links:
            return None
        services = services_of(interaction.client)
        http = HttpClient(services.session)
        return partial(reference_inputs, interaction, self.links, http=http, settings=services.settings)
