"""The shared web policy: loopback detection, exposure check, constant-time bearer check."""

from __future__ import annotations

import pytest

from web_access import ExposureError, bearer_matches, check_exposure, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    check_exposure(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "worker.internal", ""])
def test_other_hosts_need_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ExposureError) as refused:
        check_exposure(host, None)
    assert "LOYALTY_WEB_HOST" in str(refused.value)
    assert "LOYALTY_API_TOKEN" in str(refused.value)
    check_exposure(host, "a-token")
    with pytest.raises(ExposureError):
        check_exposure(host, "")  # an empty token is no token


def test_bearer_header_must_carry_exactly_the_token() -> None:
    assert bearer_matches("Bearer s3cret", "s3cret")
    assert bearer_matches("bearer s3cret", "s3cret")
    for header in ("", "Bearer", "Bearer ", "Bearer s3cre", "Bearer s3cretX", "Basic s3cret",
                   "s3cret", "Bearer  other"):  # fmt: skip
        assert not bearer_matches(header, "s3cret"), header
