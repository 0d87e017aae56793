"""Upstream error text made fit to show a Discord user: one short line, no markup, no addresses, no keys.

A provider's error body is written by someone else (or by whatever answered in its place): it may
carry HTML, internal URLs and host names, echoed keys, or Markdown that would render as a link.
Users only ever see the HTTP status and, where the wire format has a structured error message,
that message cleaned here.
"""

from __future__ import annotations

import re
from typing import Any

#: Longest cleaned message shown to a user.
MAX_REASON = 120

_HTML = re.compile(r"<\s*[!/?A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")
#: A Markdown link [text](target): the text is kept, the target goes.
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"(?:\b[A-Za-z][A-Za-z0-9+.-]*://|\bwww\.)[^\s<>\"'()]*", re.IGNORECASE)
#: Bearer tokens and the shapes real API keys take (Google, OpenAI, Slack-style, JWT).
_KEY = re.compile(
    r"\bBearer\s+\S+|\b(?:AIza[\w-]{10,}|sk-[\w-]{8,}|xox[abpr]-[\w-]{8,}|eyJ[\w-]{10,}\.[\w.-]+)",
    re.IGNORECASE,
)
#: Long opaque tokens mixing letters and digits: likely a key, a signature or a session id.
_TOKEN = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{32,}\b")
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
_IPV6 = re.compile(r"(?<![\w:])\[?(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?\]?(?::\d+)?")
#: Placeholders in a row ("::ffff:(address)" becomes two) shown once.
_REPEATED = re.compile(r"(\((?:address|host|link|redacted)\))(?:\s*\1)+")
#: host.domain.tld (with an optional port), but not file names such as image0.png.
_HOST = re.compile(
    r"\b(?:[A-Za-z0-9-]+\.)+(?!(?:png|jpe?g|webp|gif|bmp|json)\b)[A-Za-z][A-Za-z0-9-]+(?::\d+)?\b"
)
_LOCAL = re.compile(r"\blocalhost(?::\d+)?\b", re.IGNORECASE)
#: Characters Discord renders as Markdown (links, emphasis, code, quotes, headings, mentions).
_MARKDOWN = re.compile(r"[`*~|>#\[\]<\\@]")
#: Underscores that could open or close emphasis; snake_case codes such as API_KEY_INVALID stay.
_LOOSE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")
_SPACES = re.compile(r"\s+")


def clean_message(value: Any, limit: int = MAX_REASON) -> str | None:
    """A provider's error message as one safe short line, or None when nothing showable is left."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value)
    if _HTML.search(text):  # a page, not a message: none of it is shown
        return None
    text = _CONTROL.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub("(link)", text)
    text = _KEY.sub("(redacted)", text)
    text = _TOKEN.sub("(redacted)", text)
    text = _IPV4.sub("(address)", text)
    text = _IPV6.sub("(address)", text)
    text = _HOST.sub("(host)", text)
    text = _LOCAL.sub("(host)", text)
    text = _REPEATED.sub(r"\1", text)
    text = _MARKDOWN.sub("", text)
    text = _LOOSE_UNDERSCORE.sub(" ", text)
    text = _SPACES.sub(" ", text).strip(" .,;:-")
    return _clip(text, limit) or None


def _clip(text: str, limit: int) -> str:
    """Cut at a word boundary, so that a key the caller redacts later is never left half-shown."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if not text[limit - 1].isspace():
        head = head.rpartition(" ")[0]
    head = head.rstrip(" .,;:-")
    return head + "…" if head else ""


def reason(status: int, *messages: Any) -> str:
    """What a user is told about a failed call: "HTTP 502", or "HTTP 400: <first cleaned message>"."""
    for message in messages:
        cleaned = clean_message(message)
        if cleaned:
            return f"HTTP {status}: {cleaned}"
    return f"HTTP {status}"
