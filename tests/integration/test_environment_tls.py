"""The library reads the environment as requests does: a CA only in ``REQUESTS_CA_BUNDLE``
is trusted through the quick start; ``trust_env=False`` reads nothing, and the TLS error
then says why in words.

The CA is made in the process by ``trustme`` (pinned in requirements-test.txt): a real CA
signing a leaf for 127.0.0.1, as a TLS-inspecting proxy's is, with no external command that
a machine may lack (the test never skips) and no files but the ones written here.  The
server sends the CA in its chain, as such proxies do, so that OpenSSL's reason is
"self-signed certificate in certificate chain".
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import pydownloads
from pydownloads.domain.models import DownloadStatus
from tests.adversarial.rawserver import RawServer, body

DATA = b"behind the company's proxy\n" * 1000
_ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", "NETRC")


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA(organization_name="pydownloads test CA")


@pytest.fixture
def tls_server(authority: trustme.CA, tmp_path: Path) -> Iterator[RawServer]:
    """An HTTPS server whose certificate only ``authority`` vouches for."""
    leaf = authority.issue_cert("127.0.0.1", "localhost")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems) + authority.cert_pem.bytes())
    key = tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    with RawServer(tls=context) as server:
        server.route("/data.bin", body(DATA))
        yield server


@pytest.fixture
def ca_only_in_requests_ca_bundle(authority: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    bundle = tmp_path / "company-ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))


@pytest.mark.usefixtures("ca_only_in_requests_ca_bundle")
def test_the_quick_start_trusts_the_ca_bundle_of_the_environment(tls_server: RawServer, tmp_path: Path) -> None:
    url = tls_server.url("/data.bin")
    results = pydownloads.download([url], download_dir=tmp_path / "downloads", max_workers=2, progress=False)
    results.raise_for_failures()
    assert [info.status for info in results.completed] == [DownloadStatus.COMPLETED]
    assert (tmp_path / "downloads" / "data.bin").read_bytes() == DATA


@pytest.mark.usefixtures("ca_only_in_requests_ca_bundle")
def test_without_trust_env_the_environment_is_not_read_and_the_tls_error_says_why(
        tls_server: RawServer, tmp_path: Path) -> None:
    url = tls_server.url("/data.bin")
    results = pydownloads.download([url], download_dir=tmp_path / "downloads", trust_env=False, progress=False)
    assert not results.completed and [info.error_type for info in results.failed] == ["TLSError"]
    assert results.failed[0].error == (
        f"TLS: certificate verify failed: self-signed certificate in certificate chain ({url})")
    assert not (tmp_path / "downloads" / "data.bin").exists()
