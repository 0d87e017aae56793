"""The shape of the code, as rules a test keeps: where discord may be imported, who imports bot/app.py,
no import circles (TYPE_CHECKING imports included), and small modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Only these may import discord.py: the bot's lifecycle, the Discord side of the core, the commands.
DISCORD_ALLOWED = ("bot/app.py", "bot/ui/", "cogs/")
#: The entry points: the only modules that may import bot/app.py.
ENTRY_POINTS = ("bot/__main__.py", "bot/cli.py")
#: Lines a module may have before it should be split.
MAX_LINES = 420


def sources() -> list[Path]:
    """Every module of the bot and its commands (migrations are Alembic's, left out)."""
    found = [*ROOT.glob("bot/**/*.py"), *ROOT.glob("cogs/**/*.py")]
    return sorted(p for p in found if "migrations" not in p.parts)


def module_of(path: Path) -> str:
    """The dotted module name of a source file."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str) -> Iterator[str]:
    """Every module a source imports, wherever the import is (TYPE_CHECKING blocks and functions too)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")[: -node.level] if module else []
                base = ".".join([*package, base] if base else package)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def discord_importers(files: dict[str, str]) -> list[str]:
    """The files (by relative path) that import discord but may not."""
    bad = []
    for rel, source in files.items():
        if rel.startswith(DISCORD_ALLOWED):
            continue
        if any(name == "discord" or name.startswith("discord.") for name in imports(source, "")):
            bad.append(rel)
    return bad


def graph() -> dict[str, set[str]]:
    """Module → the project modules it imports."""
    modules = {module_of(p): p for p in sources()}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in imports(path.read_text(), name) if t in modules and t != name}
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_only_the_app_the_ui_and_the_cogs_import_discord() -> None:
    files = {str(p.relative_to(ROOT)): p.read_text() for p in sources()}
    assert discord_importers(files) == []


@pytest.mark.parametrize(
    "source",
    ["import discord\n", "from discord.ext import commands\n", "if TYPE_CHECKING:\n    import discord.abc\n"],
)
def test_the_discord_rule_catches_a_core_module_importing_discord(source: str) -> None:
    assert discord_importers({"bot/jobs/service.py": source}) == ["bot/jobs/service.py"]
    assert discord_importers({"bot/ui/delivery.py": source, "cogs/generate.py": source}) == []


def test_only_the_entry_points_import_the_app() -> None:
    edges = graph()
    importers = sorted(name for name, targets in edges.items() if "bot.app" in targets)
    assert importers and set(importers) <= {module_of(ROOT / p) for p in ENTRY_POINTS}, importers


def test_no_module_imports_itself_in_a_circle() -> None:
    assert circles(graph()) == []


def test_the_circle_finder_sees_a_circle_through_type_checking() -> None:
    a = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.b import B\n"
    edges = {"bot.a": set(imports(a, "bot.a")) & {"bot.b"}, "bot.b": {"bot.a"}}
    assert circles(edges) == [["bot.a", "bot.b"]]


def test_modules_stay_small_and_bot_has_few_top_level_modules() -> None:
    long = {
        str(p.relative_to(ROOT)): n for p in sources() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
    top = sorted(p.name for p in (ROOT / "bot").glob("*.py"))
    assert len(top) <= 10, top
