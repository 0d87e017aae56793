"""Import point for the fake image-provider servers used in tests.

Each fake is an aiohttp server on 127.0.0.1 (random port) reproducing one provider's wire format:

* FakeGemini        - Gemini API generateContent
* FakeOpenAIImages  - OpenAI-style relay (flavor="relay") or aikit worker: the OpenAI Images API
* FakeNBPro         - nano-banana-pro.net
* FakeTask          - Vtrix task-polling API
"""

from tests.fakes.imagegen import dims_for, make_image
from tests.fakes.providers.base import FakeProvider, Fault, HeaderDict, RecordedRequest
from tests.fakes.providers.gemini import FakeGemini
from tests.fakes.providers.nbpro import FakeNBPro
from tests.fakes.providers.openai import FakeOpenAIImages
from tests.fakes.providers.task import FakeTask

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
