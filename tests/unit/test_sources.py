"""Search sources: kept with the turn, read back, and shown within one embed field, inert."""

from __future__ import annotations

from bot.providers.base import Sources
from bot.ui.embeds import FIELD_LIMIT, safe_link, sources_text


def test_sources_survive_the_turns_json_and_malformed_parts_are_left_out() -> None:
    sources = Sources(("lisbon tram",), (("wikipedia.org", "https://w.example/1"),))
    assert Sources.from_json(sources.as_json()) == sources
    broken = {"queries": ["ok", 3, None], "pages": [["t", "https://u.example"], ["only one"], "x", [1, 2]]}
    assert Sources.from_json(broken) == Sources(("ok",), (("t", "https://u.example"),))
    assert Sources.from_json(None) == Sources() and not Sources()


def test_merging_keeps_each_query_and_page_once_in_order() -> None:
    a = Sources(("q1",), (("a", "https://a.example"),))
    b = Sources(("q2", "q1"), (("b", "https://b.example"), ("a", "https://a.example")))
    assert a.merged(b) == Sources(("q1", "q2"), (("a", "https://a.example"), ("b", "https://b.example")))


def test_only_http_links_are_shown_and_brackets_are_encoded() -> None:
    assert safe_link("javascript:alert(1)") is None
    assert safe_link("ftp://files.example/x") is None
    assert safe_link("https://") is None
    assert safe_link("https://a.example/x y(1)[2]<3>") == "https://a.example/x%20y%281%29%5B2%5D%3C3%3E"


def test_long_queries_never_push_the_pages_out_and_the_field_fits() -> None:
    queries = tuple("慢" * 300 + str(n) for n in range(3))  # ~2.7 KB each once %-encoded
    pages = tuple((f"page {n}", f"https://p.example/{n}/" + "z" * 220) for n in range(6))
    shown = sources_text(Sources(queries, pages))
    assert len(shown) <= FIELD_LIMIT
    lines = shown.splitlines()
    assert all(line.startswith("• [page ") for line in lines)  # no query fitted: the pages did
    assert len(lines) == 4  # a fifth whole link would pass 1024 characters


def test_nothing_to_show_is_an_empty_field() -> None:
    assert sources_text(Sources((), (("x", "mailto:a@b.example"),))) == ""
