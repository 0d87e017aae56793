"""Import point for the fake image-provider servers used in tests.

Each fake is an aiohttp server on 127.0.0.1 (random port) reproducing one provider's wire format:

* FakeGemini        - Gemini API generateContent (seed 001)
* FakeOpenAIImages  - OpenAI-style relay (flavor="relay", seed 000) or aikit worker (seed 002)
* FakeNBPro         - nano-banana-pro.net (seed 003)
* FakeTask          - Vtrix task-polling API (seed 004)
"""

from tests.fakes.imagegen import dims_for, make_image
from tests.fakes.provider_base import FakeProvider, Fault, HeaderDict, RecordedRequest
from tests.fakes.provider_gemini import FakeGemini
from tests.fakes.provider_nbpro import FakeNBPro
from tests.fakes.provider_openai import FakeOpenAIImages
from tests.fakes.provider_task import FakeTask

__all__ = [
    "FakeGemini",
    "FakeNBPro",
    "FakeOpenAIImages",
    "FakeProvider",
    "FakeTask",
    "Fault",
    "HeaderDict",
    "RecordedRequest",
    "dims_for",
    "make_image",
]
