"""Imaging: sniff, validate, orient, resize, upscale and fit images under Discord's upload limit.

The facade of the package: callers import from here. `header` reads formats and sizes without
decoding, `codec` decodes and encodes, `fit` makes results fit an upload limit, `pool` runs Pillow
off the event loop, `stream` decodes results while they arrive and bounds the bytes of results in
flight, and `prepare` ties them into the operations the bot performs.
"""

from bot.imaging.fit import must_shrink_over
from bot.imaging.prepare import (
    SUPPORTED_MIMES,
    FittedImage,
    ImageInfo,
    PreparedImage,
    fit_for_upload,
    fit_for_upload_async,
    image_dims,
    nearest_ratio,
    prepare_input,
    prepare_input_async,
    probe,
    sniff_mime,
    upscale_local,
    upscale_local_async,
)
from bot.imaging.stream import Arrival, ByteBudget, Intake, StreamDecode, current_intake, intake

__all__ = [
    "SUPPORTED_MIMES",
    "Arrival",
    "ByteBudget",
    "FittedImage",
    "ImageInfo",
    "Intake",
    "PreparedImage",
    "StreamDecode",
    "current_intake",
    "fit_for_upload",
    "fit_for_upload_async",
    "image_dims",
    "intake",
    "must_shrink_over",
    "nearest_ratio",
    "prepare_input",
    "prepare_input_async",
    "probe",
    "sniff_mime",
    "upscale_local",
    "upscale_local_async",
]
