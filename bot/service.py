"""The one job pipeline: inputs → provider → fitting the results for upload. No Discord objects here."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from bot.config import Settings
from bot.imaging import (
    FittedImage,
    fit_for_upload_async,
    image_dims,
    nearest_ratio,
    prepare_input_async,
)
from bot.providers.base import (
    GenerateRequest,
    GenerateResult,
    InputImage,
    ModelSpec,
    UpscaleRequest,
)
from bot.providers.router import Router

log = logging.getLogger(__name__)

JobKind = Literal["imagine", "edit", "upscale", "refine", "reroll", "vary"]
AUTO = "auto"
DISCORD_FILE_LIMIT = 10 * 1024 * 1024
DISCORD_MESSAGE_LIMIT = 25 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RawInput:
    """An input image as received: bytes, a name to show, and a public URL when there is one."""

    data: bytes
    name: str = "image"
    url: str | None = None


@dataclass(slots=True)
class JobSpec:
    """Everything a job needs, independent of where it came from."""

    kind: JobKind
    prompt: str = ""
    inputs: list[RawInput] = field(default_factory=list)
    provider: str | None = None
    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int = 1
    factor: int = 2
    upload_limit: int = DISCORD_FILE_LIMIT


@dataclass(slots=True)
class JobResult:
    """What the user receives: upload-ready files and what to say about them."""

    files: list[FittedImage]
    provider: str
    model: str
    prompt: str
    resolution: str | None
    aspect_ratio: str | None
    elapsed: float
    text: str | None = None
    raw: GenerateResult | None = None

    @property
    def reencoded(self) -> bool:
        """Whether any image had to be re-encoded to fit the upload limit."""
        return any(f.reencoded for f in self.files)


class JobService:
    """Runs jobs for every entry point (slash commands, context menus, replies, buttons)."""

    def __init__(self, settings: Settings, router: Router) -> None:
        self.settings = settings
        self.router = router

    def spec_for(self, provider: str | None, model: str | None) -> ModelSpec:
        """The limits of the model the job will most likely use."""
        return self.router.candidates(provider, model)[0].spec(model)

    async def run(self, job: JobSpec) -> JobResult:
        """Run a job end to end; typed errors (InputError, ProviderError) propagate."""
        started = time.monotonic()
        if job.kind == "upscale":
            result = await self._upscale(job)
            ratio = None
        else:
            result, ratio = await self._generate(job)
        files = await fit_for_upload_async(
            [(image.data, image.mime) for image in result.images],
            per_file_limit=job.upload_limit,
            total_limit=DISCORD_MESSAGE_LIMIT,
        )
        return JobResult(
            files=files,
            provider=result.provider,
            model=result.model,
            prompt=job.prompt,
            resolution=job.resolution,
            aspect_ratio=ratio,
            elapsed=time.monotonic() - started,
            text=result.text,
            raw=result,
        )

    async def _generate(self, job: JobSpec) -> tuple[GenerateResult, str | None]:
        """Imagine / edit: prepare inputs to the model's limits, resolve "auto", call the router."""
        spec = self.spec_for(job.provider, job.model)
        images = await self.prepare(job.inputs, spec)
        ratio = job.aspect_ratio
        if ratio == AUTO:
            ratio = None
            if job.inputs:
                width, height = image_dims(job.inputs[0].data)
                ratio = nearest_ratio(width, height, spec.aspect_ratios)
        request = GenerateRequest(
            prompt=job.prompt,
            model=job.model,
            images=images,
            aspect_ratio=ratio,
            resolution=job.resolution,
            count=job.count,
        )
        return await self.router.generate(request, job.provider), ratio

    async def _upscale(self, job: JobSpec) -> GenerateResult:
        """Upscale the first input with the first capable provider, else locally."""
        spec = self.router.local.spec(None)
        [image] = await self.prepare(job.inputs[:1], spec)
        return await self.router.upscale(UpscaleRequest(image, job.factor), job.provider)

    async def prepare(self, inputs: list[RawInput], spec: ModelSpec) -> list[InputImage]:
        """Sniff, guard, orient and shrink each input to what the model accepts (off the loop)."""
        prepared = []
        for raw in inputs:
            image = await prepare_input_async(
                raw.data,
                name=raw.name,
                max_bytes=self.settings.max_input_bytes,
                max_pixels=self.settings.max_input_pixels,
                max_side=spec.max_input_side,
                max_out_bytes=spec.max_input_bytes,
                accept=spec.input_mimes,
            )
            prepared.append(InputImage(image.data, image.mime, raw.url, raw.name))
        return prepared
