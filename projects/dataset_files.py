"""Checking an uploaded dataset file before anything is stored: its name, its size and its content.

Plain functions over an ``UploadedFile`` and local paths; the service (``projects.services``) calls
them and only then writes to storage. Every refusal is a ``ValidationError`` with a message meant
for the person who uploaded the file.
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from projects.models import Dataset

EXTENSION_FORMATS: dict[str, str] = {
    "csv": Dataset.Format.CSV,
    "tsv": Dataset.Format.TSV,
    "xlsx": Dataset.Format.XLSX,
    "parquet": Dataset.Format.PARQUET,
    "json": Dataset.Format.JSON,
}
TEXT_FORMATS = {Dataset.Format.CSV, Dataset.Format.TSV, Dataset.Format.JSON}
MAX_STEM_LENGTH = 100
COPY_CHUNK_BYTES = 1024 * 1024

# Signatures of common binary files, so a renamed file gets a message that says what it really is.
BINARY_SIGNATURES: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x7fELF", "an executable program (ELF)"),
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook must be named .xlsx)"),
    (b"PAR1", "a Parquet file (name it .parquet)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office file (.xls/.doc); save it as .xlsx"),
    (b"SQLite format 3\x00", "an SQLite database"),
]


@dataclass(frozen=True)
class SpooledDataset:
    """A validated upload copied to a local temporary file."""

    path: Path
    size: int
    format: str


def dataset_filename_sanitize(filename: str) -> str:
    """A safe file name: no folders, ASCII letters/digits/``._-`` only, the extension kept (lower case).

    Raises ``ValidationError`` when the extension is not a supported dataset format.
    """
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    stem, dot, ext = base.rpartition(".")
    ext = ext.lower()
    if not dot or ext not in EXTENSION_FORMATS:
        supported = ", ".join(f".{e}" for e in EXTENSION_FORMATS)
        raise ValidationError(f"“{filename}” is not a supported dataset type. Upload one of: {supported}.")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    stem = re.sub(r"[._-]*\.[._-]*", ".", stem)  # no ".." runs
    stem = stem.strip("._-")[:MAX_STEM_LENGTH].rstrip("._-") or "dataset"
    return f"{stem}.{ext}"


def dataset_filename_unique(name: str, *, taken: set[str]) -> str:
    """``name`` or ``stem-2.ext``, ``stem-3.ext``… whichever is not in ``taken``."""
    stem, _, ext = name.rpartition(".")
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}.{ext}", n + 1
    return candidate


def _format_size(n: int) -> str:
    return str(filesizeformat(n)).replace("\xa0", " ")


def dataset_size_check(size: int | None, *, max_bytes: int) -> None:
    """Refuse an empty file, or one over ``max_bytes`` (``size`` None: not known yet)."""
    if size == 0:
        raise ValidationError("The file is empty.")
    if size is not None and size > max_bytes:
        raise ValidationError(f"The file is too large ({_format_size(size)}); the limit is {_format_size(max_bytes)}.")


def _describe_binary(head: bytes) -> str | None:
    return next((what for magic, what in BINARY_SIGNATURES if head.startswith(magic)), None)


def _check_text_chunk(chunk: bytes, decoder: codecs.IncrementalDecoder, *, label: str, offset: int) -> None:
    if b"\x00" in chunk:
        raise ValidationError(f"This is not a {label} file: it contains binary data (NUL bytes).")
    try:
        decoder.decode(chunk)
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"This is not a {label} file in UTF-8: invalid byte at position {offset + exc.start}. "
            "Save it as UTF-8 text and upload it again."
        ) from exc


def _check_xlsx(path: Path) -> None:
    message = "This is not a valid Excel workbook (.xlsx)."
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ValidationError("Legacy Excel files (.xls) are not supported; save the workbook as .xlsx.")
    if not head.startswith(b"PK\x03\x04") or not zipfile.is_zipfile(path):
        raise ValidationError(message)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValidationError(message) from exc
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise ValidationError(message + " (It is a ZIP archive, but not a spreadsheet.)")


def _check_parquet(path: Path, size: int) -> None:
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(max(size - 4, 0))
        tail = fh.read(4)
    if size < 12 or head != b"PAR1" or tail != b"PAR1":
        raise ValidationError("This is not a valid Parquet file (it must start and end with the PAR1 marker).")


@contextmanager
def dataset_upload_spooled(uploaded_file: UploadedFile, *, name: str, max_bytes: int) -> Iterator[SpooledDataset]:
    """Copy ``uploaded_file`` to a local temporary file, checking size and content on the way.

    The copy is streamed in chunks (never read whole into memory); the size is checked before
    (from the upload's declared size) and while copying. Text formats must be UTF-8 without NUL
    bytes; binary formats must carry their signatures. The temporary file is removed on exit.
    """
    fmt = EXTENSION_FORMATS[name.rpartition(".")[2]]
    dataset_size_check(uploaded_file.size, max_bytes=max_bytes)
    label = Dataset.Format(fmt).label
    fd, tmp_name = tempfile.mkstemp(prefix="dataset-", suffix=f".{fmt}")
    path = Path(tmp_name)
    try:
        size = _copy_checked(uploaded_file, fd, fmt=fmt, label=label, max_bytes=max_bytes)
        dataset_size_check(size, max_bytes=max_bytes)
        if fmt == Dataset.Format.XLSX:
            _check_xlsx(path)
        elif fmt == Dataset.Format.PARQUET:
            _check_parquet(path, size)
        yield SpooledDataset(path=path, size=size, format=fmt)
    finally:
        path.unlink(missing_ok=True)


def _copy_checked(uploaded_file: UploadedFile, fd: int, *, fmt: str, label: str, max_bytes: int) -> int:
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = 0
    uploaded_file.seek(0)
    with os.fdopen(fd, "wb") as out:
        for chunk in uploaded_file.chunks(COPY_CHUNK_BYTES):
            if size == 0 and fmt in TEXT_FORMATS and (what := _describe_binary(chunk[:16])):
                raise ValidationError(f"This file looks like {what}, not a {label} file.")
            if fmt in TEXT_FORMATS:
                _check_text_chunk(chunk, decoder, label=label, offset=size)
            size += len(chunk)
            dataset_size_check(size if size > max_bytes else None, max_bytes=max_bytes)
            out.write(chunk)
    if fmt in TEXT_FORMATS and size:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"This is not a {label} file in UTF-8: it ends in the middle of a character."
            ) from exc
    return size
