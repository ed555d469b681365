"""Unit and property tests for pydownloads.infrastructure.paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.infrastructure.paths import (
    contained_path,
    name_from_url,
    parse_content_disposition,
    safe_component,
    subdir_parts,
)

RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)}


def _has_ascii_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


# -- safe_component -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("dir/sub/report.pdf", "report.pdf"),
        ("dir\\sub\\report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("a<b>c:d\"e|f?g*h", "a_b_c_d_e_f_g_h"),
        ("tab\there", "tab_here"),
        ("nul\x00byte", "nul_byte"),
        ("del\x7fchar", "del_char"),
        ("  .hidden. ", "hidden"),
        ("...dots...", "dots"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("Lpt1.tar.gz", "_Lpt1.tar.gz"),
        ("COM9", "_COM9"),
        ("console.txt", "console.txt"),
        ("CONx.txt", "CONx.txt"),
        ("cafe\u0301.txt", "caf\u00e9.txt"),  # NFC
        ("\u00fcber.txt", "\u00fcber.txt"),
    ],
)
def test_safe_component_examples(raw: str, expected: str) -> None:
    assert safe_component(raw) == expected


@pytest.mark.parametrize("raw", ["", " ", ".", "..", "...", " . ", "dir/", "a/..", "a\\.", "/"])
def test_safe_component_returns_none_when_nothing_usable(raw: str) -> None:
    assert safe_component(raw) is None


# Names keep 14 bytes of the 255 free for the longest suffix the library adds (".part.json.tmp").
def test_safe_component_truncates_to_241_bytes_keeping_the_extension() -> None:
    result = safe_component("a" * 400 + ".tar")
    assert result is not None
    assert result == "a" * 237 + ".tar"
    assert len(result.encode("utf-8")) == 241


def test_safe_component_truncation_does_not_split_multibyte_characters() -> None:
    result = safe_component("\u20ac" * 200 + ".txt")  # 3 bytes each
    assert result is not None
    assert len(result.encode("utf-8")) <= 241
    assert result.endswith(".txt")
    assert set(result[:-4]) == {"\u20ac"}
    assert len(result[:-4]) == 79  # 237 // 3


def test_safe_component_long_extension_is_not_kept() -> None:
    result = safe_component("x." + "e" * 300)
    assert result is not None
    assert len(result.encode("utf-8")) == 241
    assert result.startswith("x.eee")


def test_safe_component_short_names_are_untouched_at_the_limit() -> None:
    name = "b" * 241
    assert safe_component(name) == name
    assert safe_component("b" * 242) == "b" * 241


def test_safe_component_replaces_c1_control_characters() -> None:
    result = safe_component("a\x85b\x9b[31mc")
    assert result is not None
    assert not any(0x80 <= ord(ch) <= 0x9F for ch in result)


def test_safe_component_truncation_cannot_produce_a_reserved_name() -> None:
    result = safe_component("CON" + " " * 300 + ".txt")
    assert result is not None
    assert result.split(".")[0].upper() not in RESERVED


# -- name_from_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/files/report.pdf", "report.pdf"),
        ("https://example.com/files/report.pdf?token=1#top", "report.pdf"),
        ("https://example.com/my%20file.txt", "my file.txt"),
        ("https://example.com/%E2%82%AC.txt", "\u20ac.txt"),
        ("https://example.com/a%2Fb.txt", "b.txt"),
        ("https://example.com/a%5C..%5Cevil.txt", "evil.txt"),
        ("https://example.com/%2525", "%25"),  # decoded once only
        ("https://example.com/nul.txt", "_nul.txt"),
    ],
)
def test_name_from_url(url: str, expected: str) -> None:
    assert name_from_url(url) == expected


@pytest.mark.parametrize("url", ["https://example.com/%2e%2e", "https://example.com/.."])
def test_name_from_url_without_a_usable_segment(url: str) -> None:
    assert name_from_url(url) is None


@pytest.mark.parametrize(
    "url", ["https://example.com", "https://example.com/", "https://example.com/dir/", "https://example.com/a/?q=1"]
)
def test_a_folder_url_is_named_index_html_as_wget_names_it(url: str) -> None:
    assert name_from_url(url) == "index.html"


# -- parse_content_disposition ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="report.pdf"', "report.pdf"),
        ("attachment; filename=report.pdf", "report.pdf"),
        ("attachment;filename=report.pdf;size=10", "report.pdf"),
        ('inline; FILENAME="Upper.txt"', "Upper.txt"),
        ("attachment; filename*=UTF-8''%E2%82%AC%20rates.txt", "\u20ac rates.txt"),
        ("attachment; filename*=utf-8'en'na%C3%AFve.txt", "na\u00efve.txt"),
        ("attachment; filename*=iso-8859-1'en'%A3%20rates.txt", "\u00a3 rates.txt"),
        ("attachment; filename*=''plain%20name.txt", "plain name.txt"),  # empty charset: UTF-8
        ('attachment; filename="a \\"quoted\\" name.txt"', "a _quoted_ name.txt"),
        ('attachment; filename="semi;colon.txt"', "semi;colon.txt"),
        ('attachment; filename="back\\\\slash.txt"', "slash.txt"),
        ('attachment; filename="esc\\aped.txt"', "escaped.txt"),
        ('attachment; filename=" spaced.txt "', "spaced.txt"),
    ],
)
def test_parse_content_disposition_examples(header: str, expected: str) -> None:
    assert parse_content_disposition(header) == expected


def test_parse_content_disposition_extended_filename_wins_in_either_order() -> None:
    after = "attachment; filename=\"fallback.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt"
    before = "attachment; filename*=UTF-8''%C3%A9t%C3%A9.txt; filename=\"fallback.txt\""
    assert parse_content_disposition(after) == "\u00e9t\u00e9.txt"
    assert parse_content_disposition(before) == "\u00e9t\u00e9.txt"


@pytest.mark.parametrize(
    "extended",
    [
        "no-such-charset''caf%C3%A9.txt",  # unknown charset
        "UTF-8''%FF%FE.txt",  # invalid UTF-8
        "hex''%41%42",  # not a text encoding
        "UTF-8%E2%82%AC.txt",  # no quotes: not RFC 8187
        "UTF-8'en%E2%82%AC.txt",  # only one quote
        "UTF-8''",  # empty after decoding
        "UTF-8''%2E%2E",  # decodes to ".."
    ],
)
def test_parse_content_disposition_bad_extended_value_falls_back_to_filename(extended: str) -> None:
    header = f'attachment; filename*={extended}; filename="fallback.txt"'
    assert parse_content_disposition(header) == "fallback.txt"


def test_parse_content_disposition_unknown_charset_without_escapes_falls_back() -> None:
    header = "attachment; filename*=no-such-charset''name.txt; filename=\"fallback.txt\""
    assert parse_content_disposition(header) == "fallback.txt"


def test_parse_content_disposition_first_of_repeated_parameters_wins() -> None:
    assert parse_content_disposition('attachment; filename="one.txt"; filename="two.txt"') == "one.txt"


def test_parse_content_disposition_parameter_inside_quoted_value_is_not_a_parameter() -> None:
    header = 'attachment; note="x; filename=evil.txt"; filename="good.txt"'
    assert parse_content_disposition(header) == "good.txt"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="..\\\\..\\\\boot.ini"', "boot.ini"),
        ("attachment; filename=/etc/shadow", "shadow"),
        ("attachment; filename*=UTF-8''..%2F..%2F.ssh%2Fauthorized_keys", "authorized_keys"),
        ("attachment; filename*=UTF-8''..%5C..%5Cevil.exe", "evil.exe"),
        ('attachment; filename="C:\\\\Windows\\\\system.ini"', "system.ini"),
    ],
)
def test_parse_content_disposition_traversal_reduced_to_last_component(header: str, expected: str) -> None:
    assert parse_content_disposition(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "attachment",
        "inline",
        "attachment;",
        "attachment; size=10",
        'attachment; filename=""',
        'attachment; filename=".."',
        "attachment; filename=../",
        "attachment; filename*=UTF-8''..",
        "filename=report.pdf",  # no disposition type before the first ';'
    ],
)
def test_parse_content_disposition_none_when_no_usable_name(header: str) -> None:
    assert parse_content_disposition(header) is None


# -- subdir_parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subdir", "expected"),
    [
        ("a", ["a"]),
        ("a/b/c", ["a", "b", "c"]),
        ("a\\b", ["a", "b"]),
        ("./a//b/./", ["a", "b"]),
        (".", []),
        ("a/con", ["a", "_con"]),
        ("x<y", ["x_y"]),
        ("...a", ["a"]),
    ],
)
def test_subdir_parts(subdir: str, expected: list[str]) -> None:
    assert subdir_parts(subdir) == expected


@pytest.mark.parametrize("subdir", ["/abs", "/", "\\abs", "\\\\server\\share", "C:\\x", "c:x", "Z:/y"])
def test_subdir_parts_rejects_absolute_paths_and_drives(subdir: str) -> None:
    with pytest.raises(InvalidArgumentError, match="must be relative"):
        subdir_parts(subdir)


@pytest.mark.parametrize("subdir", ["..", "../x", "a/..", "a/../b", "a\\..\\b", "a/ .. /b", "./.."])
def test_subdir_parts_rejects_parent_components_anywhere(subdir: str) -> None:
    with pytest.raises(InvalidArgumentError, match="must stay inside download_dir"):
        subdir_parts(subdir)


@pytest.mark.parametrize("subdir", ["a/...", "a/ /b"])
def test_subdir_parts_rejects_unusable_components(subdir: str) -> None:
    with pytest.raises(InvalidArgumentError, match="unusable component"):
        subdir_parts(subdir)


# -- contained_path -----------------------------------------------------------------------------


def test_contained_path_joins_inside_root(tmp_path: Path) -> None:
    assert contained_path(tmp_path, "a", "b.txt") == tmp_path.resolve() / "a" / "b.txt"
    assert contained_path(tmp_path) == tmp_path.resolve()


@pytest.mark.parametrize("parts", [("..",), ("a", "..", ".."), ("..", "sibling"), ("/etc",)])
def test_contained_path_rejects_parts_leading_outside(tmp_path: Path, parts: tuple[str, ...]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(InvalidArgumentError, match="resolves outside"):
        contained_path(root, *parts)


def test_contained_path_rejects_symlink_inside_root_pointing_outside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidArgumentError, match="resolves outside"):
        contained_path(root, "escape")
    with pytest.raises(InvalidArgumentError, match="resolves outside"):
        contained_path(root, "escape", "file.txt")


def test_contained_path_allows_symlink_that_stays_inside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert contained_path(root, "alias", "f.txt") == root.resolve() / "alias" / "f.txt"


def test_contained_path_accepts_a_root_that_is_itself_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert contained_path(link, "f.txt") == real.resolve() / "f.txt"


# -- properties ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def property_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property_root").resolve()


_texts = st.one_of(
    st.text(),
    st.text(min_size=230, max_size=320),
    st.text(alphabet=st.sampled_from("CONPRAUXLTM0123456789 ./\\:\x00\x1f\x7fab"), max_size=40),
)


def _assert_safe(result: str | None, root: Path) -> None:
    if result is None:
        return
    assert isinstance(result, str)
    assert result
    assert "/" not in result
    assert "\\" not in result
    assert "\x00" not in result
    assert not _has_ascii_control(result)
    assert result not in (".", "..")
    assert len(result.encode("utf-8")) <= 241
    assert result.split(".")[0].upper() not in RESERVED
    joined = contained_path(root, result)
    assert Path(os.path.realpath(joined)).parent == root
    assert joined.name == result


@settings(max_examples=300, deadline=None, database=None)
@given(_texts)
def test_safe_component_property(property_root: Path, text: str) -> None:
    _assert_safe(safe_component(text), property_root)


_header_values = st.one_of(
    st.text(),
    st.builds(
        lambda kind, name, value: f"{kind}; {name}={value}",
        st.sampled_from(["attachment", "inline", ""]),
        st.sampled_from(["filename", "filename*", "FileName", "size"]),
        st.text(),
    ),
    st.builds(
        lambda charset, lang, encoded, quoted: (
            f"attachment; filename*={charset}'{lang}'{encoded}; filename=\"{quoted}\""
        ),
        st.sampled_from(["UTF-8", "utf-8", "iso-8859-1", "", "bogus", "hex", "idna", "utf-16"]),
        st.sampled_from(["", "en", "de-DE"]),
        st.text(alphabet=st.sampled_from("%0123456789ABCDEFabcdef./\\ "), max_size=40),
        st.text(),
    ),
)


@settings(max_examples=300, deadline=None, database=None)
@given(_header_values)
def test_parse_content_disposition_property(property_root: Path, header: str) -> None:
    _assert_safe(parse_content_disposition(header), property_root)


def _general(name: str) -> str | None:
    """safe_component's steps without its shortcut for plain names (the reference)."""
    import re
    import unicodedata

    from pydownloads.infrastructure import paths

    name = unicodedata.normalize("NFC", name.encode("utf-8", "replace").decode("utf-8"))
    name = paths._truncate(paths._UNSAFE_CHARS.sub("_", re.split(r"[/\\]", name)[-1]).strip(" ."))
    return paths._unreserved(name) if name else None


@settings(max_examples=500, deadline=None, database=None)
@given(st.one_of(
    st.text(alphabet=st.sampled_from("abcXYZ019._- "), max_size=250),
    st.sampled_from(["CON", "con.txt", "LPT1.x", "nul", "a.part", "b.PART.json", "x.part.json.tmp", "." * 3,
                     "a" * 241, "a" * 242, "-", "_.", ".a"]),
))
def test_the_shortcut_for_plain_names_gives_what_the_general_steps_give(name: str) -> None:
    from pydownloads.infrastructure.paths import safe_component

    assert safe_component(name) == _general(name)
