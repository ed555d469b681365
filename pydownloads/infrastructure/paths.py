"""Safe file names: whatever a URL, a header or a caller says, one component inside the folder."""

from __future__ import annotations

import codecs
import os
import re
import stat
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydownloads.domain.errors import InvalidArgumentError

MAX_NAME_BYTES = 255
#: Room kept below MAX_NAME_BYTES for the ".part" suffix of the file being written.
PART_SUFFIX = ".part"
DEFAULT_NAME = "download"
#: The name of a URL whose path names a folder (ends in ``/``, or is empty), as wget saves it.
INDEX_NAME = "index.html"
#: The longest suffix the library adds to a name (the resume state's temporary file).
_LONGEST_SUFFIX = ".part.json.tmp"
_NAME_BUDGET = MAX_NAME_BYTES - len(_LONGEST_SUFFIX)
#: Names the library uses for its own files beside a download: never a server's to pick.
_RESERVED_SUFFIXES = (".part", ".part.json", ".part.json.tmp")
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"/\\|?*]')
#: A name with nothing to change but maybe its reservation: starts and ends with neither dot
#: nor space, ASCII only (its length in characters is its length in bytes).
_PLAIN = re.compile(r"[A-Za-z0-9_-](?:[A-Za-z0-9._-]*[A-Za-z0-9_-])?")
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{device}{digit}" for device in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)


def safe_component(name: str) -> str | None:
    """Reduce ``name`` to one file name that is safe on every common file system.

    Only the part after the last ``/`` or ``\\`` is kept; control and reserved characters
    become ``_``; leading and trailing dots and spaces go; Windows device names get a ``_``
    prefix; the result is NFC-normalised and at most 241 bytes of UTF-8 (the extension kept),
    leaving room for the suffixes the library adds; a name ending like one of the library's
    own files (``.part``, ``.part.json``) gets a ``_``.
    Returns None when nothing usable is left (``""``, ``"."``, ``".."``).
    """
    if _PLAIN.fullmatch(name) and len(name) <= _NAME_BUDGET:
        # ASCII letters, digits, ``_``, ``-`` and inner dots: nothing to replace, normalise,
        # strip or cut (the common case, checked cheaply); the reserved names still apply.
        return _unreserved(name)
    # Lone surrogates (from a caller's str or an odd charset) cannot be written: replaced.
    name = name.encode("utf-8", "replace").decode("utf-8")
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _truncate(_UNSAFE_CHARS.sub("_", name).strip(" ."))
    return _unreserved(name) if name else None


def _unreserved(name: str) -> str:
    """``name`` (made safe and cut already) clear of device names and of our own suffixes."""
    # Checked after truncation, which can strip what stood between a device name and the dot.
    if name.split(".")[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        name = _truncate("_" + name)
    if name.lower().endswith(_RESERVED_SUFFIXES):
        name = _truncate(name + "_")  # would pass for a part file or resume state of ours
    return name


def _truncate(name: str) -> str:
    if len(name.encode("utf-8")) <= _NAME_BUDGET:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > 16:
        stem, ext = name, ""
    suffix = "." + ext if ext else ""
    room = _NAME_BUDGET - len(suffix.encode("utf-8"))
    stem_bytes = stem.encode("utf-8")[:room]
    return (stem_bytes.decode("utf-8", errors="ignore").rstrip(" .") + suffix).strip(" .")


def name_from_url(url: str) -> str | None:
    """The URL's last path segment, percent-decoded once, made safe; :data:`INDEX_NAME` for a
    folder's URL (``http://host/``, ``http://host/files/``); None if the segment is unusable."""
    path = urlsplit(url).path
    segment = path.rsplit("/", 1)[-1]
    return safe_component(unquote(segment, errors="replace")) if segment else INDEX_NAME


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*;\s*({_TOKEN})\s*=\s*({_QUOTED}|[^;]*)", re.ASCII)


def parse_content_disposition(value: str) -> str | None:
    """The file name a Content-Disposition header offers, made safe, or None.

    ``filename*`` (RFC 8187: ``charset'lang'percent-encoded``) wins over ``filename``.
    """
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + value.split(";", 1)[1] if ";" in value else ""):
        key = match.group(1).lower()
        raw = match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.setdefault(key, raw)
    extended = params.get("filename*")
    if extended is not None:
        decoded = _decode_extended(extended)
        if decoded:
            name = safe_component(decoded)
            if name:
                return name
    plain = params.get("filename")
    return safe_component(plain) if plain else None


def _decode_extended(value: str) -> str | None:
    charset, sep, rest = value.partition("'")
    _lang, sep2, encoded = rest.partition("'")
    if not sep or not sep2:
        return None
    # RFC 8187 asks for UTF-8 and ISO-8859-1 only; other codecs (unicode_escape, utf-7,
    # "undefined") can yield lone surrogates or raise, so they are not used at all.
    try:
        codec = codecs.lookup(charset.strip() or "utf-8").name
    except LookupError:
        return None
    if codec not in ("utf-8", "iso8859-1", "latin-1", "ascii"):
        return None
    try:
        return unquote(encoded, encoding=codec, errors="strict")
    except UnicodeError:
        return None


def subdir_parts(subdir: str) -> list[str]:
    """Split a caller's ``destination_subdir`` into safe components.

    :raises InvalidArgumentError: absolute paths, drive letters and ``..`` components: the
        caller asked to leave the download folder, which is never done.
    """
    if subdir.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", subdir):
        raise InvalidArgumentError(f"destination_subdir must be relative: {subdir!r}")
    parts: list[str] = []
    for raw in re.split(r"[/\\]+", subdir):
        if raw in ("", "."):
            continue
        if raw.strip() == "..":
            raise InvalidArgumentError(f"destination_subdir must stay inside download_dir: {subdir!r}")
        part = safe_component(raw)
        if part is None:
            raise InvalidArgumentError(f"destination_subdir has an unusable component {raw!r}")
        parts.append(part)
    return parts


def contained_path(root: Path, *parts: str) -> Path:
    """``root / parts...``, checked to resolve inside ``root`` (symbolic links followed).

    :raises InvalidArgumentError: the path would land outside ``root``.
    """
    return contained_in(os.path.realpath(root), *parts)


def contained_in(base: str, *parts: str) -> Path:
    """Like :func:`contained_path` for a root already resolved (``os.path.realpath``): only
    the candidate below it is looked at, every symbolic link on its way included (the
    per-file check).

    Each component below ``base`` is ``lstat``-ed down to the first that does not exist (a
    fresh download's name, usually): while none is a symbolic link, the candidate is
    ``base`` plus plain names, inside by construction.  A link, or a part that is not one
    plain name, sends the whole candidate through ``os.path.realpath``, compared as text.

    :raises InvalidArgumentError: the path would land outside ``base``.
    """
    return Path(checked_below(base, *parts))


def checked_below(base: str, *parts: str) -> str:
    """:func:`contained_in`'s check; the candidate as a string (``os.path.join``).

    :raises InvalidArgumentError: the path would land outside ``base``.
    """
    candidate = os.path.join(base, *parts)
    if not _plain_below(base, parts):
        resolved = os.path.realpath(candidate)
        if resolved != base and not resolved.startswith(base.rstrip(os.sep) + os.sep):
            raise InvalidArgumentError(f"{candidate} resolves outside the download folder {base}")
    return candidate


def _plain_below(base: str, parts: tuple[str, ...]) -> bool:
    """True when ``parts`` are plain names and no existing one below ``base`` is a link."""
    path = base
    for part in parts:
        if part in ("", ".", "..") or os.sep in part or (os.altsep and os.altsep in part):
            return False
    for part in parts:
        path = os.path.join(path, part)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return False
        except OSError:  # missing (or not reachable): nothing below it can be a link either
            return True
    return True
