"""Names that must not collide: class folders and archive members are compared in Unicode NFC and without
letter case, so 'Cat' and 'cat', or 'café' typed as NFC and as NFD, are caught as one name, in a folder
and in a zip."""

from __future__ import annotations

import re
import unicodedata

from core.data.errors import DatasetError


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def fold(name: str) -> str:
    """The form two names are compared in: NFC, case-folded."""
    return nfc(name).casefold()


def clash(a: str, b: str) -> DatasetError:
    """The one message for two folders whose names differ only in letter case or Unicode form."""
    return DatasetError(
        f"refused: the folders {a!r} and {b!r} have the same name but for letter case or Unicode "
        "form (NFC/NFD); rename or merge them, so that each class has one folder"
    )


class Register:
    """Remembers names by their folded form; ``add`` raises ``clash`` for a second spelling of a name."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def add(self, name: str) -> None:
        first = self.seen.setdefault(fold(name), name)
        if first != name:
            raise clash(first, name)


MAX_NAME_BYTES = 255  # a file or folder name on ext4, APFS, NTFS (in UTF-16 units there, fewer bytes)
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def path_part(text: str, prefix: str = "", max_bytes: int = MAX_NAME_BYTES) -> str:
    """The one way a user's text becomes a file or folder name: NFC; control characters and ``/ \\ : * ? "
    < >
    |`` become spaces, runs of white space one space; leading and trailing dots and spaces go; a Windows
    device name (CON, LPT1, ...) gets a '_'; then ``prefix + text`` is cut to ``max_bytes`` of UTF-8 at
    a character boundary. ``prefix`` (a run's id) is what makes the name unique to its owner; it is
    never cut."""
    safe = " ".join(_UNSAFE.sub(" ", nfc(text)).split()).strip(" .")
    if safe.split(".")[0].upper() in _RESERVED:
        safe = "_" + safe
    room = max_bytes - len(prefix.encode())
    if room < 0:
        raise ValueError(f"the prefix {prefix!r} alone is over {max_bytes} bytes")
    cut = safe.encode()[:room].decode("utf-8", errors="ignore").rstrip(" .")
    return (prefix + cut).rstrip(" ") if cut else prefix.rstrip(" ")
