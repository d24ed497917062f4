"""Uploads streamed to a temporary file, with the size limit checked while they arrive.

A request's body is either ``multipart/form-data`` with one file part (``curl -F file=@rec.wav``; parsed as it
streams by python-multipart, never spooled by the framework) or the audio itself (``curl --data-binary
@rec.wav``, any other content type). The bytes go to ``upload<suffix>`` in a folder the server made for the
request; the client's file name only gives the name shown back to it (:func:`client_name`) and, if it is one
of :data:`~birdcall.audio.AUDIO_EXTENSIONS`, the suffix. It is never part of a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..audio import AUDIO_EXTENSIONS
from ..errors import BirdcallError

__all__ = ["BadUpload", "Upload", "UploadTooLarge", "audio_suffix", "client_name", "receive_upload"]

MULTIPART_SLACK = 1 << 20  # bytes of a multipart body beyond its file (boundaries, part headers, small fields)
_CONTENT_TYPES = {
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav", "audio/flac": ".flac",
    "audio/x-flac": ".flac", "audio/ogg": ".ogg", "application/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp3": ".mp3",
    "audio/aiff": ".aiff", "audio/x-aiff": ".aiff",
}  # fmt: skip
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
MAX_NAME = 200


class UploadTooLarge(BirdcallError):
    """The upload is larger than the server accepts (HTTP 413)."""


class BadUpload(BirdcallError):
    """The request body is not an upload the server understands (HTTP 400)."""


@dataclass(frozen=True)
class Upload:
    """An upload on the server's disk: ``path`` (the server's own name), ``name`` (the client's, for display), bytes."""

    path: Path
    name: str
    size: int


def client_name(filename: str | None) -> str:
    """The client's file name as shown back to it: its last path component (``/`` or ``\\``), without control
    characters, at most :data:`MAX_NAME` characters; ``"upload"`` when nothing is left."""
    text = _UNSAFE.sub("", str(filename or "")).replace("\\", "/")
    name = PurePosixPath(text).name.strip()
    if name in ("", ".", ".."):
        return "upload"
    return name[-MAX_NAME:]


def audio_suffix(filename: str | None, content_type: str | None) -> str:
    """The suffix of the server's copy: the client name's if it is an audio extension birdcall reads, else the
    content type's, else none (the decoder then goes by the file's header)."""
    suffix = PurePosixPath(client_name(filename)).suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return suffix
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return _CONTENT_TYPES.get(media, "")


class _Sink:
    """The upload's file on disk, with the byte count that enforces the limit as data arrives."""

    def __init__(self, folder: Path, suffix: str, max_bytes: int):
        self.path = folder / f"upload{suffix}"
        self.max_bytes = max_bytes
        self.size = 0
        self.handle = open(self.path, "xb")  # noqa: SIM115 - closed by close(), also on errors

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise UploadTooLarge(_too_large(self.max_bytes))
        self.handle.write(data)

    def close(self) -> None:
        self.handle.close()


def _too_large(max_bytes: int) -> str:
    return f"the upload is larger than this server accepts ({max_bytes / 1e6:g} MB; see --max-upload-mb)"


async def receive_upload(request, folder: Path, *, max_bytes: int, filename: str | None = None) -> Upload:
    """Stream the body of ``request`` (a Starlette request) into ``folder``.

    Args:
        request: the HTTP request.
        folder: an empty folder the server made for this request.
        max_bytes: largest file accepted; checked against ``Content-Length`` first, then as bytes arrive.
        filename: the client's file name for a raw body (a multipart file part names its own).

    Raises:
        UploadTooLarge: more than ``max_bytes`` (nothing more is read).
        BadUpload: a malformed multipart body, none or several file parts.
        starlette.requests.ClientDisconnect: the client went away.
    """
    content_type = request.headers.get("content-type", "")
    multipart = content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + (MULTIPART_SLACK if multipart else 0):
        raise UploadTooLarge(_too_large(max_bytes))
    if multipart:
        return await _receive_multipart(request, folder, content_type, max_bytes)
    sink = _Sink(folder, audio_suffix(filename, content_type), max_bytes)
    try:
        async for chunk in request.stream():
            sink.write(chunk)
    finally:
        sink.close()
    return Upload(sink.path, client_name(filename), sink.size)


class _Parts:
    """python-multipart callbacks: the first part with a file name (or named ``file``) goes to a :class:`_Sink`."""

    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = folder, max_bytes
        self.headers: dict[bytes, bytes] = {}
        self.field, self.value = b"", b""
        self.sink: _Sink | None = None
        self.current: _Sink | None = None
        self.name: str | None = None
        self.complete = False

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.part_begin, "on_header_field": self.header_field, "on_header_value": self.header_value,
            "on_header_end": self.header_end, "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }  # fmt: skip

    def part_begin(self) -> None:
        self.headers, self.field, self.value, self.current = {}, b"", b"", None

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.field.strip().lower()] = self.value.strip()
        self.field, self.value = b"", b""

    def headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        field_name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None and field_name != "file":
            return  # a plain form field: ignored (options travel in the query string)
        if self.sink is not None:
            raise BadUpload("send one file per request")
        name = filename.decode("utf-8", "replace") if filename is not None else None
        content_type = self.headers.get(b"content-type", b"").decode("latin-1")
        self.sink = self.current = _Sink(self.folder, audio_suffix(name, content_type), self.max_bytes)
        self.name = client_name(name)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.current is not None:
            self.current.write(memoryview(data)[start:end])

    def part_end(self) -> None:
        if self.current is not None:
            self.current.close()
            self.complete = True
        self.current = None


async def _receive_multipart(request, folder: Path, content_type: str, max_bytes: int) -> Upload:
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadUpload("multipart/form-data without a boundary")
    parts = _Parts(folder, max_bytes)
    received = 0
    try:
        parser = MultipartParser(boundary, parts.callbacks())
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + MULTIPART_SLACK:
                raise UploadTooLarge(_too_large(max_bytes))
            parser.write(chunk)
        parser.finalize()
    except (MultipartParseError, ValueError) as err:
        raise BadUpload(f"malformed multipart body ({' '.join(str(err).split())[:200]})") from None
    finally:
        if parts.sink is not None:
            parts.sink.close()
    if parts.sink is None:
        raise BadUpload("the multipart body has no file (send the audio as the form field 'file')")
    if not parts.complete:
        raise BadUpload("the multipart body ends inside its file part")
    return Upload(parts.sink.path, parts.name or "upload", parts.sink.size)
