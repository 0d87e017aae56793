"""The built-in offline upscaler, so that upscaling works with no upscale-capable provider."""

from __future__ import annotations

from typing import ClassVar

from bot.errors import BadRequest
from bot.i18n import Text
from bot.imaging import upscale_local_async
from bot.providers.base import GenerateRequest, GenerateResult, ImageData, UpscaleRequest
from bot.providers.common import ProviderBase


class LocalProvider(ProviderBase):
    """Pillow LANCZOS resampling plus mild sharpening, run off the event loop."""

    kind: ClassVar[str] = "local"

    @property
    def can_upscale(self) -> bool:
        """Always: this is the upscaler of last resort."""
        return True

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """The local provider cannot make images."""
        raise BadRequest(Text("provider.upscale.only", provider=self.name), provider=self.name)

    async def upscale(self, request: UpscaleRequest) -> GenerateResult:
        """Resize by the factor, sharpen, and encode."""
        if request.factor not in (2, 4):
            raise BadRequest(Text("provider.upscale.factor"), provider=self.name)
        if request.image.data is None:
            raise BadRequest(Text("provider.upscale.no_data"), provider=self.name)
        data, mime = await upscale_local_async(request.image.data, request.factor)
        return GenerateResult(
            images=[ImageData(data, mime)], provider=self.name, model=f"local x{request.factor}"
        )

    async def check(self) -> str:
        """Nothing to probe."""
        return "ok: offline upscaler"
