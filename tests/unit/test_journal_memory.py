"""What reading the whole state file costs: the downloads read back, not twice as much."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from pydownloads.domain.models import DownloadInfo, DownloadStatus
from pydownloads.infrastructure.journal import Journal


def test_reading_every_row_peaks_near_what_it_returns(tmp_path: Path) -> None:
    """The command reads every download back for its report: the raw rows must not all be
    held beside their DownloadInfos (the peak would be about twice the result)."""
    journal = Journal(tmp_path / "state.db")
    try:
        urls = [f"http://127.0.0.1:1/folder-{number % 100:02d}/file-{number:07d}.bin" for number in range(3000)]
        journal.insert(urls)
        for row, url in zip(journal.next_pending(len(urls)), urls, strict=True):
            path = tmp_path / "out" / url.rsplit("/", 1)[1]
            journal.finished(row.id, DownloadInfo(url=url, status=DownloadStatus.COMPLETED, bytes_downloaded=16,
                                                  total_bytes=16, path=path, started_at=1.0, finished_at=2.0))
        journal.flush()
        list(journal.rows())  # the first read also fills caches (the statement's, pathlib's): not measured
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            infos = list(journal.rows())
            held, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        journal.close()
    assert len(infos) == 3000 and infos[0].url == urls[0] and infos[-1].path is not None
    assert (peak - before) < 1.3 * (held - before)
