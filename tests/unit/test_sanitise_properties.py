"""Property tests: whatever a URL, a Content-Disposition header or a caller says, a file name is
None or one safe path component inside the folder, and a DownloadRequest never points outside.

Safe means: no separator, NUL or control character; not ``.`` or ``..``; no leading or
trailing dot or space (Windows drops them); not a reserved Windows device name; NFC; short
enough that the library's own working files beside it (``.part``, ``.part.json``) fit in 255
bytes; and joined to the folder it stays inside it.
"""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pydownloads.domain import FileConfig
from pydownloads.domain.errors import InvalidArgumentError
from pydownloads.downloads.job import DownloadRequest
from pydownloads.infrastructure.files import part_path
from pydownloads.infrastructure.paths import (
    contained_path,
    name_from_url,
    parse_content_disposition,
    safe_component,
    subdir_parts,
)
from pydownloads.infrastructure.sidecar import SIDECAR_SUFFIX

PROPERTIES = settings(max_examples=500, deadline=None, database=None)
MAX_NAME_BYTES = 255
RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)}
#: Microsoft also reserves COM and LPT followed by the ISO 8859-1 superscript digits.
RESERVED_SUPERSCRIPT = {f"{d}{s}" for d in ("COM", "LPT") for s in "\u00b9\u00b2\u00b3"}

# Pieces that have broken file-name sanitisers somewhere: separators, traversal in every
# encoding, control characters, Windows devices and forbidden characters, unicode tricks.
TRICKY = [
    "/", "\\", ".", "..", "...", " ", "\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9f", "%2e", "%2f", "%5c",
    "%252e%252f", "%00", "..%2f", "%c0%ae", "CON", "con", "NUL", "Aux", "com1", "LPT9", "PRN.txt", ":", "*", "?",
    '"', "<", ">", "|", "\u202e", "\u200b", "\ufeff", "\u0301", "e\u0301", "\u00e9", "\uff0e", "\uff0f", "\u2024",
    "\u2215", "\u29f8", "\u20ac", "\U0001f600", "~", "$", ".part", ".part.json", "C:", "c:\\", "//", "\\\\?\\",
]
_pieces = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12))
names = st.one_of(
    st.lists(_pieces, max_size=24).map("".join),
    st.builds(lambda a, n, b: a * n + b, st.sampled_from(["a", "\u20ac", "\U0001f600", "e\u0301", ". "]),
              st.integers(60, 300), st.sampled_from(["", ".txt", ".tar.gz", "." + "x" * 20, "/x", " . "])),
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("root")


def assert_safe(name: str | None, root: Path, *, budget: int = MAX_NAME_BYTES - len(".part")) -> None:
    """``name`` is None or one safe component (see the module docstring)."""
    if name is None:
        return
    assert isinstance(name, str) and name
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(unicodedata.category(ch) == "Cc" for ch in name), repr(name)
    assert name not in (".", "..")
    assert name == name.strip(" ."), repr(name)
    assert len(name.encode("utf-8")) <= budget
    assert name.split(".")[0].rstrip(" ").upper() not in RESERVED, repr(name)
    assert unicodedata.normalize("NFC", name) == name
    assert safe_component(name) == name  # already safe: left alone
    path = contained_path(root, name)
    assert path.parent == root.resolve()
    assert len(part_path(path).name.encode("utf-8")) <= MAX_NAME_BYTES


# -- safe_component ---------------------------------------------------------------------------------


@PROPERTIES
@given(names)
@example("../../etc/passwd")
@example("a" * 400 + ".tar")
@example("CON.txt")
@example("\u20ac" * 100)
def test_safe_component_gives_one_safe_component(root: Path, text: str) -> None:
    assert_safe(safe_component(text), root)


@pytest.mark.parametrize("text", ["a" * 400 + ".tar", "\u20ac" * 200, "b" * 250])
def test_safe_component_leaves_room_for_the_resume_state(text: str) -> None:
    name = safe_component(text)
    assert name is not None
    assert len((name + SIDECAR_SUFFIX + ".tmp").encode("utf-8")) <= MAX_NAME_BYTES


@pytest.mark.parametrize("text", ["COM\u00b9", "lpt\u00b2.txt", "Com\u00b3.tar.gz"])
def test_safe_component_refuses_superscript_device_names(text: str) -> None:
    name = safe_component(text)
    assert name is not None
    assert name.split(".")[0].rstrip(" ").upper() not in RESERVED_SUPERSCRIPT


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb.txt", "\udcff" * 3])
def test_safe_component_handles_lone_surrogates(root: Path, text: str) -> None:
    assert_safe(safe_component(text), root)


# -- name_from_url ----------------------------------------------------------------------------------


@PROPERTIES
@given(st.one_of(names, names.map(lambda t: quote(t, safe="/")),
                 names.map(lambda t: quote(quote(t, safe=""), safe=""))))
@example("%2e%2e%2f%2e%2e%2fetc%2fpasswd")
@example("..%5c..%5cwin.ini")
@example("%252e%252e%252f")
def test_name_from_url_gives_one_safe_component(root: Path, path: str) -> None:
    url = "http://example.com/" + path.replace("#", "%23").replace("?", "%3F")
    assert_safe(name_from_url(url), root)


# -- parse_content_disposition ------------------------------------------------------------------------

SAFE_CHARSETS = ["UTF-8", "utf-8", "ISO-8859-1", "latin1", "", "ascii", "cp1252", "utf-16", "no-such-charset"]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _header_chars(text: str) -> str:
    """What can reach us in a header value: requests decodes headers as latin-1, without CR/LF."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1").replace("\r", " ").replace("\n", " ")


dispositions = st.one_of(
    st.builds(lambda kind, n: f"{kind}; filename={_quoted(n)}", st.sampled_from(["attachment", "inline", ""]), names),
    st.builds(lambda n: f"attachment; filename={n}", names),
    st.builds(lambda cs, lang, n: f"attachment; filename*={cs}'{lang}'{quote(n, safe='', errors='replace')}",
              st.sampled_from(SAFE_CHARSETS), st.sampled_from(["", "en", "x'y"]), names),
    st.builds(lambda a, b: f"attachment; filename*=UTF-8''{quote(a, safe='')}; filename={_quoted(b)}", names, names),
    st.lists(st.sampled_from([";", "=", '"', "\\", "filename", "filename*", "'", "%", " ", "UTF-8", "..", "/", "a"]),
             max_size=40).map("".join),
    st.text(max_size=200),
).map(_header_chars)


@PROPERTIES
@given(dispositions)
@example('attachment; filename="../../etc/passwd"')
@example("attachment; filename*=UTF-8''..%2F..%2Fescaped")
@example('attachment; filename="' + "x" * 70_000 + '"')
@example("attachment; " + 'filename="a; ' * 5000)
def test_parse_content_disposition_gives_one_safe_component(root: Path, header: str) -> None:
    assert_safe(parse_content_disposition(header), root)


@pytest.mark.parametrize("header", [
    'attachment; filename="' + "x" * 70_000 + '"',
    "attachment; " + 'filename="a; ' * 5000,
    "a" + '; a="' * 13_000,
    "attachment;" + " filename*=UTF-8''" * 4000,
    ";" * 65_000,
    "x; a=\\" * 9000,
    'attachment; filename="' + "\\" * 30_000,
])
def test_parse_content_disposition_is_fast_on_huge_headers(root: Path, header: str) -> None:
    """A 64 KiB header line (http.client's limit) is parsed in linear time."""
    started = time.perf_counter()
    assert_safe(parse_content_disposition(header), root)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("header", [
    "attachment; filename*=unicode_escape''%5Cud800.txt",
    "attachment; filename*=raw_unicode_escape''%5Cudfff",
    "attachment; filename*=utf-7''%2B2AA-.txt",
    "attachment; filename*=undefined''%41",
])
def test_parse_content_disposition_never_raises_on_hostile_charsets(root: Path, header: str) -> None:
    assert_safe(parse_content_disposition(header), root)


# -- destination_subdir and the whole request -----------------------------------------------------------


@PROPERTIES
@given(names)
@example("../x")
@example("a/./b")
@example("C:/x")
@example(" .. /x")
def test_subdir_parts_refuse_or_stay_inside(root: Path, subdir: str) -> None:
    try:
        parts = subdir_parts(subdir)
    except InvalidArgumentError:
        return
    for part in parts:
        assert_safe(part, root)
    candidate = contained_path(root, *parts)
    resolved = root.resolve()
    assert candidate == resolved or resolved in candidate.parents


@PROPERTIES
@given(
    filename=st.one_of(st.none(), names),
    subdir=st.one_of(st.none(), names),
    url_path=names.map(lambda t: quote(t, safe="/%")),
    server_name=st.one_of(st.none(), names),
)
@example(filename="../../x", subdir="a/../../b", url_path="%2e%2e%2f", server_name="../../y")
@example(filename=None, subdir=None, url_path="", server_name=None)
def test_download_request_refuses_or_stays_inside(
        root: Path, filename: str | None, subdir: str | None, url_path: str, server_name: str | None) -> None:
    try:
        config = FileConfig("http://example.com/" + url_path.replace("#", "%23").replace("?", "%3F"),
                            filename=filename, destination_subdir=subdir)
        request = DownloadRequest.from_config(config, root)
    except InvalidArgumentError:
        return
    resolved = root.resolve()
    for part in request.subdir:
        assert_safe(part, root)
    assert_safe(request.filename, root)
    destinations = [request.predicted_destination()]
    name = request.filename or safe_component(server_name or "") or name_from_url(request.url) or "download"
    destinations.append(request.destination(name))
    for path in destinations:
        if path is not None:
            assert resolved in path.parents
            assert len(path.relative_to(resolved).parts) == len(request.subdir) + 1


@pytest.mark.parametrize(("filename", "subdir"), [("\ud800.txt", None), (None, "a/\udfff")])
def test_download_request_handles_lone_surrogates(root: Path, filename: str | None, subdir: str | None) -> None:
    config = FileConfig("http://example.com/f", filename=filename, destination_subdir=subdir)
    try:
        request = DownloadRequest.from_config(config, root)
    except InvalidArgumentError:
        return
    assert_safe(request.filename, root)
    for part in request.subdir:
        assert_safe(part, root)
