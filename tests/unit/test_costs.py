"""The cost model: what each rule adds to a job's price, in cents, rounded up, and how /settings shows it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.billing.costs import CostRules, credits, to_cents

FLASH, PRO, FLASH_31 = (
    "gemini-2.5-flash-image",
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image-preview",
)


@pytest.fixture
def rules() -> CostRules:
    """The documented defaults."""
    return CostRules()


@pytest.mark.parametrize(
    ("model", "cents"),
    [(FLASH, 100), (PRO, 350), (FLASH_31, 175), ("nano-banana-hd", 350), ("nano_banana_2", 175)],
)
def test_each_model_has_its_base_price(rules: CostRules, model: str, cents: int) -> None:
    assert rules.generation(model, "1K", 1) == cents


def test_unknown_and_unnamed_models_cost_the_default(rules: CostRules) -> None:
    assert rules.generation("some-new-model", "1K", 1) == 100
    assert rules.generation(None, None, 1) == 100
    assert CostRules(default_model=2.5).generation("some-new-model", "1K", 1) == 250
    assert CostRules(default_model=2.5).generation(FLASH, "1K", 1) == 100  # a known model keeps its own


@pytest.mark.parametrize(
    ("model", "resolution", "cents"),
    [
        (PRO, "0.5K", 263),  # 3.5 × 0.75 = 2.625 credits, rounded up
        (PRO, "1K", 350),
        (PRO, "2K", 525),
        (PRO, "4K", 700),
        (FLASH_31, "0.5K", 132),  # 1.75 × 0.75 = 1.3125
        (PRO, None, 350),  # no resolution asked: priced as 1K
        (PRO, "8K", 350),  # a resolution the rules do not list: no multiplier
    ],
)
def test_resolution_multiplies_the_model_price(
    rules: CostRules, model: str, resolution: str | None, cents: int
) -> None:
    assert rules.generation(model, resolution, 1) == cents


def test_count_multiplies_the_image_price(rules: CostRules) -> None:
    assert rules.generation(FLASH, "1K", 4) == 400
    assert rules.generation(PRO, "2K", 3) == 3 * 525


def test_references_and_replayed_turns_are_added_once_per_job(rules: CostRules) -> None:
    assert rules.generation(FLASH, "1K", 1, references=3) == 130
    assert rules.generation(FLASH, "1K", 2, references=3) == 230  # per job, not per image
    assert rules.generation(FLASH, "1K", 1, history_turns=4) == 140
    assert rules.generation(PRO, "4K", 1, references=2, history_turns=3) == 700 + 20 + 30
    custom = CostRules(reference_image=0.5, refine_turn=0.25)
    assert custom.generation(FLASH, "1K", 1, references=2, history_turns=2) == 100 + 100 + 50


@pytest.mark.parametrize(("factor", "cents"), [(2, 50), (3, 50), (4, 100), (8, 100)])
def test_provider_upscale_is_priced_by_factor(rules: CostRules, factor: int, cents: int) -> None:
    assert rules.upscale(factor, local=False) == cents


@pytest.mark.parametrize("factor", [2, 4])
def test_built_in_upscale_has_one_price(rules: CostRules, factor: int) -> None:
    assert rules.upscale(factor, local=True) == 25
    assert CostRules(local_upscale=0).upscale(factor, local=True) == 0


@pytest.mark.parametrize(
    ("credit", "cents"),
    [(1.0, 100), (0.1 * 3, 30), (1.3000000000000003, 130), (0.001, 1), (1.234, 124), (0.0, 0), (2.625, 263)],
)
def test_to_cents_rounds_up_but_ignores_float_noise(credit: float, cents: int) -> None:
    assert to_cents(credit) == cents


@pytest.mark.parametrize(("cents", "text"), [(None, "∞"), (0, "0"), (100, "1"), (150, "1.5"), (263, "2.63")])
def test_credits_shows_cents_as_credits(cents: int | None, text: str) -> None:
    assert credits(cents) == text


def test_describe_lists_every_rule_models_sorted() -> None:
    rules = CostRules(models={"zeta": 2.5, "alpha": 1}, resolution={"1K": 1, "2K": 1.5})
    assert [str(line) for line in rules.describe()] == [
        "alpha: 1",
        "zeta: 2.5",
        "other models: 1",
        "resolution: 1K ×1, 2K ×1.5",
        "per reference image: 0.1; per replayed refine turn: 0.1",
        "upscale: x2 0.5, x4 1, built-in 0.25",
    ]


def test_describe_shows_the_defaults(rules: CostRules) -> None:
    lines = [str(line) for line in rules.describe()]
    assert f"{PRO}: 3.5" in lines
    assert "resolution: 0.5K ×0.75, 1K ×1, 2K ×1.5, 4K ×2" in lines
    assert len(lines) == len(rules.models) + 4


@pytest.mark.parametrize("bad", [{"refine_turns": 1}, {"reference_image": -0.1}, {"default_model": -1}])
def test_unknown_or_negative_rules_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        CostRules.model_validate(bad)
