"""Pricing by tokens: the estimate a job reserves, the cost of the usage Gemini reports, each counter's
share of that cost, and usage summed over a job's calls (the database side: tests/storage)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.billing.admission import Charge
from bot.billing.costs import CostRules
from bot.billing.settle import kept, settled_row
from bot.billing.tokens import TokenPrice, TokenUsage, estimated_credits, profile_of, reported_credits
from bot.providers.common import summed_usage

FLASH, PRO, FLASH_31, LITE = (
    "gemini-2.5-flash-image",
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image-preview",
    "gemini-3.1-flash-lite-image-preview",
)
#: What the fake Gemini reports for one 1K image on 3 Pro Image with an 11-character prompt.
PRO_USAGE = {"promptTokenCount": 2, "candidatesTokenCount": 1128, "thoughtsTokenCount": 215}


@pytest.fixture
def tokens() -> CostRules:
    """The shipped rules, priced by tokens."""
    return CostRules(mode="tokens")


def test_the_shipped_prices_are_googles_at_four_cents_a_credit(tokens: CostRules) -> None:
    pro = tokens.token_price(PRO)
    assert pro is not None and (pro.input, pro.output, pro.thinking_price) == (50, 3000, 300)
    flash = tokens.token_price(FLASH)
    assert flash is not None and (flash.input, flash.output, flash.thinking_price) == (7.5, 750, 750)
    # A 1K image on 2.5 Flash Image (1290 tokens) costs about one credit, as in the image rules.
    assert reported_credits(flash, TokenUsage(output=1290)) == pytest.approx(0.9675)


def test_the_estimate_adds_prompt_images_output_and_thinking_per_image(tokens: CostRules) -> None:
    # 3 Pro, 1K: ceil(11 / 4) = 3 prompt tokens; 1120 image + 300 text tokens out; 2000 thinking:
    # (3 × 50 + 1420 × 3000 + 2000 × 300) / 1e6 = 4.86015 credits per image.
    assert tokens.token_estimate(PRO, "1K", 2, chars=11, images=0) == 973  # 9.7203, rounded up
    # Each reference or history image adds its input tokens (258 on 2.5 Flash, 1120 on Gemini 3):
    # (3 × 258 × 7.5 + 1590 × 750) / 1e6 = 1.198305 credits; no thinking on 2.5 Flash.
    assert tokens.token_estimate(FLASH, "1K", 1, chars=0, images=3) == 120
    assert tokens.token_estimate(PRO, "4K", 1, chars=0, images=2) == 762  # 0.112 + 6.9 + 0.6


def test_the_output_per_image_follows_the_models_size() -> None:
    assert [profile_of(FLASH_31).output_tokens(size) for size in ("0.5K", "1K", "2K", "4K")] == [
        747,
        1120,
        1680,
        2520,
    ]
    assert profile_of(FLASH).output_tokens(None) == 1290
    assert profile_of("a-model-we-do-not-know").output_tokens("1K") == 2520  # the largest known


def test_the_estimate_stays_above_what_the_fake_reports(tokens: CostRules) -> None:
    reported = tokens.reported((PRO,), PRO_USAGE)
    assert reported == 345  # 2 × 50 + 1128 × 3000 + 215 × 300 per million = 3.4485 credits
    assert reported < tokens.token_estimate(PRO, "1K", 1, chars=11, images=0)


def test_text_output_told_apart_is_priced_as_thinking(tokens: CostRules) -> None:
    usage = {**PRO_USAGE, "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}]}
    assert tokens.reported((PRO,), usage) == 343  # 8 text tokens at 300 instead of 3000


def test_the_first_priced_model_prices_the_usage(tokens: CostRules) -> None:
    assert tokens.reported(("relay-model", PRO), PRO_USAGE) == 345
    assert tokens.reported((FLASH, PRO), PRO_USAGE) == tokens.reported((FLASH,), PRO_USAGE)


@pytest.mark.parametrize(
    ("rules", "model", "usage"),
    [
        (CostRules(), PRO, PRO_USAGE),  # images mode: the reservation is charged
        (CostRules(mode="tokens"), LITE, PRO_USAGE),  # no token prices: priced by image
        (CostRules(mode="tokens"), PRO, {}),  # nothing reported
        (CostRules(mode="tokens"), PRO, {"serviceTier": "standard", "promptTokenCount": "many"}),
        # Only the prompt counted (an early stream chunk's shape): not a near-free image.
        (CostRules(mode="tokens"), PRO, {"promptTokenCount": 12, "totalTokenCount": 1347}),
        # Counts no answer can hold are not believed (and never overflow the arithmetic).
        (CostRules(mode="tokens"), PRO, {"candidatesTokenCount": 10**400}),
        (CostRules(mode="tokens"), PRO, {**PRO_USAGE, "thoughtsTokenCount": 10**12}),
    ],
)
def test_no_reported_cost_without_token_prices_or_counts(
    rules: CostRules, model: str, usage: dict[str, object]
) -> None:
    assert rules.reported((model,), usage) is None


def test_a_model_without_token_prices_keeps_the_image_price(tokens: CostRules) -> None:
    assert tokens.token_price(LITE) is None
    assert CostRules().token_price(PRO) is None  # images mode never prices by tokens
    with pytest.raises(ValueError, match="no token prices"):
        tokens.token_estimate(LITE, "1K", 1, chars=1, images=0)


def test_describe_shows_token_prices_only_in_tokens_mode(tokens: CostRules) -> None:
    assert not any("per million" in str(line) for line in CostRules().describe())
    lines = [str(line) for line in tokens.describe()]
    assert lines[0].startswith("by tokens (credits per million")
    assert f"{PRO}: in 50 · out 3000 · thinking 300" in lines
    assert f"{FLASH}: in 7.5 · out 750" in lines
    assert "nano-banana: 1" in lines and f"{PRO}: 3.5" not in lines  # image prices of the others
    assert len("\n".join(lines)) <= 1024  # one embed field


def test_token_prices_are_checked() -> None:
    rules = CostRules.model_validate({"mode": "tokens", "tokens": {"m": {"input": 1, "output": 2}}})
    assert rules.tokens == {"m": TokenPrice(input=1, output=2)}
    for bad in (
        {"mode": "credits"},
        {"tokens": {"m": {"input": -1, "output": 2}}},
        {"tokens": {"m": {"in": 1}}},
    ):
        with pytest.raises(ValidationError):
            CostRules.model_validate(bad)


def test_estimated_credits_multiply_by_count() -> None:
    price = TokenPrice(input=1_000_000, output=0)
    assert estimated_credits(price, profile_of(FLASH), "1K", 3, chars=8, images=1) == 3 * (2 + 258)


def test_a_counter_keeps_its_share_of_the_real_cost() -> None:
    assert kept(400, 400, 300) == 300
    assert kept(200, 400, 301) == 151  # the operator's unscaled share, rounded up
    assert kept(400, 400, None) == 400 and kept(400, 400, 500) == 400 and kept(0, 0, 5) == 0
    assert settled_row(400, 300, "ok") == {"cost_cents": 300, "outcome": "ok (reserved 4)"}
    assert settled_row(400, 400, "ok") is None and settled_row(400, None, "ok") is None


def test_a_charge_scales_the_reported_cost_and_never_exceeds_the_reservation() -> None:
    charge = Charge(1, 700, multiplier=2)
    assert charge.with_reported(None) is charge and charge.spent_cents == 700
    assert charge.with_reported(300).spent_cents == 600
    assert charge.with_reported(351).reported_cents == 702
    assert charge.with_reported(351).spent_cents == 700


def test_usage_of_several_calls_adds_up() -> None:
    one = {
        "promptTokenCount": 4,
        "candidatesTokenCount": 1298,
        "serviceTier": "standard",
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
    }
    two = {**one, "thoughtsTokenCount": 10, "serviceTier": "flex"}
    assert summed_usage([one, two]) == {
        "promptTokenCount": 8,
        "candidatesTokenCount": 2596,
        "serviceTier": "standard",
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 2580}],
        "thoughtsTokenCount": 10,
    }
    assert summed_usage([{}, {}]) == {}
