"""Unit tests for the domain models: FileConfig, DownloadStatus, DownloadInfo, RetryPolicy, RetryConfig."""

from __future__ import annotations

import dataclasses
import math

import pytest

from pydownloads.domain import (
    DownloadInfo,
    DownloadStatus,
    FileConfig,
    InvalidArgumentError,
    RetryConfig,
    RetryPolicy,
)

URL = "https://example.com/files/a.zip"


# -- FileConfig: accepted input ----------------------------------------------------------------


def test_file_config_url_is_positional_and_defaults_are_applied() -> None:
    config = FileConfig(URL)
    assert config.url == URL
    assert config.priority == 0
    assert config.filename is None
    assert config.destination_subdir is None
    assert config.headers == {}


def test_file_config_accepts_every_field_by_keyword() -> None:
    config = FileConfig(
        URL, priority=-3, filename="b.zip", destination_subdir="x/y", headers={"X-Token": "abc"}
    )
    assert (config.priority, config.filename, config.destination_subdir) == (-3, "b.zip", "x/y")
    assert config.headers == {"X-Token": "abc"}


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com/a/b.txt?x=1#frag",
        "HTTPS://EXAMPLE.COM/upper",
        "http://127.0.0.1:8080/x",
        "http://[::1]:8080/x",
        "http://user:pw@example.com/x",
    ],
)
def test_file_config_accepts_http_and_https_urls(url: str) -> None:
    assert FileConfig(url).url == url


@pytest.mark.parametrize(
    "extra",
    [(1,), (0, "name"), (0, None, "sub"), (0, None, None, {})],
)
def test_file_config_fields_after_url_are_keyword_only(extra: tuple[object, ...]) -> None:
    with pytest.raises(TypeError, match="positional"):
        FileConfig(URL, *extra)  # type: ignore[misc]


# -- FileConfig: rejected input ----------------------------------------------------------------


def test_invalid_argument_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        FileConfig("ftp://example.com/x")
    assert issubclass(InvalidArgumentError, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "ws://example.com/socket",
        "example.com/no-scheme",
        "//example.com/scheme-relative",
        "/just/a/path",
    ],
)
def test_file_config_rejects_non_http_schemes(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="only http and https"):
        FileConfig(url)


@pytest.mark.parametrize("url", ["http://", "https:///path/only", "http://:80/x", "http://user@/x"])
def test_file_config_rejects_url_without_host(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="no host"):
        FileConfig(url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://example.com/a b",
        " http://example.com/a",
        "http://example.com/a\t",
        "http://example.com/a\nb",
        "http://example.com/a\rb",
        "http://example.com/a\x00b",
        "http://example.com/a\x1bb",
        "http://example.com/a\x85b",
        "http://exa mple.com/",
    ],
)
def test_file_config_rejects_spaces_and_control_characters(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match="spaces or control characters"):
        FileConfig(url)


def test_file_config_rejects_delete_control_character() -> None:
    with pytest.raises(InvalidArgumentError):
        FileConfig("http://example.com/a\x7fb")


def test_file_config_malformed_ipv6_host_raises_invalid_argument_error() -> None:
    with pytest.raises(InvalidArgumentError):
        FileConfig("http://[::1/x")


@pytest.mark.parametrize("url", [None, 42, b"http://example.com/", ["http://example.com/"]])
def test_file_config_rejects_non_str_url(url: object) -> None:
    with pytest.raises(InvalidArgumentError, match="url must be a str"):
        FileConfig(url)  # type: ignore[arg-type]


@pytest.mark.parametrize("priority", [True, False, 1.0, "1", None])
def test_file_config_rejects_non_int_priority(priority: object) -> None:
    with pytest.raises(InvalidArgumentError, match="priority must be an int"):
        FileConfig(URL, priority=priority)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["filename", "destination_subdir"])
@pytest.mark.parametrize("value", ["", "   ", "\t", 3, b"name"])
def test_file_config_rejects_empty_or_non_str_names(field: str, value: object) -> None:
    with pytest.raises(InvalidArgumentError, match=f"{field} must be a non-empty str"):
        FileConfig(URL, **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("headers", [[("a", "b")], "a: b", 5])
def test_file_config_rejects_non_mapping_headers(headers: object) -> None:
    with pytest.raises(InvalidArgumentError, match="headers must be a mapping"):
        FileConfig(URL, headers=headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers",
    [{1: "a"}, {"X-A": 1}, {"X-A": None}, {b"X-A": "a"}, {"X-A": b"a"}],
)
def test_file_config_rejects_non_str_header_names_and_values(headers: dict[object, object]) -> None:
    with pytest.raises(InvalidArgumentError, match="headers must map str to str"):
        FileConfig(URL, headers=headers)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "X-A\r\nX-B", "X-A\n", "X-A\r", "X\x00A", "X-A:", "X A"])
def test_file_config_rejects_bad_header_names(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid header name"):
        FileConfig(URL, headers={name: "v"})


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b"])
def test_file_config_rejects_header_values_with_line_breaks_or_nul(value: str) -> None:
    with pytest.raises(InvalidArgumentError, match="line break or NUL"):
        FileConfig(URL, headers={"X-A": value})


def test_file_config_accepts_empty_header_value() -> None:
    assert FileConfig(URL, headers={"X-Empty": ""}).headers == {"X-Empty": ""}


# -- FileConfig: immutability and hashing -------------------------------------------------------


def test_file_config_copies_headers_defensively() -> None:
    headers = {"X-A": "1"}
    config = FileConfig(URL, headers=headers)
    headers["X-A"] = "changed"
    headers["X-B"] = "added"
    assert config.headers == {"X-A": "1"}
    assert config.headers is not headers


def test_file_config_is_frozen() -> None:
    config = FileConfig(URL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.url = "https://example.com/other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.priority = 9  # type: ignore[misc]
    assert config.url == URL
    assert config.priority == 0


def test_file_config_is_hashable_despite_headers() -> None:
    first = FileConfig(URL, priority=2, headers={"X-A": "1"})
    second = FileConfig(URL, priority=2, headers={"X-A": "1"})
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1
    assert FileConfig(URL, priority=3) not in {first}


def test_file_configs_differing_only_in_headers_are_unequal() -> None:
    assert FileConfig(URL, headers={"X-A": "1"}) != FileConfig(URL, headers={"X-A": "2"})


# -- DownloadStatus -----------------------------------------------------------------------------


def test_download_status_values() -> None:
    assert {status.name: status.value for status in DownloadStatus} == {
        "PENDING": "pending",
        "IN_PROGRESS": "in_progress",
        "COMPLETED": "completed",
        "FAILED": "failed",
        "CANCELLED": "cancelled",
    }


def test_download_status_is_a_str_and_prints_its_value() -> None:
    assert DownloadStatus.COMPLETED == "completed"
    assert str(DownloadStatus.IN_PROGRESS) == "in_progress"
    assert f"{DownloadStatus.FAILED}" == "failed"
    assert DownloadStatus("cancelled") is DownloadStatus.CANCELLED


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (DownloadStatus.PENDING, False),
        (DownloadStatus.IN_PROGRESS, False),
        (DownloadStatus.COMPLETED, True),
        (DownloadStatus.FAILED, True),
        (DownloadStatus.CANCELLED, True),
    ],
)
def test_download_status_is_final(status: DownloadStatus, final: bool) -> None:
    assert status.is_final is final


# -- DownloadInfo -------------------------------------------------------------------------------


def test_download_info_elapsed() -> None:
    info = DownloadInfo(url=URL, status=DownloadStatus.COMPLETED, started_at=100.0, finished_at=112.5)
    assert info.elapsed == 12.5


@pytest.mark.parametrize(("started", "finished"), [(None, None), (100.0, None), (None, 100.0)])
def test_download_info_elapsed_unknown(started: float | None, finished: float | None) -> None:
    info = DownloadInfo(url=URL, status=DownloadStatus.IN_PROGRESS, started_at=started, finished_at=finished)
    assert info.elapsed is None


def test_download_info_defaults_and_frozen() -> None:
    info = DownloadInfo(url=URL, status=DownloadStatus.PENDING)
    assert (info.bytes_downloaded, info.total_bytes, info.path, info.error, info.error_type, info.attempts) == (
        0,
        None,
        None,
        None,
        None,
        0,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.bytes_downloaded = 5  # type: ignore[misc]


# -- RetryPolicy --------------------------------------------------------------------------------


def test_retry_policy_defaults() -> None:
    policy = RetryPolicy()
    assert policy.transient_status_codes == frozenset({408, 429, 500, 502, 503, 504})
    assert policy.permanent_status_codes == frozenset({400, 401, 403, 404, 410})


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retry_policy_listed_transient(status: int) -> None:
    assert RetryPolicy().is_transient_status(status) is True


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_retry_policy_listed_permanent(status: int) -> None:
    assert RetryPolicy().is_transient_status(status) is False


@pytest.mark.parametrize("status", [402, 405, 409, 418, 451, 499])
def test_retry_policy_unlisted_4xx_is_permanent(status: int) -> None:
    assert RetryPolicy().is_transient_status(status) is False


@pytest.mark.parametrize("status", [501, 505, 507, 520, 599])
def test_retry_policy_unlisted_5xx_is_transient(status: int) -> None:
    assert RetryPolicy().is_transient_status(status) is True


def test_retry_policy_custom_sets_override_the_4xx_5xx_rule() -> None:
    policy = RetryPolicy(transient_status_codes={418}, permanent_status_codes=[503])
    assert policy.is_transient_status(418) is True
    assert policy.is_transient_status(503) is False
    assert policy.is_transient_status(429) is False  # no longer listed: a 4xx
    assert policy.is_transient_status(500) is True  # no longer listed: a 5xx
    assert policy.transient_status_codes == frozenset({418})
    assert isinstance(policy.permanent_status_codes, frozenset)


def test_retry_policy_rejects_overlap() -> None:
    with pytest.raises(InvalidArgumentError, match=r"both transient and permanent: \[404, 500\]"):
        RetryPolicy(transient_status_codes={404, 500, 503}, permanent_status_codes={404, 500})


@pytest.mark.parametrize(
    "codes",
    [{99}, {600}, {0}, {-404}, {True}, {"500"}, {500.0}, {None}, "500", b"500", 500],
)
@pytest.mark.parametrize("field", ["transient_status_codes", "permanent_status_codes"])
def test_retry_policy_rejects_bad_codes(field: str, codes: object) -> None:
    with pytest.raises(InvalidArgumentError, match=field):
        RetryPolicy(**{field: codes})  # type: ignore[arg-type]


def test_retry_policy_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        RetryPolicy({500})  # type: ignore[misc]


# -- RetryConfig: validation --------------------------------------------------------------------


def test_retry_config_defaults() -> None:
    config = RetryConfig()
    assert (config.max_retries, config.base_delay, config.max_delay) == (3, 1.0, 60.0)
    assert config.policy == RetryPolicy()


def test_retry_config_accepts_zero() -> None:
    config = RetryConfig(max_retries=0, base_delay=0, max_delay=0)
    assert config.backoff(1, 0.5) == 0.0


@pytest.mark.parametrize("value", [-1, True, 1.5, "3", None])
def test_retry_config_rejects_bad_max_retries(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="max_retries"):
        RetryConfig(max_retries=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-0.1, -1, True, math.inf, math.nan, "1", None])
@pytest.mark.parametrize("field", ["base_delay", "max_delay"])
def test_retry_config_rejects_bad_delays(field: str, value: object) -> None:
    kwargs: dict[str, object] = {field: value}
    if field == "base_delay":
        kwargs["max_delay"] = 1000.0
    with pytest.raises(InvalidArgumentError, match=field):
        RetryConfig(**kwargs)  # type: ignore[arg-type]


def test_retry_config_rejects_max_delay_below_base_delay() -> None:
    with pytest.raises(InvalidArgumentError, match="max_delay must not be smaller than base_delay"):
        RetryConfig(base_delay=10.0, max_delay=5.0)


@pytest.mark.parametrize("policy", [None, {500}, "policy", object()])
def test_retry_config_rejects_wrong_policy_type(policy: object) -> None:
    with pytest.raises(InvalidArgumentError, match="policy must be a RetryPolicy"):
        RetryConfig(policy=policy)  # type: ignore[arg-type]


def test_retry_config_is_frozen_and_keyword_only() -> None:
    config = RetryConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_retries = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryConfig(5)  # type: ignore[misc]


# -- RetryConfig: backoff -----------------------------------------------------------------------


@pytest.mark.parametrize(("retry_number", "step"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0)])
def test_backoff_doubles_with_each_retry(retry_number: int, step: float) -> None:
    config = RetryConfig(base_delay=1.0, max_delay=100.0)
    assert config.backoff(retry_number, 0.0) == step / 2
    assert config.backoff(retry_number, 1.0) == step


def test_backoff_is_capped_at_max_delay() -> None:
    config = RetryConfig(base_delay=1.0, max_delay=10.0)
    assert config.backoff(4, 1.0) == 8.0
    assert config.backoff(5, 1.0) == 10.0
    assert config.backoff(5, 0.0) == 5.0
    assert config.backoff(30, 0.999999) == pytest.approx(10.0, abs=1e-4)
    assert all(config.backoff(n, 0.999999) <= 10.0 for n in range(1, 60))


def test_backoff_jitter_zero_is_half_the_step() -> None:
    config = RetryConfig(base_delay=0.5, max_delay=60.0)
    assert config.backoff(1, 0.0) == 0.25
    assert config.backoff(3, 0.0) == 1.0


def test_backoff_jitter_near_one_is_the_full_step() -> None:
    config = RetryConfig(base_delay=0.5, max_delay=60.0)
    assert config.backoff(3, 1.0 - 1e-12) == pytest.approx(2.0, rel=1e-9)
    assert config.backoff(3, 1.0 - 1e-12) < 2.0


def test_backoff_jitter_is_linear_within_the_upper_half() -> None:
    config = RetryConfig(base_delay=2.0, max_delay=60.0)
    assert config.backoff(2, 0.5) == 3.0  # step 4: 2 + 2 * 0.5
    assert config.backoff(2, 0.25) == 2.5


def test_backoff_retry_number_below_one_uses_base_step() -> None:
    config = RetryConfig(base_delay=2.0, max_delay=60.0)
    assert config.backoff(0, 1.0) == 2.0
    assert config.backoff(-5, 0.0) == 1.0


def test_backoff_stays_capped_for_very_large_retry_numbers() -> None:
    config = RetryConfig(max_retries=5000, base_delay=0.5, max_delay=60.0)
    assert config.backoff(1100, 0.0) == 30.0
