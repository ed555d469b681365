"""The per-file checks made cheap: containment below a resolved root, and path claims."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pydownloads.domain.errors import DestinationConflictError, InvalidArgumentError
from pydownloads.downloads.job import PathClaims
from pydownloads.infrastructure.paths import contained_in

# -- contained_in: only what lies below the resolved root is looked at --------------------------


@pytest.fixture
def base(tmp_path: Path) -> str:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    return os.path.realpath(root)


def test_a_fresh_name_is_inside(base: str) -> None:
    assert contained_in(base, "file.bin") == Path(base) / "file.bin"
    assert contained_in(base, "new", "deeper", "file.bin") == Path(base, "new", "deeper", "file.bin")
    assert contained_in(base) == Path(base)


def test_a_link_anywhere_below_the_root_is_followed(base: str) -> None:
    outside = Path(base).parent / "outside"
    (Path(base) / "a").mkdir()
    (Path(base) / "a" / "b").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidArgumentError, match="resolves outside"):
        contained_in(base, "a", "b", "file.bin")
    (Path(base) / "file.bin").symlink_to(outside / "target.bin")  # the name itself, dangling
    with pytest.raises(InvalidArgumentError, match="resolves outside"):
        contained_in(base, "file.bin")


def test_a_link_that_stays_inside_is_allowed(base: str) -> None:
    (Path(base) / "real").mkdir()
    (Path(base) / "alias").symlink_to(Path(base) / "real", target_is_directory=True)
    assert contained_in(base, "alias", "file.bin") == Path(base) / "alias" / "file.bin"


def test_what_lies_below_a_missing_folder_or_a_file_cannot_be_a_link(base: str) -> None:
    (Path(base) / "plain.txt").write_text("x")
    assert contained_in(base, "plain.txt", "file.bin") == Path(base) / "plain.txt" / "file.bin"
    assert contained_in(base, "missing", "file.bin") == Path(base) / "missing" / "file.bin"


@pytest.mark.parametrize("parts", [("missing", "..", ".."), ("..",), ("a/../../x",), ("/etc",), ("x", "", "..", "..")])
def test_parts_that_are_not_plain_names_are_resolved_in_full(base: str, parts: tuple[str, ...]) -> None:
    with pytest.raises(InvalidArgumentError, match="resolves outside"):
        contained_in(base, *parts)


def test_a_dotted_part_that_stays_inside_is_allowed(base: str) -> None:
    (Path(base) / "a").mkdir()
    assert os.path.realpath(contained_in(base, "a", "..", "file.bin")) == os.path.join(base, "file.bin")


# -- PathClaims ---------------------------------------------------------------------------------


def test_a_claim_covers_the_part_and_state_files_beside_it(tmp_path: Path) -> None:
    claims = PathClaims()
    claims.claim(tmp_path / "x", "http://a/x")
    claims.claim(tmp_path / "x", "http://a/x")  # again by its owner: fine
    for taken in (tmp_path / "x", tmp_path / "x.part", tmp_path / "x.part.json"):
        with pytest.raises(DestinationConflictError) as caught:
            claims.claim(taken, "http://b/x")
        assert caught.value.other_url == "http://a/x"
    claims.claim(tmp_path / "x.par", "http://b/x")  # a name merely beginning alike is free


def test_only_the_owner_releases_a_claim(tmp_path: Path) -> None:
    claims = PathClaims()
    claims.claim(tmp_path / "x", "http://a/x")
    claims.release(tmp_path / "x", "http://b/x")
    with pytest.raises(DestinationConflictError):
        claims.claim(tmp_path / "x", "http://b/x")
    claims.release(tmp_path / "x", "http://a/x")
    claims.claim(tmp_path / "x.part", "http://b/x")


def test_a_claim_meets_every_final_path_whose_files_share_one_with_its_own(tmp_path: Path) -> None:
    claims = PathClaims()
    claims.claim(tmp_path / "x.part", "http://a/x")  # its part and state: x.part.part, x.part.part.json
    for taken in (tmp_path / "x", tmp_path / "x.part.part", tmp_path / "x.part.part.json"):
        with pytest.raises(DestinationConflictError) as caught:
            claims.claim(taken, "http://b/x")  # x's part file is the claimed x.part
        assert caught.value.other_url == "http://a/x"
    claims.claim(tmp_path / "x.part.json", "http://c/x")  # shares none: x.part.json's files are its own
    with pytest.raises(DestinationConflictError):
        claims.claim(tmp_path / "x.part.json.part", "http://d/x")


def test_a_claim_keeps_one_string_however_many_files_it_covers(tmp_path: Path) -> None:
    """With a state file the claims of a run stay until its end: their memory is per download."""
    import tracemalloc

    names = [tmp_path / f"folder/file-{number:07d}.bin" for number in range(2000)]
    for name in names:
        str(name)  # pathlib caches the text: what is measured is what the claims add
    claims = PathClaims()
    url = "http://a/x"
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for name in names:
            claims.claim(name, url)
        added = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert added / len(names) < 120  # a dict slot or two; each extra key text would cost ~100 bytes more
