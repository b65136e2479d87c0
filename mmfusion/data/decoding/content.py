"""What a file holds, from its first bytes (its magic number), whatever its name says: so that
an MP3 in the CT folder, or a PNG given as a cough, is refused naming what it is instead of
being decoded as the wrong kind of input."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from mmfusion.errors import DataError

#: (offset, magic bytes, what the file is, its kind)
SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image", "image"),
    (0, b"\xff\xd8\xff", "a JPEG image", "image"),
    (0, b"II*\x00", "a TIFF image", "image"),
    (0, b"MM\x00*", "a TIFF image", "image"),
    (0, b"BM", "a BMP image", "image"),
    (0, b"GIF8", "a GIF image", "image"),
    (128, b"DICM", "a DICOM file", "image"),
    (0, b"fLaC", "FLAC audio", "audio"),
    (0, b"OggS", "Ogg audio", "audio"),
    (0, b"ID3", "MP3 audio", "audio"),
    (0, b"\xff\xfb", "MP3 audio", "audio"),
    (0, b"\xff\xf3", "MP3 audio", "audio"),
    (0, b"\xff\xf2", "MP3 audio", "audio"),
    (4, b"ftyp", "MP4 / M4A media", "audio"),
)


def identify(path: Path) -> tuple[str, str] | None:
    """(what the file is, "image" or "audio") from its first bytes, or None when unknown."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return None  # the decoder names the read error
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV audio", "audio"
    for offset, magic, what, kind in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return what, kind
    return None


def identify_kind(path: Path) -> str | None:
    """ "image", "audio", or None when the first bytes do not say."""
    found = identify(path)
    return found[1] if found else None


def refuse_other_kind(path: Path, modality: str, accepts: Collection[str], hint: str = "") -> None:
    """A DataError naming what the file is when its content is known to be of a kind that
    `modality` does not take (`accepts`: "image", "audio")."""
    found = identify(path)
    if found is not None and found[1] not in accepts:
        wanted = " or ".join("images" if kind == "image" else kind for kind in accepts)
        raise DataError(f"{path} is {found[0]}, but {modality} files must be {wanted}{hint}")
