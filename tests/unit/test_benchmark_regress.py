"""The comparison of benchmarks/regress.py (the CI regression check): which figures fail against
the baseline and which are only reported.  Nothing is measured or timed here."""

from __future__ import annotations

from benchmarks.regress import compare, figures, ratios, too_big
from benchmarks.run import Sample

BASELINE = {"W2 pydownloads": 1.0, "W1s pydownloads-cli": 1.5}


def test_figures_within_the_threshold_pass_silently() -> None:
    failures, notes = compare({"W2 pydownloads": 1.9, "W1s pydownloads-cli": 1.0}, BASELINE, 2.0)
    assert failures == [] and notes == []


def test_a_figure_past_threshold_times_its_baseline_fails_and_names_both() -> None:
    failures, _ = compare({"W2 pydownloads": 2.1, "W1s pydownloads-cli": 1.5}, BASELINE, 2.0)
    assert len(failures) == 1
    assert failures[0].startswith("W2 pydownloads: 2.10") and "1.00" in failures[0]


def test_exactly_threshold_times_the_baseline_is_not_a_failure() -> None:
    failures, _ = compare({"W2 pydownloads": 2.0, "W1s pydownloads-cli": 3.0}, BASELINE, 2.0)
    assert failures == []


def test_a_baseline_figure_not_measured_fails() -> None:
    failures, _ = compare({"W2 pydownloads": 1.0}, BASELINE, 2.0)
    assert failures == ["W1s pydownloads-cli: not measured (the baseline has it at 1.50)"]


def test_a_large_gain_and_a_new_figure_are_notes_not_failures() -> None:
    failures, notes = compare({"W2 pydownloads": 0.4, "W1s pydownloads-cli": 1.5, "W5 pydownloads": 1.0},
                              BASELINE, 2.0)
    assert failures == []
    assert [note.split(":")[0] for note in notes] == ["W2 pydownloads", "W5 pydownloads"]


def test_ratios_pair_each_run_with_the_references_and_skip_failed_runs() -> None:
    def run(cpu: float, error: str | None = None) -> Sample:
        return Sample(wall=1.0, cpu=cpu, inner_cpu=cpu, error=error)

    samples = {
        ("W2", "pydownloads"): [run(2.0), run(3.0), run(9.0, error="exit 1")],
        ("W2", "requests"): [run(1.0), run(2.0), run(1.0)],
        ("W2", "pydownloads-cli"): [run(1.0)],
    }
    assert ratios(samples) == {"W2 pydownloads": [2.0, 1.5], "W2 pydownloads-cli": [1.0]}


def test_figures_divide_the_least_cpu_by_the_references_least() -> None:
    def run(cpu: float, error: str | None = None) -> Sample:
        return Sample(wall=1.0, cpu=cpu, inner_cpu=cpu, error=error)

    samples = {
        ("W2", "pydownloads"): [run(3.0), run(2.0), run(0.1, error="exit 1")],
        ("W2", "requests"): [run(4.0), run(1.0), run(0.1, error="wrong bytes")],
        ("W2", "pydownloads-cli"): [run(1.0, error="exit 1")],
    }
    assert figures(samples) == {"W2 pydownloads": 2.0}


def test_a_checked_client_past_the_memory_ceiling_is_named_the_reference_is_not() -> None:
    samples = {
        ("W2", "pydownloads"): [Sample(wall=1.0, cpu=1.0, rss=40.0), Sample(wall=1.0, cpu=1.0, rss=61.5)],
        ("W2", "requests"): [Sample(wall=1.0, cpu=1.0, rss=90.0)],
    }
    assert too_big(samples, 60.0) == ["W2 pydownloads: peak RSS 61.5 MiB, over 60"]
