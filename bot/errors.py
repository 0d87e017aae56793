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
it does not set, so adding an error is one class here. `reply_text()` words the reply's body from the
error's own data (a retry delay, a reason code).
"""

from __future__ import annotations

import math
from typing import ClassVar

#: Exit status of the command-line tool for bad input or configuration.
EXIT_INPUT = 2
#: Exit status of the command-line tool for a failure that is not the input's (a provider, an outage).
EXIT_PROVIDER = 3


class NanoBotError(Exception):
    """Base of every error the bot turns into a user-facing message."""

    #: Title of the error reply in Discord.
    title: str = "⚠️ Something went wrong"
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

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def user_message(self) -> str:
        """The text a Discord user or CLI operator sees."""
        return self.message

    def reply_text(self) -> str:
        """The body of the error reply in Discord (the title's companion)."""
        return self.message


class ConfigError(NanoBotError):
    """A setting is missing or invalid; the message names it and how to fix it."""

    title = "⚠️ Configuration error"
    metric_label = "config_error"
    exit_code = EXIT_INPUT


class InputError(NanoBotError):
    """The user's input (prompt, image, option) cannot be used; nothing was sent anywhere."""

    title = "⚠️ Bad input"
    metric_label = "input_error"
    outcome = "bad_input"
    exit_code = EXIT_INPUT


class ImageTooLarge(InputError):
    """An input image is over a size cap (bytes or pixels)."""

    title = "📦 File too large"
    metric_label = "image_too_large"


class ProviderError(NanoBotError):
    """A provider call failed; subclasses say how."""

    title = "⚠️ Provider error"
    metric_label = "error"
    fallback_ok = True

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class SafetyBlocked(ProviderError):
    """The prompt or the output was blocked by the provider's safety system."""

    title = "🚫 Blocked by safety filters"
    metric_label = outcome = "safety_blocked"
    fallback_ok = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        model_text: str | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.reason = reason
        self.model_text = model_text

    def reply_text(self) -> str:
        """The message, naming the reason code when the message does not already."""
        if not self.reason or self.reason in self.message:
            return self.message
        return f"{self.message} ({self.reason})"


class NoImageReturned(ProviderError):
    """The call succeeded but no image came back (often the model answered in text)."""

    title = "🖼️ No image returned"
    metric_label = "no_image_returned"
    outcome = "no_image"
    fallback_ok = False

    def __init__(
        self,
        message: str,
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

    title = "⏳ Rate limited"
    metric_label = outcome = "rate_limited"
    retryable = rotates_key = provider_fault = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after

    def reply_text(self) -> str:
        """When to try again, in whole seconds when the provider said."""
        when = "in a minute" if self.retry_after is None else f"in {max(1, math.ceil(self.retry_after))} s"
        return f"The image service is busy. Try again {when}."


class AuthFailed(ProviderError):
    """The provider rejected our credentials (an operator problem, not the user's)."""

    title = "🔧 Provider account problem"
    metric_label = "auth_failed"
    rotates_key = provider_fault = True

    def reply_text(self) -> str:
        """Who can fix it; the provider's own words stay in the log."""
        return (
            "The image service refused this bot's account; whoever runs the bot needs to check "
            "its provider key. Nothing was charged."
        )


class OutOfCredits(ProviderError):
    """The operator's account at the provider has no credits or quota left."""

    title = "🔧 Provider account problem"
    metric_label = "out_of_credits"
    rotates_key = provider_fault = True

    def reply_text(self) -> str:
        """Who can fix it; the provider's own words stay in the log."""
        return (
            "The image service says this bot's account has run out of credits; whoever runs the "
            "bot needs to top it up or add another key. Nothing was charged."
        )


class BadRequest(ProviderError):
    """The provider refused the request as invalid (or we refused it before sending)."""

    title = "⚠️ Request not accepted"
    metric_label = "bad_request"
    outcome = "bad_input"
    exit_code = EXIT_INPUT
    fallback_ok = False


class ProviderUnavailable(ProviderError):
    """The provider is down, overloaded or answered with something unusable."""

    title = "🛠️ Provider unavailable"
    metric_label = outcome = "unavailable"
    retryable = provider_fault = True


class BadResponse(ProviderUnavailable):
    """A provider answered with success but not in its API's shape (a result field missing or unusable)."""

    title = "🛠️ Provider sent a bad answer"
    metric_label = "bad_response"


class ProviderTimeout(ProviderError):
    """The provider did not answer in time."""

    title = "⌛ Timed out"
    metric_label = outcome = "timeout"
    retryable = provider_fault = True

    def reply_text(self) -> str:
        """The message, with what might help."""
        return f"{self.message}. Try again, perhaps at a lower resolution."


class DeliveryFailed(NanoBotError):
    """Discord would not take the finished result (rate limit, outage, refusal); nothing was charged."""

    title = "📮 Discord refused the image"
    metric_label = "delivery_failed"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Refused(NanoBotError):
    """A job the server's rules do not allow now; nothing was charged. Says why and when to retry."""

    metric_label = outcome = "refused"

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title  # each rule names itself ("⛔ Not allowed", "⏳ Queue full", …)


class StorageUnavailable(NanoBotError):
    """The bot's own database did not answer (an outage, a lock held too long); nothing was charged."""

    title = "⚠️ Database unavailable"
    metric_label = "storage_unavailable"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "The bot's database is not answering right now. Nothing was charged; please try again "
            "in a minute."
        )
