"""Discord platform limits and the error bodies Discord answers with when they are broken."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.discord.payloads import FLAG_COMPONENTS_V2, JSON, walk_components

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FILES = 10
MAX_REQUEST_BYTES = 25 * 1024 * 1024
MAX_CUSTOM_ID = 100
MAX_CHOICES = 25
EMBED_TOTAL = 6000
EMBED_FIELD_LIMITS = {"title": 256, "description": 4096}
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
#: AvailableLocalesEnum of the official OpenAPI spec: the keys of name/description localizations.
LOCALES = frozenset(
    [
        *("ar", "bg", "cs", "da", "de", "el", "en-GB", "en-US", "es-419", "es-ES", "fi", "fr", "he", "hi"),
        *("hr", "hu", "id", "it", "ja", "ko", "lt", "nl", "no", "pl", "pt-BR", "ro", "ru", "sv-SE", "th"),
        *("tr", "uk", "vi", "zh-CN", "zh-TW"),
    ]
)

FormErrors = list[tuple[str, str]]


class DiscordError(Exception):
    """An error response exactly as Discord sends it; `violation` marks a bot-side rule breach."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: JSON | None = None,
        violation: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.violation = violation

    def body(self) -> JSON:
        """Return the JSON error body."""
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def not_found(code: int, message: str, violation: str | None = None) -> DiscordError:
    """Return a 404 error."""
    return DiscordError(404, code, message, violation=violation)


def unknown_message() -> DiscordError:
    """Return Discord's 404 Unknown Message."""
    return not_found(10008, "Unknown Message")


def invalid_form(errors: FormErrors, what: str) -> DiscordError:
    """Build a 400 50035 Invalid Form Body with nested `_errors` for each (dotted path, text)."""
    tree: JSON = {}
    for path, text in errors:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_INVALID", "message": text})
    summary = "; ".join(f"{p}: {t}" for p, t in errors)
    return DiscordError(400, 50035, "Invalid Form Body", errors=tree, violation=f"{what}: {summary}")


def too_large(what: str, detail: str) -> DiscordError:
    """Return 413 40005 Request entity too large."""
    return DiscordError(413, 40005, "Request entity too large", violation=f"{what}: {detail}")


def _max_len(errors: FormErrors, path: str, value: Any, limit: int) -> None:
    """Record an error when a string is longer than `limit`."""
    if isinstance(value, str) and len(value) > limit:
        errors.append((path, f"Must be {limit} or fewer in length (got {len(value)})."))


def _embed_chars(embed: JSON) -> int:
    """Count the characters Discord sums toward the 6000 limit."""
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    for field in embed.get("fields") or []:
        total += len(field.get("name") or "") + len(field.get("value") or "")
    return total


def check_embeds(embeds: list[JSON], prefix: str) -> FormErrors:
    """Check Discord's embed limits."""
    errors: FormErrors = []
    if len(embeds) > MAX_EMBEDS:
        errors.append((f"{prefix}embeds", f"Must be {MAX_EMBEDS} or fewer in length."))
    for i, embed in enumerate(embeds):
        path = f"{prefix}embeds.{i}"
        for key, limit in EMBED_FIELD_LIMITS.items():
            _max_len(errors, f"{path}.{key}", embed.get(key), limit)
        _max_len(errors, f"{path}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
        _max_len(errors, f"{path}.author.name", (embed.get("author") or {}).get("name"), 256)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors.append((f"{path}.fields", "Must be 25 or fewer in length."))
        for j, field in enumerate(fields):
            _max_len(errors, f"{path}.fields.{j}.name", field.get("name"), 256)
            _max_len(errors, f"{path}.fields.{j}.value", field.get("value"), 1024)
    if sum(_embed_chars(e) for e in embeds) > EMBED_TOTAL:
        errors.append((f"{prefix}embeds", f"Embed size exceeds maximum size of {EMBED_TOTAL}"))
    return errors


def check_components(components: list[JSON], flags: int, prefix: str) -> FormErrors:
    """Check custom_id length/uniqueness and the row/item counts."""
    errors: FormErrors = []
    seen: set[str] = set()
    for comp in walk_components(components):
        custom_id = comp.get("custom_id")
        if custom_id is None:
            continue
        if not custom_id or len(custom_id) > MAX_CUSTOM_ID:
            errors.append((f"{prefix}components", f"custom_id must be 1-100 chars: {custom_id!r}"))
        if custom_id in seen:
            errors.append((f"{prefix}components", f"Duplicate custom_id {custom_id!r}"))
        seen.add(custom_id)
        _max_len(errors, f"{prefix}components.label", comp.get("label"), 80)
    if flags & FLAG_COMPONENTS_V2:
        if sum(1 for _ in walk_components(components)) > 40:
            errors.append((f"{prefix}components", "Must be 40 or fewer in total."))
        return errors
    if len(components) > 5:
        errors.append((f"{prefix}components", "Must be 5 or fewer in length."))
    for i, row in enumerate(components):
        if len(row.get("components") or []) > 5:
            errors.append((f"{prefix}components.{i}.components", "Must be 5 or fewer in length."))
    return errors


def check_message(payload: JSON, prefix: str = "") -> FormErrors:
    """Check a message create/edit body against Discord's limits."""
    errors: FormErrors = []
    _max_len(errors, f"{prefix}content", payload.get("content"), MAX_CONTENT)
    flags = int(payload.get("flags") or 0)
    errors += check_embeds(payload.get("embeds") or [], prefix)
    errors += check_components(payload.get("components") or [], flags, prefix)
    if len(payload.get("attachments") or []) > MAX_FILES:
        errors.append((f"{prefix}attachments", f"Must be {MAX_FILES} or fewer in length."))
    if flags & FLAG_COMPONENTS_V2 and (payload.get("content") or payload.get("embeds")):
        errors.append((f"{prefix}flags", "content and embeds cannot be used with IS_COMPONENTS_V2"))
    return errors


def check_files(files: list[tuple[str, str, bytes]], limit: int, what: str) -> None:
    """Raise for more than 10 files or any single file over the upload limit."""
    if len(files) > MAX_FILES:
        raise invalid_form([("files", f"Must be {MAX_FILES} or fewer in length (got {len(files)}).")], what)
    for _, filename, data in files:
        if len(data) > limit:
            raise too_large(what, f"file {filename!r} is {len(data)} bytes, limit is {limit}")


def check_choices(choices: list[JSON]) -> FormErrors:
    """Check autocomplete choices."""
    errors: FormErrors = []
    if len(choices) > MAX_CHOICES:
        errors.append(("data.choices", f"Must be {MAX_CHOICES} or fewer in length."))
    for i, choice in enumerate(choices):
        name = choice.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            errors.append((f"data.choices.{i}.name", "Must be between 1 and 100 in length."))
        _max_len(errors, f"data.choices.{i}.value", choice.get("value"), 100)
    return errors


def check_modal(data: JSON) -> FormErrors:
    """Check a modal callback body."""
    errors: FormErrors = []
    custom_id = data.get("custom_id") or ""
    if not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        errors.append(("data.custom_id", "Must be between 1 and 100 in length."))
    title = data.get("title") or ""
    if not 1 <= len(title) <= 45:
        errors.append(("data.title", "Must be between 1 and 45 in length."))
    if not 1 <= len(data.get("components") or []) <= 5:
        errors.append(("data.components", "Must be between 1 and 5 in length."))
    for i, comp in enumerate(data.get("components") or []):
        errors += _check_modal_row(comp, f"data.components.{i}")
    return errors


def _check_modal_row(comp: JSON, path: str) -> FormErrors:
    """A top-level modal component: a file upload only inside a label (per the official spec)."""
    if comp.get("type") == 19:
        return [(f"{path}.type", "A file upload must be inside a label.")]
    if comp.get("type") != 18:
        return []
    errors: FormErrors = []
    if not 1 <= len(comp.get("label") or "") <= 45:
        errors.append((f"{path}.label", "Must be between 1 and 45 in length."))
    if len(comp.get("description") or "") > 100:
        errors.append((f"{path}.description", "Must be 100 or fewer in length."))
    inner = comp.get("component") or {}
    if inner.get("type") == 19:
        errors += _check_file_upload(inner, f"{path}.component")
    return errors


def _check_file_upload(comp: JSON, path: str) -> FormErrors:
    """FileUploadComponentForModalRequest: custom_id 1-100, min_values 0-10, max_values 1-10."""
    errors: FormErrors = []
    if not 1 <= len(comp.get("custom_id") or "") <= MAX_CUSTOM_ID:
        errors.append((f"{path}.custom_id", "Must be between 1 and 100 in length."))
    low, high = comp.get("min_values"), comp.get("max_values")
    if low is not None and not 0 <= low <= 10:
        errors.append((f"{path}.min_values", "Must be between 0 and 10."))
    if high is not None and not 1 <= high <= 10:
        errors.append((f"{path}.max_values", "Must be between 1 and 10."))
    if low is not None and high is not None and low > high:
        errors.append((f"{path}.min_values", "Must be less than or equal to max_values."))
    return errors


def check_command(cmd: JSON, index: int) -> FormErrors:
    """Check one application command definition from a bulk overwrite."""
    errors: FormErrors = []
    kind = cmd.get("type") or 1
    name = cmd.get("name") or ""
    if kind == 1:
        if not COMMAND_NAME.match(name) or name != name.lower():
            errors.append((f"{index}.name", f"Invalid chat input command name {name!r}"))
        if not 1 <= len(cmd.get("description") or "") <= 100:
            errors.append((f"{index}.description", "Must be between 1 and 100 in length."))
    elif not 1 <= len(name) <= 32:
        errors.append((f"{index}.name", "Must be between 1 and 32 in length."))
    errors += _check_localizations(cmd, f"{index}", chat_input=kind == 1)
    errors += _check_options(cmd.get("options") or [], f"{index}.options")
    return errors


def _check_localizations(item: JSON, path: str, *, chat_input: bool, name_limit: int = 32) -> FormErrors:
    """name_localizations / description_localizations: known locales; names as strict as the name
    (a choice's name may have 100 characters, a command's or an option's 32)."""
    errors: FormErrors = []
    for field, longest in (("name_localizations", name_limit), ("description_localizations", 100)):
        for locale, text in (item.get(field) or {}).items():
            where = f"{path}.{field}.{locale}"
            if locale not in LOCALES:
                errors.append((where, f"Invalid locale {locale!r}"))
            elif not isinstance(text, str) or not 1 <= len(text) <= longest:
                errors.append((where, f"Must be between 1 and {longest} in length."))
            elif (
                field == "name_localizations"
                and chat_input
                and (not COMMAND_NAME.match(text) or text != text.lower())
            ):
                errors.append((where, f"Invalid chat input command name {text!r}"))
    return errors


def _check_options(options: list[JSON], path: str) -> FormErrors:
    """Check command options recursively."""
    errors: FormErrors = []
    if len(options) > 25:
        errors.append((path, "Must be 25 or fewer in length."))
    for i, opt in enumerate(options):
        if len(opt.get("choices") or []) > 25:
            errors.append((f"{path}.{i}.choices", "Must be 25 or fewer in length."))
        if opt.get("choices") and opt.get("autocomplete"):
            errors.append((f"{path}.{i}.autocomplete", "Autocomplete and choices are exclusive."))
        errors += _check_localizations(opt, f"{path}.{i}", chat_input=True)
        for j, choice in enumerate(opt.get("choices") or []):
            errors += _check_localizations(
                choice, f"{path}.{i}.choices.{j}", chat_input=False, name_limit=100
            )
        errors += _check_options(opt.get("options") or [], f"{path}.{i}.options")
    return errors


def check_command_set(commands: list[JSON]) -> FormErrors:
    """Check a full bulk-overwrite command list (names unique per type, per-type counts)."""
    errors: FormErrors = []
    for i, cmd in enumerate(commands):
        errors += check_command(cmd, i)
    keys = [((c.get("type") or 1), c.get("name")) for c in commands]
    if len(set(keys)) != len(keys):
        errors.append(("_errors", "Application command names must be unique"))
    for locale in LOCALES:
        shown = [
            ((c.get("type") or 1), (c.get("name_localizations") or {}).get(locale, c.get("name")))
            for c in commands
        ]
        if len(set(shown)) != len(shown):
            errors.append(("_errors", f"Application command names must be unique in {locale}"))
    for kind, limit in ((1, 100), (2, 15), (3, 15)):
        if sum(1 for k, _ in keys if k == kind) > limit:
            errors.append(("_errors", f"Too many commands of type {kind} (max {limit})"))
    return errors
