"""The one error hierarchy: every failure a user can meet, each with a message they can read."""

from __future__ import annotations


class NanoBotError(Exception):
    """Base of every error the bot turns into a user-facing message."""

    #: Short label shown as the title of an error reply.
    title = "Something went wrong"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def user_message(self) -> str:
        """The text a Discord user or CLI operator sees."""
        return self.message


class ConfigError(NanoBotError):
    """A setting is missing or invalid; the message names it and how to fix it."""

    title = "Configuration error"


class InputError(NanoBotError):
    """The user's input (prompt, image, option) cannot be used; nothing was sent anywhere."""

    title = "Bad input"


class ImageTooLarge(InputError):
    """An input image is over a size cap (bytes or pixels)."""

    title = "File too large"


class ProviderError(NanoBotError):
    """A provider call failed; subclasses say how."""

    title = "Provider error"
    #: Whether the router may try the next provider after this error.
    fallback_ok = True

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class SafetyBlocked(ProviderError):
    """The prompt or the output was blocked by the provider's safety system."""

    title = "Blocked by safety filters"
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


class NoImageReturned(ProviderError):
    """The call succeeded but no image came back (often the model answered in text)."""

    title = "No image returned"
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

    title = "Rate limited"

    def __init__(
        self, message: str, *, retry_after: float | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class AuthFailed(ProviderError):
    """The provider rejected our credentials (an operator problem, not the user's)."""

    title = "Provider authentication failed"


class OutOfCredits(ProviderError):
    """The operator's account at the provider has no credits or quota left."""

    title = "Provider out of credits"


class BadRequest(ProviderError):
    """The provider refused the request as invalid (or we refused it before sending)."""

    title = "Request not accepted"
    fallback_ok = False


class Unavailable(ProviderError):
    """The provider is down, overloaded or answered with something unusable."""

    title = "Provider unavailable"


class Timeout(ProviderError):
    """The provider did not answer in time."""

    title = "Provider timed out"


class DeliveryFailed(NanoBotError):
    """Discord would not take the finished result (rate limit, outage, refusal); nothing was charged."""

    title = "Discord refused the image"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Refused(NanoBotError):
    """A job the server's rules do not allow now; nothing was charged. Says why and when to retry."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title


class StorageUnavailable(NanoBotError):
    """The bot's own database did not answer (an outage, a lock held too long); nothing was charged."""

    title = "Database unavailable"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "The bot's database is not answering right now. Nothing was charged; please try again "
            "in a minute."
        )
