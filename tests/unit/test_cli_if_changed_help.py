"""The --if-changed help says what the command does with the state file (it keeps one)."""

from __future__ import annotations

from pydownloads.cli._args import build_parser


def test_the_if_changed_help_keeps_the_state_file_and_asks_again_about_completed_ones() -> None:
    action = build_parser()._option_string_actions["--if-changed"]
    assert action.help is not None
    words = " ".join(action.help.split())
    assert "no state file" not in words  # one is written (DIR/.pydownloads-state.db unless --no-state)
    assert "the state file is kept" in words and "asked again instead of skipped" in words
