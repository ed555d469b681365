"""The challenges of a 401 read as sent, and the one error boundary naming what was offered."""

from __future__ import annotations

import pytest
import requests

from pydownloads import HTTPStatusError
from pydownloads.infrastructure.auth import choose, offered_schemes, parse_challenges
from pydownloads.infrastructure.transport import check_status


def test_challenges_are_split_with_their_parameters() -> None:
    header = ('Negotiate, Digest realm="a, b", nonce="n\\"1", qop="auth,auth-int", algorithm=SHA-256, '
              'Basic realm="r", Bearer abc123==')
    assert parse_challenges(header) == [
        ("Negotiate", {}),
        ("Digest", {"realm": "a, b", "nonce": 'n"1', "qop": "auth,auth-int", "algorithm": "SHA-256"}),
        ("Basic", {"realm": "r"}),
        ("Bearer", {}),
    ]
    assert offered_schemes(header) == ["Negotiate", "Digest", "Basic", "Bearer"]
    assert offered_schemes(None) == []


def test_digest_is_chosen_over_basic_and_the_strongest_digest_first() -> None:
    chosen = choose(parse_challenges('Basic realm="r", Digest nonce="m", Digest nonce="s", algorithm=SHA-256'))
    assert not isinstance(chosen, str) and chosen is not None and chosen.algorithm == "SHA-256"
    assert choose(parse_challenges('Basic realm="r"')) == "Basic"
    assert choose(parse_challenges("Negotiate")) is None
    assert choose(parse_challenges('Digest nonce="n", algorithm=UNKNOWN')) is None


def test_a_401_keeps_its_status_and_type_and_names_the_schemes_offered() -> None:
    response = requests.Response()
    response.status_code, response.reason = 401, "Unauthorized"
    response._content_consumed = True  # no body, no connection
    response.headers["WWW-Authenticate"] = 'Negotiate, Digest realm="r", nonce="n", Basic realm="r"'
    with pytest.raises(HTTPStatusError) as caught:
        check_status(response, "http://host/a")
    assert caught.value.status == 401 and caught.value.auth_schemes == ("Negotiate", "Digest", "Basic")
    assert str(caught.value) == "HTTP 401 Unauthorized from http://host/a (the server offers: Negotiate, Digest, Basic)"
