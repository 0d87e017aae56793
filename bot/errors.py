"""The one error hierarchy: every failure a user can meet, each with a message they can read.

```
NanoBotError                 anything the bot turns into a message for a user
├── ConfigError              a setting is missing or invalid
├── InputError               the prompt, an image or an option cannot be used
│   └── ImageTooLarge        an input image is over a size cap
├── ProviderError            a provider call failed
│   ├── SafetyBlocked        the provider's safety system blocked the prompt or the output
│   ├── NoImageReturned      the call succeeded without an image
│   ├── RateLimited          the provider is rate limiting this key
│   ├── AuthFailed           the provider refused this key
│   ├── OutOfCredits         the operator's account has nothing left
│   ├── BadRequest           the provider refused the request as invalid
│   ├── ProviderUnavailable  the provider is down or answered with something unusable
│   │   ├── CircuitOpen      (bot/providers/breaker.py) not called while its breaker is open
│   │   └── BadResponse      a success whose body is not in the API's shape
│   └── ProviderTimeout      the provider did not answer in time
├── DeliveryFailed           Discord would not take the finished result
├── Refused                  the server's rules do not allow the job now
└── StorageUnavailable       the bot's own database did not answer
```

Every fact about a kind of error is a class attribute of its class, read wherever it matters: `title`
(the error reply's title), `metric_label` (nanobot_provider_errors_total), `outcome` (nanobot_jobs_total
and the job log), `exit_code` (the command-line tool), `retryable` (the HTTP layer sends the request
again), `rotates_key` (the key ring moves on to the next key), `fallback_ok` (the router hands the job
to the next provider) and `provider_fault` (the circuit breaker counts it). A subclass inherits what
it does not set, so adding an error is one class here. `reply_text(locale)` words the reply's body from
the error's own data (a retry delay, a reason code) in the member's language.

A message is a catalogue `Text` (bot/i18n) wherever the user should read it in their language; a plain
string is a detail in the service's own words (a provider's error text), shown after the class's
`detail_intro` line. `str(error)` and `.message` are always English, for the log and the CLI.
"""

from __future__ import annotations

import math
from typing import ClassVar

from bot.i18n import Text, Words, render

#: Exit status of the command-line tool for bad input or configuration.
EXIT_INPUT = 2
#: Exit status of the command-line tool for a failure that is not the input's (a provider, an outage).
EXIT_PROVIDER = 3


class NanoBotError(Exception):
    """Base of every error the bot turns into a user-facing message."""

    #: Title of the error reply in Discord.
    title: Words = Text("error.generic.title")
    #: Said before a plain-string message (a detail in a service's own words); None: the detail alone.
    detail_intro: ClassVar[Text | None] = None
    #: The `error` label of nanobot_provider_errors_total: unique per class.
    metric_label: ClassVar[str] = "nanobot_error"
    #: The `outcome` label of nanobot_jobs_total (and the job log) for a job that ends with this error.
    outcome: ClassVar[str] = "error"
    #: Exit status of the command-line tool.
    exit_code: ClassVar[int] = EXIT_PROVIDER
    #: Whether the HTTP layer may send the request again (when the HTTP status is a retryable one too).
    retryable: ClassVar[bool] = False
    #: Whether the failure belongs to the API key, so the key ring rests it and tries the next one.
    rotates_key: ClassVar[bool] = False
    #: Whether the router may try the next provider after this error.
    fallback_ok: ClassVar[bool] = False
    #: Whether the provider is at fault, so the error counts towards opening its circuit breaker.
    provider_fault: ClassVar[bool] = False

    def __init__(self, message: Words) -> None:
        super().__init__(str(message))
        #: The message in English (logs, the command-line tool).
        self.message = str(message)
        #: The message as given: a catalogue Text, or a plain detail.
        self.words: Words = message

    @property
    def user_message(self) -> str:
        """The text a CLI operator sees (English)."""
        return self.message

    def reply_text(self, locale: str | None = None) -> str:
        """The body of the error reply in Discord (the title's companion), in the locale's language."""
        if isinstance(self.words, Text) or self.detail_intro is None:
            return render(self.words, locale)
        return f"{self.detail_intro.render(locale)} {self.words}"

    def title_text(self, locale: str | None = None) -> str:
        """The reply's title in the locale's language."""
        return render(self.title, locale)


class ConfigError(NanoBotError):
    """A setting is missing or invalid; the message names it and how to fix it."""

    title = Text("error.config.title")
    metric_label = "config_error"
    exit_code = EXIT_INPUT


class InputError(NanoBotError):
    """The user's input (prompt, image, option) cannot be used; nothing was sent anywhere."""

    title = Text("error.input.title")
    metric_label = "input_error"
    outcome = "bad_input"
    exit_code = EXIT_INPUT


class ImageTooLarge(InputError):
    """An input image is over a size cap (bytes or pixels)."""

    title = Text("error.too_large.title")
    metric_label = "image_too_large"


class ProviderError(NanoBotError):
    """A provider call failed; subclasses say how."""

    title = Text("error.provider.title")
    detail_intro = Text("error.provider.detail")
    metric_label = "error"
    fallback_ok = True

    def __init__(self, message: Words, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class SafetyBlocked(ProviderError):
    """The prompt or the output was blocked by the provider's safety system."""

    title = Text("error.safety.title")
    detail_intro = Text("error.safety.detail")
    metric_label = outcome = "safety_blocked"
    fallback_ok = False

    def __init__(
        self,
        message: Words,
        *,
        reason: str | None = None,
        model_text: str | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.reason = reason
        self.model_text = model_text

    def reply_text(self, locale: str | None = None) -> str:
        """The message, naming the reason code when the message does not already."""
        said = super().reply_text(locale)
        if not self.reason or self.reason in said:
            return said
        return f"{said} ({self.reason})"


class NoImageReturned(ProviderError):
    """The call succeeded but no image came back (often the model answered in text)."""

    title = Text("error.no_image.title")
    detail_intro = Text("error.no_image.detail")
    metric_label = "no_image_returned"
    outcome = "no_image"
    fallback_ok = False

    def __init__(
        self,
        message: Words,
        *,
        reason: str | None = None,
        model_text: str | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.reason = reason
        self.model_text = model_text


class RateLimited(ProviderError):
    """The provider is rate limiting us; retry_after is in seconds when known."""

    title = Text("error.rate_limited.title")
    metric_label = outcome = "rate_limited"
    retryable = rotates_key = provider_fault = True

    def __init__(
        self, message: Words, *, retry_after: float | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after

    def reply_text(self, locale: str | None = None) -> str:
        """When to try again, in whole seconds when the provider said."""
        if self.retry_after is None:
            return Text("error.rate_limited.minute").render(locale)
        return Text("error.rate_limited.seconds", seconds=max(1, math.ceil(self.retry_after))).render(locale)


class AuthFailed(ProviderError):
    """The provider rejected our credentials (an operator problem, not the user's)."""

    title = Text("error.account.title")
    metric_label = "auth_failed"
    rotates_key = provider_fault = True

    def reply_text(self, locale: str | None = None) -> str:
        """Who can fix it; the provider's own words stay in the log."""
        return Text("error.auth.body").render(locale)


class OutOfCredits(ProviderError):
    """The operator's account at the provider has no credits or quota left."""

    title = Text("error.account.title")
    metric_label = "out_of_credits"
    rotates_key = provider_fault = True

    def reply_text(self, locale: str | None = None) -> str:
        """Who can fix it; the provider's own words stay in the log."""
        return Text("error.out_of_credits.body").render(locale)


class BadRequest(ProviderError):
    """The provider refused the request as invalid (or we refused it before sending)."""

    title = Text("error.bad_request.title")
    detail_intro = Text("error.bad_request.detail")
    metric_label = "bad_request"
    outcome = "bad_input"
    exit_code = EXIT_INPUT
    fallback_ok = False


class ProviderUnavailable(ProviderError):
    """The provider is down, overloaded or answered with something unusable."""

    title = Text("error.unavailable.title")
    detail_intro = Text("error.unavailable.detail")
    metric_label = outcome = "unavailable"
    retryable = provider_fault = True


class BadResponse(ProviderUnavailable):
    """A provider answered with success but not in its API's shape (a result field missing or unusable)."""

    title = Text("error.bad_response.title")
    metric_label = "bad_response"


class ProviderTimeout(ProviderError):
    """The provider did not answer in time."""

    title = Text("error.timeout.title")
    detail_intro = Text("error.timeout.detail")
    metric_label = outcome = "timeout"
    retryable = provider_fault = True

    def reply_text(self, locale: str | None = None) -> str:
        """The message, with what might help."""
        return Text("error.timeout.body", detail=super().reply_text(locale)).render(locale)


class DeliveryFailed(NanoBotError):
    """Discord would not take the finished result (rate limit, outage, refusal); nothing was charged."""

    title = Text("error.delivery.title")
    detail_intro = Text("error.delivery.detail")
    metric_label = "delivery_failed"

    def __init__(
        self, message: Words, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Refused(NanoBotError):
    """A job the server's rules do not allow now; nothing was charged. Says why and when to retry."""

    metric_label = outcome = "refused"

    def __init__(self, title: Words, message: Words) -> None:
        super().__init__(message)
        self.title = title  # each rule names itself ("⛔ Not allowed", "⏳ Queue full", …)


class StorageUnavailable(NanoBotError):
    """The bot's own database did not answer (an outage, a lock held too long); nothing was charged."""

    title = Text("error.storage.title")
    metric_label = "storage_unavailable"

    def __init__(self, message: Words = "") -> None:
        super().__init__(message or Text("error.storage.body"))
