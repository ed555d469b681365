"""Every Python example in README.md runs, against the local server instead of example.com."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pydownloads.localserver import LocalServer, Status
from tests.integration.helpers import file_sha256, payload, sha256

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
FILES = {
    "/urgent.zip": payload(200_000, 1),
    "/doc.pdf": payload(50_000, 2),
    "/data.json": b'{"ok": true}',
    "/file.zip": payload(300_000, 3),
    "/file1.zip": payload(10_000, 4),
    "/file2.pdf": payload(10_000, 5),
    "/flaky.bin": payload(1000, 6),
    "/big.iso": payload(12 << 20, 7),
    "/hello.txt": b"hello\n",
}


def serve_readme_files(server: LocalServer) -> None:
    for path, body in FILES.items():
        server.add_file(path, body)
    server.add_faults("/flaky.bin", Status(404))  # the custom-policy example retries it
    server.add_file("/mirror/big.iso", FILES["/big.iso"])
    # Slower than one fast connection (which would run alone), so that it is split.
    server.add_file("/big.iso", FILES["/big.iso"], rate=48 << 20)
    for i in range(20):
        server.add_file(f"/file{i}.bin", payload(300_000, 100 + i), rate=1_000_000)


def server_requests(server: LocalServer, path: str) -> list:  # type: ignore[type-arg]
    return [r for r in server.requests if r.path == path]


def test_the_readme_has_its_examples() -> None:
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index: int, local_server: LocalServer, tmp_path: Path) -> None:
    serve_readme_files(local_server)
    code = EXAMPLES[index].replace("https://example.com", local_server.base_url)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(README.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    downloads = tmp_path / "downloads"
    if "pydownloads.download(" in code:
        assert result.stdout == "2 completed, 0 failed\n"
        assert (downloads / "file1.zip").read_bytes() == FILES["/file1.zip"]
        assert (downloads / "file2.pdf").read_bytes() == FILES["/file2.pdf"]
    if "report-2023.pdf" in code:
        assert file_sha256(downloads / "urgent.zip") == sha256(FILES["/urgent.zip"])
        assert file_sha256(downloads / "reports" / "report-2023.pdf") == sha256(FILES["/doc.pdf"])
        assert (downloads / "data" / "raw" / "data.json").read_bytes() == FILES["/data.json"]
        assert "Completed: 3, Failed: 0" in result.stdout
    if "flaky.bin" in code:
        assert file_sha256(downloads / "flaky.bin") == sha256(FILES["/flaky.bin"])
    if "missing.zip" in code:
        assert "Failed:" in result.stdout and "404" in result.stdout
    if "big.iso" in code:
        assert file_sha256(downloads / "big.iso") == sha256(FILES["/big.iso"])
        assert (downloads / "hello.txt").read_bytes() == b"hello\n"
        assert len([r for r in server_requests(local_server, "/big.iso") if r.range]) >= 2
    if "mirrors=" in code:
        assert "unchanged" not in result.stdout or (downloads / "hello.txt").exists()
        assert (downloads / "hello.txt").read_bytes() == b"hello\n"
    if "download_on_dask" in code:
        assert result.stdout.startswith("20 []")
    if "state_file" in code:
        assert "'completed': 20" in result.stdout
    if "asyncio.run" in code:
        assert "All downloads complete!" in result.stdout and result.stdout.count("done:") == 2
    parts = list(downloads.rglob("*.part")) if downloads.exists() else []
    if "shutdown(" in code:  # cancelled downloads keep their part file to resume later
        assert all((p.parent / (p.name + ".json")).exists() for p in parts)
    else:
        assert parts == []
