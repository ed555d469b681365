"""A manager refused for a bad option leaves its state file unlocked for the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pydownloads import DownloadManager, InvalidArgumentError


@pytest.mark.parametrize("bad", [{"proxies": "http://proxy:3128"}, {"cookies": 42}, {"verify": 3}],
                         ids=["proxies", "cookies", "verify"])
def test_a_bad_session_option_leaves_the_state_file_free(tmp_path: Path, bad: dict[str, Any]) -> None:
    state = tmp_path / "state.db"
    with pytest.raises(InvalidArgumentError):
        DownloadManager(tmp_path / "out", state_file=state, **bad)
    with DownloadManager(tmp_path / "out", state_file=state) as manager:  # not "in use by another process"
        assert manager.tracker.get_stats().total == 0
