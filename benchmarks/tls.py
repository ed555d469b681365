"""A certificate authority made for one benchmark run, and a certificate for 127.0.0.1 it signs.

    ca = make_ca(folder)   # ca.cert (what every client must trust), ca.server_cert, ca.server_key

Made with the ``openssl`` command line (no Python dependency): ECDSA P-256 keys, as most
CDNs serve, valid for two days, for ``IP:127.0.0.1`` and ``DNS:localhost``.  Nothing is
installed in the system's trust store: each tool is told to trust ``ca.cert`` explicitly
(benchmarks/README.md lists the flags).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass(frozen=True)
class Authority:
    """The files of a made CA: the CA's certificate (to trust) and the server's pair (to serve)."""

    cert: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-400:]}")


def make_ca(folder: Path) -> Authority:
    """Write a CA and a server certificate for 127.0.0.1 signed by it into ``folder``."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is not installed (apt-get install openssl): the TLS workloads need it")
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = folder / "ca.key", folder / "ca.pem"
    key, request, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    extensions = folder / "server.ext"
    extensions.write_text(_SERVER_EXTENSIONS)
    _openssl("req", "-x509", *_KEY, "-keyout", str(ca_key), "-out", str(ca_cert), "-days", "2",
             "-subj", "/CN=pydownloads benchmark CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", *_KEY, "-keyout", str(key), "-out", str(request), "-subj", "/CN=127.0.0.1")
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-sha256", "-extfile", str(extensions))
    for path in (ca_cert, cert):
        path.chmod(0o644)
    return Authority(cert=ca_cert, server_cert=cert, server_key=key)
