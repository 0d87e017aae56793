"""The message catalogue: every language has every message, and no user-facing words bypass it."""

from __future__ import annotations

import ast
import re
import tokenize
from pathlib import Path

import pytest

import bot.errors
from bot.i18n import LANGUAGES, catalogue, t
from bot.i18n.catalogue import MESSAGES, fields, read_domain
from bot.providers.breaker import CircuitOpen

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = sorted(MESSAGES.glob("*.pot"))


def test_there_is_a_catalogue() -> None:
    assert DOMAINS and set(LANGUAGES) >= {"es", "pt_BR", "ja"}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", DOMAINS, ids=lambda p: p.stem)
def test_every_language_has_every_message(template: Path, language: str) -> None:
    english = read_domain(template)
    path = MESSAGES / language / f"{template.stem}.po"
    assert path.exists(), f"{language} lacks the {template.stem} domain"
    translated = read_domain(path)
    with path.open("rb") as handle:
        from babel.messages.pofile import read_po

        sources = {m.context: str(m.id) for m in read_po(handle) if m.context}
    missing = sorted(set(english) - set(translated))
    assert not missing, f"{language}/{template.stem}.po lacks {missing}"
    extra = sorted(set(translated) - set(english))
    assert not extra, f"{language}/{template.stem}.po has keys English lacks: {extra}"
    empty = sorted(key for key, text in translated.items() if not text.strip())
    assert not empty, f"{language}/{template.stem}.po leaves {empty} untranslated"
    stale = sorted(key for key in english if sources[key] != english[key])
    assert not stale, f"{language}/{template.stem}.po translates an older English text of {stale}"
    unfit = sorted(key for key in english if fields(translated[key]) != fields(english[key]))
    assert not unfit, f"{language}/{template.stem}.po's {unfit} use other placeholders than English"


def test_no_key_is_in_two_domains() -> None:
    seen: dict[str, str] = {}
    for template in DOMAINS:
        for key in read_domain(template):
            assert key not in seen, f"{key} is in {seen.get(key)} and {template.stem}"
            seen[key] = template.stem


def test_a_language_is_chosen_by_discord_locale() -> None:
    assert (
        t("es-ES", "error.storage.title")
        == t("es-419", "error.storage.title")
        != t("en-US", "error.storage.title")
    )
    assert t("pt-BR", "error.storage.title") != t("es-ES", "error.storage.title")
    assert t("ja", "error.storage.title") == "⚠️ データベースを利用できません"
    assert t("fr", "error.storage.title") == t(None, "error.storage.title") == "⚠️ Database unavailable"


# --- nothing a user reads bypasses the catalogue ----------------------------------------------------

#: Modules where Discord is answered: any literal text of two words or more is a message.
EDGE = [
    ROOT / "bot" / "app.py",
    *sorted((ROOT / "cogs").glob("*.py")),
    *sorted((ROOT / "bot" / "ui").glob("*.py")),
]
#: Every module: an error's message given as literal text (an error without a detail_intro shows it whole).
EVERYWHERE = [*sorted((ROOT / "bot").rglob("*.py")), *sorted((ROOT / "cogs").glob("*.py"))]
#: Two words: what a message has and a key, a path, a format or an identifier has not.
WORDS = re.compile(r"[A-Za-z][a-z']+ [a-z']{2,}")
#: Calls whose text is not for a Discord user (the log, programming errors, command defaults checked
#: against the catalogue by tests/bot/test_localization.py).
EXEMPT_CALLS = {
    "debug",
    "info",
    "warning",
    "error",
    "exception",
    "critical",
    "locale_str",
    "RuntimeError",
    "ValueError",
    "TypeError",
    "KeyError",
    "AssertionError",
    "NotImplementedError",
    "getLogger",
    "compile",
    # The operator's console: the command line's output and configuration errors (English by design).
    "print",
    "ConfigError",
}
#: A line ending in this comment holds data (a prompt's example, a format), not a message.
PRAGMA = "# i18n: not a message"
ERRORS = {
    name: cls
    for name, cls in [*vars(bot.errors).items(), ("CircuitOpen", CircuitOpen)]
    # A ConfigError is the operator's (startup, the command-line tool, the log): English by design.
    if isinstance(cls, type)
    and issubclass(cls, bot.errors.NanoBotError)
    and cls is not bot.errors.ConfigError
}


def _exempt_lines(path: Path) -> set[int]:
    with path.open("rb") as handle:
        return {
            tok.start[0]
            for tok in tokenize.tokenize(handle.readline)
            if tok.type == tokenize.COMMENT and tok.string.startswith(PRAGMA)
        }


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    return None


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _skipped(tree: ast.Module) -> set[int]:
    """Nodes (by id) that are docstrings, inside exempt calls or inside asserts."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and _text(body[0].value) is not None
        ):
            skipped.add(id(body[0].value))
        inside = (isinstance(node, ast.Call) and _callee(node) in EXEMPT_CALLS) or isinstance(
            node, ast.Assert
        )
        if inside:
            skipped.update(id(child) for child in ast.walk(node))
    return skipped


def _edge_words(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skipped, exempt = _skipped(tree), _exempt_lines(path)
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(tree):
        text = _text(node)
        if text is None or id(node) in skipped | parts or node.lineno in exempt:  # type: ignore[attr-defined]
            continue
        if WORDS.search(text):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:60]!r}")  # type: ignore[attr-defined]
    return found


def _literal_errors(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    exempt = _exempt_lines(path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or node.lineno in exempt:
            continue
        cls = ERRORS.get(_callee(node))
        if cls is None or cls.detail_intro is not None:
            continue
        texts = [_text(arg) for arg in node.args] + [
            _text(k.value) for k in node.keywords if k.arg == "message"
        ]
        if any(text and WORDS.search(text) for text in texts):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {cls.__name__}(...)")
    return found


@pytest.mark.parametrize("path", EDGE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_edge_says_nothing_outside_the_catalogue(path: Path) -> None:
    found = _edge_words(path)
    assert not found, "words a user reads that are not in the catalogue:\n" + "\n".join(found)


@pytest.mark.parametrize("path", EVERYWHERE, ids=lambda p: str(p.relative_to(ROOT)))
def test_errors_are_worded_by_the_catalogue(path: Path) -> None:
    found = _literal_errors(path)
    assert not found, "errors worded outside the catalogue:\n" + "\n".join(found)


def _keys_used(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    used = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _callee(node) in {"Text", "t"}:
            args = node.args[1:] if _callee(node) == "t" else node.args
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                used.append((node.lineno, args[0].value))
    return used


@pytest.mark.parametrize("path", EVERYWHERE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_key_in_the_code_is_in_the_catalogue(path: Path) -> None:
    book = catalogue()
    missing = [
        f"{line}: {key}" for line, key in _keys_used(path) if not (book.has(key) or book.has(f"{key}.other"))
    ]
    assert not missing, f"{path.relative_to(ROOT)} uses keys the catalogue lacks: {missing}"


def _command_names(language: str) -> dict[str, str]:
    """English command name → its name in the language (top-level commands of the catalogue)."""
    book = catalogue()
    names = {}
    for key, english in book.messages["en"].items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "command" and parts[2] == "name" and " " not in parts[1]:
            names[english] = book.messages[language].get(key) or english
    return names


@pytest.mark.parametrize("language", LANGUAGES)
def test_messages_name_commands_as_the_language_does(language: str) -> None:
    """A Spanish message says /imaginar where the Spanish Discord lists /imagine as /imaginar."""
    names = _command_names(language)
    wrong = []
    for key, text in catalogue().messages[language].items():
        for said in re.findall(r"(?<![\w<])/([-\w]+)", text):
            if said in names and names[said] != said:
                wrong.append(f"{key}: /{said} (Discord shows /{names[said]})")
    assert not wrong, "\n".join(wrong)


def _calls_missing_values(path: Path) -> list[str]:
    """Catalogue calls with a literal key and only named values that leave a placeholder unfilled."""
    book = catalogue().messages["en"]
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _callee(node) not in {"Text", "t"}:
            continue
        args = node.args[1:] if _callee(node) == "t" else node.args
        if not args or not isinstance(args[0], ast.Constant) or not isinstance(args[0].value, str):
            continue
        if any(k.arg is None for k in node.keywords):
            continue  # **values: not knowable here
        key, given = args[0].value, {k.arg for k in node.keywords}
        patterns = [book[k] for k in (key, f"{key}.one", f"{key}.other") if k in book]
        wanted = set().union(*(fields(p) for p in patterns)) if patterns else set()
        if wanted - given:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {key} lacks {sorted(wanted - given)}")
    return found


@pytest.mark.parametrize("path", EVERYWHERE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_message_gets_every_value_it_shows(path: Path) -> None:
    found = _calls_missing_values(path)
    assert not found, "messages that would show a {placeholder}:\n" + "\n".join(found)
