"""Unpacking a directory import's zip within caps: no zip bomb fills the disk or the memory.

A zip of a few kilobytes can inflate to gigabytes (deflate reaches ~1000:1; nested or
overlapping members more). Before anything is unpacked, the archive's own directory is
read and refused when

- its members (the ``.csv`` and ``.json`` an import reads) would unpack to more than
  ``directory_import_max_unpacked_bytes`` in all (``WEINTERVENE_DIRECTORY_IMPORT_MAX_UNPACKED_BYTES``), or
- one member larger than :data:`RATIO_CHECKED_FROM` would grow more than
  ``directory_import_max_ratio`` times its compressed size (``WEINTERVENE_DIRECTORY_IMPORT_MAX_RATIO``).
  Small members are spared the ratio: a short CSV of repeated commas compresses very
  well and harms nobody.

Then each member is copied in chunks, counting what really comes out: a member whose
header understates its size is stopped at the cap as well (zipfile itself stops at the
declared size and checks the CRC, so this is the second belt).

The refusal (:class:`ArchiveRefused`, a ``LayoutError``) names the cap and its setting:
the API answers 413 with it, ``weintervene import-directory`` prints it and exits 2.

Example::

    >>> unpack_zip(Path("bomb.zip"), Path("/tmp/x"), max_unpacked=512 << 20, max_ratio=100)
    ArchiveRefused: bomb.zip: huge.csv would unpack 1032 times its compressed size; the cap is 100
    (WEINTERVENE_DIRECTORY_IMPORT_MAX_RATIO).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import BinaryIO

from services.directory.layouts import LayoutError
from weintervene.errors import BadRequest, PayloadTooLarge

# Members below this are not held to the ratio (see the module's docstring).
RATIO_CHECKED_FROM = 1024 * 1024
CHUNK = 1024 * 1024
READ_SUFFIXES = (".csv", ".json")


class ArchiveRefused(LayoutError):
    """An archive over a cap; the message names the cap and the setting that sets it."""


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def members_to_read(archive: zipfile.ZipFile, name: str, max_unpacked: int, max_ratio: int) -> list[zipfile.ZipInfo]:
    """The members an import reads, checked against the caps from the archive's directory alone."""
    kept, total = [], 0
    for info in archive.infolist():
        member = Path(info.filename)
        if info.is_dir() or not member.name or ".." in member.parts or not member.name.endswith(READ_SUFFIXES):
            continue
        if info.file_size > RATIO_CHECKED_FROM and info.file_size > max_ratio * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise ArchiveRefused(
                f"{name}: {member.name} would unpack {ratio} times its compressed size; the cap is {max_ratio} "
                f"(WEINTERVENE_DIRECTORY_IMPORT_MAX_RATIO).")
        total += info.file_size
        if total > max_unpacked:
            raise ArchiveRefused(
                f"{name} would unpack to more than {_mib(max_unpacked)}, the cap "
                f"(WEINTERVENE_DIRECTORY_IMPORT_MAX_UNPACKED_BYTES).")
        kept.append(info)
    return kept


def check_zip(source: str | Path | BinaryIO, name: str, max_unpacked: int, max_ratio: int) -> None:
    """Refuse (``ArchiveRefused``) an archive over the caps, or (``LayoutError``) one that is no zip."""
    try:
        with zipfile.ZipFile(source) as archive:
            members_to_read(archive, name, max_unpacked, max_ratio)
    except zipfile.BadZipFile as exc:
        raise LayoutError(f"{name} is not a valid zip file: {exc}") from None


def unpack_zip(path: Path, folder: Path, max_unpacked: int, max_ratio: int) -> None:
    """The archive's ``.csv`` and ``.json`` members into ``folder`` (flat, by their own
    names), within the caps; ``ArchiveRefused`` or ``LayoutError`` otherwise."""
    written = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in members_to_read(archive, path.name, max_unpacked, max_ratio):
                with archive.open(info) as member, (folder / Path(info.filename).name).open("wb") as out:
                    while chunk := member.read(CHUNK):
                        written += len(chunk)
                        if written > max_unpacked:
                            raise ArchiveRefused(
                                f"{path.name} unpacks to more than {_mib(max_unpacked)}, the cap "
                                f"(WEINTERVENE_DIRECTORY_IMPORT_MAX_UNPACKED_BYTES).")
                        out.write(chunk)
    except zipfile.BadZipFile as exc:
        raise LayoutError(f"{path.name} is not a valid zip file: {exc}") from None


def refuse_upload_over_caps(content: bytes, name: str, caps) -> None:
    """For an upload (``POST /api/v1/directory/imports``): 413 ``archive_too_large`` naming
    the cap, or 400 ``invalid_archive``, before a job is started.

    Example: refuse_upload_over_caps(bomb, "bomb.zip", settings()) -> PayloadTooLarge("bomb.zip would unpack…")
    """
    try:
        check_zip(io.BytesIO(content), name, caps.directory_import_max_unpacked_bytes, caps.directory_import_max_ratio)
    except ArchiveRefused as exc:
        raise PayloadTooLarge(str(exc), code="archive_too_large") from None
    except LayoutError as exc:
        raise BadRequest(str(exc), code="invalid_archive") from None
