"""The cost model: credits per job from model, resolution, count, references and kind.

One credit is one 1K image on the cheapest model (Gemini 2.5 Flash Image, about $0.04).
Credits are kept as integer hundredths ("cents") so that quota arithmetic is exact. With
mode = "tokens", a model with token prices is priced by tokens instead (bot/billing/tokens.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.billing.tokens import (
    TokenPrice,
    TokenUsage,
    default_token_prices,
    estimated_credits,
    profile_of,
    reported_credits,
)
from bot.i18n import Text, Words

CENTS = 100

#: Relative price of one 1K image per model (Google's list prices, Flash = 1).
DEFAULT_MODEL_COSTS: dict[str, float] = {
    "gemini-2.5-flash-image": 1.0,
    "gemini-2.5-flash-image-preview": 1.0,
    "gemini-3-pro-image-preview": 3.5,
    "gemini-3-pro-image": 3.5,
    "nano-banana-pro-preview": 3.5,
    "gemini-3.1-flash-image-preview": 1.75,
    "gemini-3.1-flash-image": 1.75,
    "nano-banana": 1.0,
    "nano-banana-2": 1.75,
    "nano-banana-hd": 3.5,
    "nano-banana-pro": 3.5,
    "nano_banana_2": 1.75,
}
DEFAULT_RESOLUTION = {"0.5K": 0.75, "1K": 1.0, "2K": 1.5, "4K": 2.0}


class CostRules(BaseModel):
    """[costs] in nanobot.toml; every field has a documented default."""

    model_config = {"extra": "forbid"}

    models: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MODEL_COSTS))
    default_model: float = Field(default=1.0, ge=0)
    resolution: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_RESOLUTION))
    reference_image: float = Field(default=0.1, ge=0)
    refine_turn: float = Field(default=0.1, ge=0)
    upscale_x2: float = Field(default=0.5, ge=0)
    upscale_x4: float = Field(default=1.0, ge=0)
    local_upscale: float = Field(default=0.25, ge=0)
    #: "images": a job costs the rules above; "tokens": a model with token prices reserves its token
    #: estimate and is charged what the provider reports it used (never more than reserved).
    mode: Literal["images", "tokens"] = "images"
    #: Credits per million tokens by model (used in "tokens" mode; a model missing here is priced
    #: by the image rules).
    tokens: dict[str, TokenPrice] = Field(default_factory=default_token_prices)

    def model_cost(self, model: str | None) -> float:
        """Base credits of one 1K image on a model."""
        return self.models.get(model or "", self.default_model)

    def generation(
        self,
        model: str | None,
        resolution: str | None,
        count: int,
        references: int = 0,
        history_turns: int = 0,
    ) -> int:
        """Cents for making `count` images, plus references and (for refines) replayed turns."""
        per_image = self.model_cost(model) * self.resolution.get(resolution or "1K", 1.0)
        extra = self.reference_image * references + self.refine_turn * history_turns
        return to_cents(per_image * count + extra)

    def token_price(self, model: str | None) -> TokenPrice | None:
        """The model's token prices when jobs are priced by tokens (None: priced by the image rules)."""
        return self.tokens.get(model or "") if self.mode == "tokens" else None

    def token_estimate(
        self, model: str | None, resolution: str | None, count: int, *, chars: int, images: int
    ) -> int:
        """Cents reserved for a job priced by tokens: its prompt and history text (`chars`), its
        reference and history `images`, and what the model makes per image, × count."""
        price = self.token_price(model)
        if price is None:
            raise ValueError(f"{model} has no token prices")
        return to_cents(
            estimated_credits(price, profile_of(model), resolution, count, chars=chars, images=images)
        )

    def reported(self, models: tuple[str | None, ...], usage: Mapping[str, Any]) -> int | None:
        """Cents the reported usage costs at the first of `models` with token prices; None when the
        job is not priced by tokens or the provider reported no token counts."""
        price = next((p for m in models if (p := self.token_price(m)) is not None), None)
        counted = TokenUsage.from_usage(usage) if price is not None else None
        if price is None or counted is None:
            return None
        return to_cents(reported_credits(price, counted))

    def upscale(self, factor: int, *, local: bool) -> int:
        """Cents for an upscale (the offline upscaler has its own, usually free, price)."""
        if local:
            return to_cents(self.local_upscale)
        return to_cents(self.upscale_x4 if factor >= 4 else self.upscale_x2)

    def describe(self) -> list[Words]:
        """The rules as short lines for /settings: catalogue messages, model names as they are."""
        lines: list[Words] = [f"{name}: {cost:g}" for name, cost in sorted(self.models.items())]
        res = ", ".join(f"{k} ×{v:g}" for k, v in self.resolution.items())
        if self.mode == "tokens":
            priced = [
                Text("rules.costs.priced", model=name, price=price.describe())
                for name, price in sorted(self.tokens.items())
            ]
            by_image = [
                f"{name}: {cost:g}" for name, cost in sorted(self.models.items()) if name not in self.tokens
            ]
            lines = [Text("rules.costs.by_tokens"), *priced, Text("rules.costs.by_image"), *by_image]
        return [
            *lines,
            Text("rules.costs.other", cost=float(self.default_model)),
            Text("rules.costs.resolution", factors=res),
            Text("rules.costs.extras", reference=float(self.reference_image), turn=float(self.refine_turn)),
            Text(
                "rules.costs.upscale",
                x2=float(self.upscale_x2),
                x4=float(self.upscale_x4),
                local=float(self.local_upscale),
            ),
        ]


def to_cents(credits: float) -> int:
    """Credits as whole hundredths, rounded up so a job never costs less than its rules say."""
    cents = credits * CENTS
    whole = int(cents)
    return whole + (1 if cents - whole > 1e-9 else 0)


def scaled(cents: int, multiplier: float) -> int:
    """A cost on a server with a cost multiplier (/settings set cost_multiplier), rounded up."""
    return to_cents(cents / CENTS * multiplier)


def credits(cents: int | None) -> str:
    """Cents shown as credits ("∞" for no limit)."""
    if cents is None:
        return "∞"
    return format((Decimal(cents) / CENTS).normalize(), "f")  # exact: 12345.67, 1000000 (never 1e+06)
