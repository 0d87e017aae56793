"""Every word a user reads, in their language: one message catalogue (gettext files read with Babel).

Code names a message by its key (`Text("usage.title")`, `t(locale, "usage.title")`); the English words
live in `messages/<domain>.pot`, each translation in `messages/<language>/<domain>.po` (the key is the
entry's `msgctxt`, the English its `msgid`). Core code raises and returns `Text`; only the edge that
talks to Discord renders it, with the member's locale (or the server's, for the bot's own posts).
"""

from bot.i18n.catalogue import LANGUAGES, Catalogue, catalogue, language_of
from bot.i18n.text import Bytes, Credits, Text, Words, number, render, t

__all__ = [
    "LANGUAGES",
    "Bytes",
    "Catalogue",
    "Credits",
    "Text",
    "Words",
    "catalogue",
    "language_of",
    "number",
    "render",
    "t",
]
