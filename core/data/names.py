"""Names that must not collide: class folders and archive members are compared in Unicode NFC and without letter
case, so 'Cat' and 'cat', or 'café' typed as NFC and as NFD, are caught as one name, in a folder and in a zip."""
from __future__ import annotations

import unicodedata

from core.data.errors import DatasetError


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def fold(name: str) -> str:
    """The form two names are compared in: NFC, case-folded."""
    return nfc(name).casefold()


def clash(a: str, b: str) -> DatasetError:
    """The one message for two folders whose names differ only in letter case or Unicode form."""
    return DatasetError(f"refused: the folders {a!r} and {b!r} have the same name but for letter case or Unicode "
                        "form (NFC/NFD); rename or merge them, so that each class has one folder")


class Register:
    """Remembers names by their folded form; ``add`` raises ``clash`` for a second spelling of a name."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def add(self, name: str) -> None:
        first = self.seen.setdefault(fold(name), name)
        if first != name:
            raise clash(first, name)
