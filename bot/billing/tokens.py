"""Pricing by tokens ([costs] mode = "tokens"): a job's estimate from what its model is known to spend,
and its real cost from the token counts the provider reported (Gemini's `usageMetadata`).

Prices are credits per million tokens. The defaults are Google's Gemini API list prices (the pricing
page, paid tier) at 1 credit = $0.04, so a credit stays "one 1K image on 2.5 Flash Image":
* 2.5 Flash Image: $0.30/M input (text and image), $30/M output (an image is 1290 tokens, $0.039);
* 3 Pro Image: $2/M input, $120/M image output, $12/M text and thinking output;
* 3.1 Flash Image: $60/M image output; input and text/thinking output are listed at $0.25/M and
  $1.50/M on the API pricing page but at twice that ($0.50/M, $3/M) in AI Studio: the higher is taken.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel, Field

from bot.i18n import Text

PER_MILLION: Final = 1_000_000
#: Prompt characters per token in the estimate (English averages about four).
CHARS_PER_TOKEN: Final = 4


class TokenPrice(BaseModel):
    """One model's token prices, in credits per million tokens."""

    model_config = {"extra": "forbid"}

    #: Prompt tokens (`promptTokenCount`: text, reference and history images).
    input: float = Field(ge=0)
    #: Output tokens (`candidatesTokenCount`: the images, and the text beside them).
    output: float = Field(ge=0)
    #: Thinking tokens (`thoughtsTokenCount`, billed as output) and text output where the provider
    #: tells text from image tokens; None: the output price.
    thinking: float | None = Field(default=None, ge=0)

    @property
    def thinking_price(self) -> float:
        """Credits per million thinking (and text output) tokens."""
        return self.output if self.thinking is None else self.thinking

    def describe(self) -> Text:
        """Short, for /settings: "in 50 · out 3000 · thinking 300"."""
        prices = {"input": f"{self.input:g}", "output": f"{self.output:g}"}
        if self.thinking is None:
            return Text("rules.tokens.price", **prices)
        return Text("rules.tokens.price_thinking", thinking=f"{self.thinking:g}", **prices)


_FLASH_25: dict[str, float] = {"input": 7.5, "output": 750}
_PRO_3: dict[str, float] = {"input": 50, "output": 3000, "thinking": 300}
_FLASH_31: dict[str, float] = {"input": 12.5, "output": 1500, "thinking": 75}

#: The token prices shipped ([costs.tokens."<model>"] replaces this table).
DEFAULT_TOKEN_PRICES: Final[dict[str, dict[str, float]]] = {
    "gemini-2.5-flash-image": _FLASH_25,
    "gemini-2.5-flash-image-preview": _FLASH_25,
    "gemini-3-pro-image-preview": _PRO_3,
    "gemini-3-pro-image": _PRO_3,
    "nano-banana-pro-preview": _PRO_3,
    "gemini-3.1-flash-image-preview": _FLASH_31,
    "gemini-3.1-flash-image": _FLASH_31,
}


def default_token_prices() -> dict[str, TokenPrice]:
    """A fresh copy of the shipped token prices."""
    return {model: TokenPrice.model_validate(price) for model, price in DEFAULT_TOKEN_PRICES.items()}


@dataclass(frozen=True, slots=True)
class TokenProfile:
    """What one request to a model is expected to spend, for the estimate (each figure on the high
    side, so that the reported cost rarely exceeds what was reserved)."""

    #: Tokens per reference or history image.
    input_image: int
    #: Output tokens per image by resolution; `largest` for a size not listed.
    output_image: Mapping[str, int] = field(default_factory=dict)
    largest: int = 2520
    #: Thinking tokens allowed per image (the model's thoughts are billed as output).
    thinking: int = 2000
    #: Text tokens allowed per image beside it (counted in `candidatesTokenCount`).
    text: int = 300

    def output_tokens(self, resolution: str | None) -> int:
        """Output tokens of one image at this resolution."""
        return self.output_image.get(resolution or "1K", self.largest)


# Where the figures come from. 2.5 Flash Image: 1290 output tokens per image at every ratio, 258 per
# input image (Google's image-generation guide). 3 Pro Image: 1120 output tokens for 1K and 2K, 2000
# for 4K (Vertex AI's model card). 3.1 Flash Image: 747 (512 px), 1120 (1K), 1680 (2K), 2520 (4K)
# (Vertex AI's model card). Input images on Gemini 3: the Pro Image card says 560 tokens, Gemini 3's
# default media resolution for images is "high", 1120 tokens: the larger is taken. Thinking: about
# 200-300 tokens per image seen in real answers; 2000 are allowed.
_FLASH_25_PROFILE = TokenProfile(258, {"1K": 1290}, largest=1290, thinking=0)
_PRO_3_PROFILE = TokenProfile(1120, {"1K": 1120, "2K": 1120, "4K": 2000}, largest=2000)
_FLASH_31_PROFILE = TokenProfile(1120, {"0.5K": 747, "1K": 1120, "2K": 1680, "4K": 2520})
#: A model with token prices but unknown figures: the largest of the known ones.
CONSERVATIVE_PROFILE: Final = TokenProfile(1120)

PROFILES: Final[dict[str, TokenProfile]] = {
    "gemini-2.5-flash-image": _FLASH_25_PROFILE,
    "gemini-2.5-flash-image-preview": _FLASH_25_PROFILE,
    "gemini-3-pro-image-preview": _PRO_3_PROFILE,
    "gemini-3-pro-image": _PRO_3_PROFILE,
    "nano-banana-pro-preview": _PRO_3_PROFILE,
    "gemini-3.1-flash-image-preview": _FLASH_31_PROFILE,
    "gemini-3.1-flash-image": _FLASH_31_PROFILE,
}


def profile_of(model: str | None) -> TokenProfile:
    """The model's figures, else the conservative ones."""
    return PROFILES.get(model or "", CONSERVATIVE_PROFILE)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """The billed token counts of a job (all its requests added up)."""

    prompt: int = 0
    output: int = 0
    thinking: int = 0
    #: Of `output`, the image tokens, when the provider broke them down by modality.
    image: int | None = None

    @classmethod
    def from_usage(cls, usage: Mapping[str, Any]) -> TokenUsage | None:
        """Gemini's usageMetadata (camelCase, as a result's usage holds it); None without token counts."""
        counts = {key: _count(usage.get(key)) for key in _KEYS}
        if counts["candidatesTokenCount"] is None:  # no output counted: not a usage to price by
            return None
        if any(isinstance(usage.get(key), int) and counts[key] is None for key in _KEYS):
            return None  # a negative or absurd count: the whole block is not believed
        prompt = (counts["promptTokenCount"] or 0) + (counts["toolUsePromptTokenCount"] or 0)
        output = counts["candidatesTokenCount"] or 0
        image = _modality(usage.get("candidatesTokensDetails"), "IMAGE")
        return cls(
            prompt, output, counts["thoughtsTokenCount"] or 0, None if image is None else min(image, output)
        )


_KEYS: Final = ("promptTokenCount", "toolUsePromptTokenCount", "candidatesTokenCount", "thoughtsTokenCount")


#: More tokens than any one answer can hold: such a count is not believed (it is not priced).
MAX_COUNT: Final = 10**9


def _count(value: Any) -> int | None:
    """A token count, or None for anything that is not one (negative, not an int, or absurd)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    return None


def _modality(details: Any, modality: str) -> int | None:
    """The tokens of one modality in a `*TokensDetails` list, None when it does not say."""
    if not isinstance(details, list):
        return None
    found = [
        _count(d.get("tokenCount")) for d in details if isinstance(d, dict) and d.get("modality") == modality
    ]
    counts = [n for n in found if n is not None]
    return sum(counts) if counts else None


def reported_credits(price: TokenPrice, usage: TokenUsage) -> float:
    """What the reported tokens cost: image output at the output price; thinking, and text output
    where it is told apart, at the thinking price."""
    image = usage.output if usage.image is None else usage.image
    text = usage.output - image + usage.thinking
    return (usage.prompt * price.input + image * price.output + text * price.thinking_price) / PER_MILLION


def estimated_credits(
    price: TokenPrice, profile: TokenProfile, resolution: str | None, count: int, *, chars: int, images: int
) -> float:
    """The estimate of a job of `count` requests (one per image), each sending the prompt's `chars`
    and `images` images and getting one image, its text and its thoughts back."""
    prompt = math.ceil(chars / CHARS_PER_TOKEN) + profile.input_image * images
    output = profile.output_tokens(resolution) + profile.text
    per_call = prompt * price.input + output * price.output + profile.thinking * price.thinking_price
    return count * per_call / PER_MILLION
