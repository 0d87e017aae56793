"""Domain types shared by every provider: one request shape in, one result shape out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from bot.i18n import Words
from bot.imaging.codec import IMAGE

JsonDict = dict[str, Any]
Role = Literal["user", "model"]
#: How strictly a provider filters harmful content: the server's `/settings set safety` level.
SafetyLevel = Literal["strict", "default", "relaxed"]
#: The largest seed a provider takes (Gemini's `generationConfig.seed` is an int32).
MAX_SEED = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ImageData:
    """Image bytes with their MIME type (sniffed, never trusted from a server)."""

    data: bytes
    mime: str


@dataclass(frozen=True, slots=True)
class InputImage:
    """A reference image: bytes, a public URL, or both (URL-only providers use the URL)."""

    data: bytes | None = None
    mime: str | None = None
    url: str | None = None
    name: Words = IMAGE

    def as_image(self) -> ImageData | None:
        """The bytes as ImageData, when we have them."""
        if self.data is None or self.mime is None:
            return None
        return ImageData(self.data, self.mime)


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier turn of a conversation, replayed to multi-turn providers."""

    role: Role
    text: str | None = None
    images: tuple[ImageData, ...] = ()
    #: Opaque provider state recorded with the turn (e.g. Gemini's per-part thought signatures).
    state: JsonDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Preview:
    """A model's interim "thought" image while it works, with a one-line summary of its latest thought."""

    image: ImageData
    summary: str | None = None


#: Told each interim image as it arrives (best effort: a failure never fails the job).
PreviewHook = Callable[[Preview], Awaitable[None]]


@dataclass(slots=True)
class GenerateRequest:
    """Make or edit images: a prompt, optional inputs and history, and output options."""

    prompt: str
    model: str | None = None
    images: list[InputImage] = field(default_factory=list)
    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int = 1
    history: list[Turn] = field(default_factory=list)
    #: Makes the output repeatable where the API takes a seed (the n-th image uses seed + n).
    seed: int | None = None
    #: A thinking level the model takes ("minimal", "low", "medium", "high"); None: its default.
    thinking: str | None = None
    safety: SafetyLevel = "default"
    #: Ground the image in Google Search (`tools: [{googleSearch: ...}]`), on models that have it.
    search: bool = False
    #: Shows the interim thought images of a thinking model while it works (Gemini streams the call
    #: then); None: no previews. Other wire formats ignore it.
    on_preview: PreviewHook | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class UpscaleRequest:
    """Enlarge one image by a factor of 2 or 4."""

    image: InputImage
    factor: int = 2
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Sources:
    """What a search-grounded result drew on: the searches run and the pages found, as (title, link)."""

    queries: tuple[str, ...] = ()
    pages: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        """Whether there is anything to show."""
        return bool(self.queries or self.pages)

    def merged(self, other: Sources) -> Sources:
        """Both, each query and page once, in order (the images of one job each searched)."""
        return Sources(
            tuple(dict.fromkeys((*self.queries, *other.queries))),
            tuple(dict.fromkeys((*self.pages, *other.pages))),
        )

    def as_json(self) -> JsonDict:
        """As stored with the turn."""
        return {"queries": list(self.queries), "pages": [list(page) for page in self.pages]}

    @classmethod
    def from_json(cls, data: Any) -> Sources:
        """As read back from a turn's options (anything malformed is left out)."""
        if not isinstance(data, dict):
            return cls()
        queries = tuple(q for q in data.get("queries") or () if isinstance(q, str))
        pages = tuple(
            (p[0], p[1])
            for p in data.get("pages") or ()
            if isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, str) for x in p)
        )
        return cls(queries, pages)


@dataclass(slots=True)
class GenerateResult:
    """What a provider produced: images, the model's text, opaque state, usage and search sources."""

    images: list[ImageData]
    provider: str
    model: str
    text: str | None = None
    state: JsonDict = field(default_factory=dict)
    usage: JsonDict = field(default_factory=dict)
    #: Google Search grounding's queries and pages (shown with the result, as Google's terms require).
    sources: Sources = field(default_factory=Sources)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What a model accepts: input image count and size, ratios, resolutions, prompt length."""

    name: str
    max_input_images: int
    aspect_ratios: tuple[str, ...]
    resolutions: tuple[str, ...]
    max_count: int = 4
    max_prompt_chars: int = 32_000
    max_input_bytes: int = 7 * 1024 * 1024
    max_input_side: int = 4096
    input_mimes: frozenset[str] = frozenset({"image/png", "image/jpeg", "image/webp"})
    multi_turn: bool = False
    needs_urls: bool = False
    #: Google Search grounding (`tools: [{googleSearch: {}}]`); off unless the model is known to have it.
    grounding: bool = False
    #: The `thinkingConfig.thinkingLevel` values the model takes, lower case (empty: none).
    thinking_levels: tuple[str, ...] = ()

    @property
    def default_resolution(self) -> str:
        """1K when offered, else the smallest size the model has."""
        return "1K" if "1K" in self.resolutions else self.resolutions[0]


class ImageProvider(Protocol):
    """An interface to one wire format, bound to one configured provider entry."""

    name: str
    kind: ClassVar[str]

    @property
    def models(self) -> tuple[str, ...]:
        """Model ids this provider serves, the default first."""
        ...

    @property
    def can_upscale(self) -> bool:
        """Whether upscale() is supported."""
        ...

    def spec(self, model: str | None) -> ModelSpec:
        """Limits of a model (the default model when None)."""
        ...

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Make or edit images."""
        ...

    async def upscale(self, request: UpscaleRequest) -> GenerateResult:
        """Enlarge an image."""
        ...

    async def check(self) -> str:
        """Probe the provider cheaply; return a one-line status or raise ProviderError."""
        ...
