"""Uploads: the limit is enforced while the body streams (not after), and a client's file name never becomes a path."""

from __future__ import annotations

import asyncio

import pytest

from birdcall.serve.uploads import BadUpload, UploadTooLarge, audio_suffix, client_name, receive_upload


class FakeRequest:
    """What receive_upload reads of a Starlette request: headers and the body as a stream of chunks (counted)."""

    def __init__(self, chunks, headers=None):
        self.chunks, self.headers, self.read = list(chunks), dict(headers or {}), 0

    async def stream(self):
        for chunk in self.chunks:
            self.read += 1
            yield chunk


def receive(request, folder, **kw):
    return asyncio.run(receive_upload(request, folder, **kw))


def multipart(payload: bytes, name: str = "rec.wav", boundary: str = "b0undary") -> bytes:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: audio/wav\r\n\r\n'
    return head.encode() + payload + f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize("kind", ["raw", "multipart"])
def test_the_limit_stops_the_stream_without_a_declared_length(tmp_path, kind):
    body = b"x" * 4096 * 100
    data = multipart(body) if kind == "multipart" else body
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    headers = {"content-type": "multipart/form-data; boundary=b0undary"} if kind == "multipart" else {}
    request = FakeRequest(chunks, headers)
    with pytest.raises(UploadTooLarge, match=r"larger than this server accepts \(0.01 MB"):
        receive(request, tmp_path, max_bytes=10_000)
    assert request.read <= 4  # 10 kB is exceeded within the third 4-kB chunk (the fourth with the part's header)
    assert (tmp_path / "upload.wav").stat().st_size <= 10_000 if kind == "multipart" else (tmp_path / "upload").stat().st_size <= 10_000


def test_a_declared_length_over_the_limit_is_refused_before_reading(tmp_path):
    request = FakeRequest([b"x" * 100], {"content-length": "20000"})
    with pytest.raises(UploadTooLarge):
        receive(request, tmp_path, max_bytes=10_000)
    assert request.read == 0 and list(tmp_path.iterdir()) == []


def test_raw_and_multipart_bodies_land_in_the_servers_own_file(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    raw = receive(FakeRequest([b"RIFF", b"data"], {"content-type": "audio/flac"}), tmp_path / "a", max_bytes=100, filename="../../x/My Rec.WAV")
    assert (raw.path, raw.name, raw.size) == (tmp_path / "a" / "upload.wav", "My Rec.WAV", 8)  # the name's extension wins
    data = multipart(b"fLaC1234", name="..\\..\\evil.flac")
    got = receive(FakeRequest([data[:10], data[10:]], {"content-type": "multipart/form-data; boundary=b0undary"}), tmp_path / "b", max_bytes=100)
    assert (got.path, got.name, got.size, got.path.read_bytes()) == (tmp_path / "b" / "upload.flac", "evil.flac", 8, b"fLaC1234")


def test_a_multipart_body_without_a_boundary_is_a_bad_upload(tmp_path):
    with pytest.raises(BadUpload, match="without a boundary"):
        receive(FakeRequest([b""], {"content-type": "multipart/form-data"}), tmp_path, max_bytes=100)


@pytest.mark.parametrize(("given", "shown"), [
    ("rec.wav", "rec.wav"), ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\dawn.flac", "dawn.flac"), ("/abs/x.ogg", "x.ogg"),
    ("bad\r\nname\t.wav", "badname.wav"), ("..", "upload"), (".", "upload"), ("", "upload"), (None, "upload"), ("dir/", "dir"),
    ("a" * 300 + ".wav", "a" * 196 + ".wav"),
])  # fmt: skip
def test_client_names_keep_only_a_safe_last_component(given, shown):
    assert client_name(given) == shown


@pytest.mark.parametrize(("filename", "content_type", "suffix"), [
    ("rec.FLAC", None, ".flac"), ("rec.exe", "audio/mpeg", ".mp3"), ("rec", "audio/wav; codecs=1", ".wav"),
    ("rec.sh", "text/plain", ""), (None, None, ""), ("../x.mp3/..", None, ""),
])  # fmt: skip
def test_the_suffix_comes_from_a_known_audio_extension_or_content_type(filename, content_type, suffix):
    assert audio_suffix(filename, content_type) == suffix
