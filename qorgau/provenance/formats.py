"""What a file is, from its bytes (never from its name alone): the formats qorgau labels and how.

Each format says which warning it can carry (L-AI-LABEL asks for "a visible or other warning the user perceives
unobstructed"): a band drawn into the picture for images and every video frame, a spoken notice before the sound
for WAV, a band on every page of a PDF, a first paragraph in a Word document, a disclosure line for text. For the
formats where qorgau can't add one without re-encoding into another format (MP3, FLAC, M4A, spreadsheets,
presentations), the file still gets its signed C2PA marking and the label says that no warning was added, so the
operator knows to add one where the content is shown (docs/labels.md, "Warnings by format").
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from ..core.errors import InvalidInput


@dataclass(frozen=True)
class Format:
    name: str          # png, jpeg, webp, tiff, gif, wav, mp3, flac, m4a, mp4, mov, pdf, docx, xlsx, pptx, text
    media_type: str    # what c2pa is told
    extension: str
    kind: str          # image | video | audio | document | text
    warning: str       # band | video-band | audible | pdf-band | docx-notice | disclosure-line | none


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("png", "image/png", ".png", "image", "band"),
    Format("jpeg", "image/jpeg", ".jpg", "image", "band"),
    Format("webp", "image/webp", ".webp", "image", "band"),
    Format("tiff", "image/tiff", ".tif", "image", "band"),
    Format("gif", "image/gif", ".gif", "image", "band"),
    Format("wav", "audio/wav", ".wav", "audio", "audible"),
    Format("mp3", "audio/mpeg", ".mp3", "audio", "none"),
    Format("flac", "audio/flac", ".flac", "audio", "none"),
    Format("m4a", "audio/mp4", ".m4a", "audio", "none"),
    Format("mp4", "video/mp4", ".mp4", "video", "video-band"),
    Format("mov", "video/quicktime", ".mov", "video", "video-band"),
    Format("pdf", "application/pdf", ".pdf", "document", "pdf-band"),
    Format("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx", "document",
           "docx-notice"),
    Format("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx", "document", "none"),
    Format("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx", "document",
           "none"),
    Format("text", "text/plain", ".txt", "text", "disclosure-line"),
)}

TEXT_EXTENSIONS = (".txt", ".md", ".markdown", ".text", ".csv", ".html", ".htm", ".json")
SUPPORTED = ", ".join(sorted(FORMATS))


def _zip_kind(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return None


def _mp4_kind(data: bytes) -> str:
    brand = data[8:12]
    if brand == b"qt  ":
        return "mov"
    if brand in (b"M4A ", b"M4B "):
        return "m4a"
    return "mp4"


def sniff(data: bytes, filename: str | None = None, *, field: str = "file") -> Format:
    """The format of ``data``; InvalidInput naming ``field`` when qorgau doesn't handle it."""
    if not data:
        raise InvalidInput("the file is empty", field=field)
    head = data[:16]
    name: str | None = None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        name = "png"
    elif head.startswith(b"\xff\xd8\xff"):
        name = "jpeg"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        name = "webp"
    elif head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        name = "wav"
    elif head[:4] in (b"II*\x00", b"MM\x00*"):
        name = "tiff"
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        name = "gif"
    elif head[4:8] == b"ftyp":
        name = _mp4_kind(data)
    elif head.startswith(b"%PDF-"):
        name = "pdf"
    elif head.startswith(b"fLaC"):
        name = "flac"
    elif head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        name = "mp3"
    elif head.startswith(b"PK\x03\x04"):
        name = _zip_kind(data)
    elif _is_text(data, filename):
        name = "text"
    if name is None:
        raise InvalidInput(f"unsupported file format (qorgau labels {SUPPORTED})", field=field)
    return FORMATS[name]


def _is_text(data: bytes, filename: str | None) -> bool:
    if b"\x00" in data[:65536]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if filename and not filename.lower().endswith(TEXT_EXTENSIONS) and "." in filename.rsplit("/", 1)[-1]:
        return False  # a binary format we don't know that happens to be valid UTF-8
    return True
