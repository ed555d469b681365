"""How persistently to retry: the policy (which statuses) and the config (how often, how long)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydownloads.domain.errors import InvalidArgumentError

DEFAULT_TRANSIENT_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_PERMANENT_STATUS_CODES = frozenset({400, 401, 403, 404, 410})
DEFAULT_MAX_RETRIES = 3
DEFAULT_BASE_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0


def _status_set(name: str, codes: object) -> frozenset[int]:
    if isinstance(codes, (str, bytes)) or not hasattr(codes, "__iter__"):
        raise InvalidArgumentError(f"{name} must be a set of HTTP status codes")
    result: frozenset[object] = frozenset(codes)
    for code in result:
        if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 599:
            raise InvalidArgumentError(f"{name} holds {code!r}, which is not an HTTP status code")
    return frozenset(code for code in result if isinstance(code, int))


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Which HTTP statuses are worth another attempt.

    A status in neither set is treated as permanent when it is 4xx and transient when 5xx.
    """

    transient_status_codes: frozenset[int] = DEFAULT_TRANSIENT_STATUS_CODES
    permanent_status_codes: frozenset[int] = DEFAULT_PERMANENT_STATUS_CODES

    def __post_init__(self) -> None:
        transient = _status_set("transient_status_codes", self.transient_status_codes)
        permanent = _status_set("permanent_status_codes", self.permanent_status_codes)
        if transient & permanent:
            raise InvalidArgumentError(
                f"status codes cannot be both transient and permanent: {sorted(transient & permanent)}"
            )
        object.__setattr__(self, "transient_status_codes", transient)
        object.__setattr__(self, "permanent_status_codes", permanent)

    def is_transient_status(self, status: int) -> bool:
        """True when a response with ``status`` should be tried again."""
        if status in self.transient_status_codes:
            return True
        if status in self.permanent_status_codes:
            return False
        return status >= 500


@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """How many times and how patiently to retry a download.

    :param max_retries: attempts after the first one (0 disables retrying).
    :param base_delay: seconds before the first backoff; doubles with each retry.
    :param max_delay: cap on any wait, ``Retry-After`` included.
    :param policy: which statuses are transient.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise InvalidArgumentError(f"max_retries must be an int >= 0, not {self.max_retries!r}")
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
                raise InvalidArgumentError(f"{name} must be a finite number >= 0, not {value!r}")
        if self.max_delay < self.base_delay:
            raise InvalidArgumentError("max_delay must not be smaller than base_delay")
        if not isinstance(self.policy, RetryPolicy):
            raise InvalidArgumentError(f"policy must be a RetryPolicy, not {type(self.policy).__name__}")

    def backoff(self, retry_number: int, jitter: float) -> float:
        """Seconds to wait before retry number ``retry_number`` (1-based).

        :param jitter: a number in [0, 1) that spreads retries of many downloads apart: the
            delay is drawn from the upper half of the exponential step ("equal jitter").
        """
        # The exponent is capped first: 2 ** 1100 would overflow a float.
        step = float(min(self.max_delay, self.base_delay * 2.0 ** min(max(0, retry_number - 1), 64)))
        return step / 2 + step / 2 * jitter
