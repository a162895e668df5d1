"""Request bodies over the live ASGI server: nothing is spooled past a route's cap, and an
anonymous request costs no more than the small cap wherever it is sent.

Django spools what it reads to ``FILE_UPLOAD_TEMP_DIR`` (here a private directory, and at once:
``FILE_UPLOAD_MAX_MEMORY_SIZE = 1``), so the bytes in that directory are the bytes the server
read. A thread samples them, open-but-unlinked temporary files included, while a raw socket
streams the body."""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import pytest

from messaging.models import Contact, ImportJob
from tests.support.people import key_for

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024
SENT = 40 * MB  # what each too-large request sends (or declares)
CHUNK = 64 * 1024


class Spool:
    """The peak number of bytes in ``directory``: its files and this process's open temporary
    files there (``TemporaryFile`` unlinks its file at once)."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Spool:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def size(self) -> int:
        total, seen = 0, set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith(self.directory):
                    stat = os.stat(f"/proc/self/fd/{fd}")
                    if (stat.st_dev, stat.st_ino) not in seen:
                        seen.add((stat.st_dev, stat.st_ino))
                        total += stat.st_size
            except OSError:
                continue
        for entry in os.scandir(self.directory):
            try:
                stat = entry.stat()
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) not in seen:
                total += stat.st_size
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.size())
            self._stop.wait(0.002)
        self.peak = max(self.peak, self.size())


@pytest.fixture
def spool(settings, tmp_path):
    directory = tmp_path / "spool"
    directory.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(directory)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1  # every byte read goes to disk, where it is counted
    return directory


def send(server, path: str, *, headers: dict[str, str], body: bytes | int, chunked=False):
    """POST over a raw socket; ``body`` an int sends that many bytes of filler. Stops sending as
    soon as the server answers. Returns (status, headers, body) of the answer."""
    size = body if isinstance(body, int) else len(body)
    lines = [f"POST {path} HTTP/1.1", f"Host: {server.host}:{server.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    sock = socket.create_connection((server.host, server.port), timeout=30)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sock.setblocking(False)
        offset, answered = 0, b""
        while offset < size or chunked:
            try:
                answered += sock.recv(65536)
                break  # the server answered (or closed): stop sending
            except BlockingIOError:
                pass
            piece = (
                body[offset : offset + CHUNK]
                if isinstance(body, bytes)
                else b"x" * min(CHUNK, size - offset)
            )
            if chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece) if piece else b"0\r\n\r\n"
            try:
                sock.setblocking(True)
                sock.sendall(piece)
                sock.setblocking(False)
            except (BrokenPipeError, ConnectionResetError):
                break
            if chunked and piece == b"0\r\n\r\n":
                break
            offset += CHUNK
        sock.setblocking(True)
        while b"\r\n\r\n" not in answered or not _complete(answered):
            data = sock.recv(65536)
            if not data:
                break
            answered += data
    finally:
        sock.close()
    head, _sep, content = answered.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1").lower(), content


def _complete(answer: bytes) -> bool:
    head, _sep, content = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    return length is not None and len(content) >= int(length.group(1))


def multipart(name: str, content: bytes, fields: dict[str, str] | None = None):
    boundary = "parleyboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in (fields or {}).items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def csv_of(size: int) -> bytes:
    """About ``size`` bytes of contacts (numbers repeat past 100,000 rows: only the size matters)."""
    rows = b"".join(b"Someone %d,+4477009%05d\n" % (n, n) for n in range(100_000))
    return b"name,phone\n" + (rows * (size // len(rows) + 1))[:size]


SMALL = "PARLEY_REQUEST_MAX_BYTES"


# --- Anonymous requests: at most the small cap, anywhere -----------------------------------------


@pytest.mark.parametrize("path", ["/login/", "/api/v1/contacts/", "/api/v1/imports/"])
def test_an_anonymous_declared_large_body_is_refused_before_a_byte_is_read(
    asgi_server, spool, path
):
    with Spool(spool) as disk:
        status, head, content = send(
            asgi_server, path, headers={"Content-Type": "multipart/form-data"}, body=SENT
        )
    assert status == 413
    assert disk.peak == 0
    if path.startswith("/api/"):
        assert b'"code": "too_large"' in content or b'"code":"too_large"' in content
    else:
        assert b"The request is too large" in content and "text/html" in head
        assert "content-security-policy: default-src 'self'" in head


@pytest.mark.parametrize("path", ["/login/", "/api/v1/contacts/", "/api/v1/imports/"])
def test_an_anonymous_streamed_body_is_cut_off_at_the_small_cap(asgi_server, spool, settings, path):
    with Spool(spool) as disk:
        status, _head, _content = send(
            asgi_server,
            path,
            headers={"Content-Type": "multipart/form-data; boundary=x"},
            body=SENT,
            chunked=True,
        )
    assert status == 413
    assert disk.peak <= getattr(settings, SMALL) + CHUNK


def test_a_forged_key_gets_no_more_than_an_anonymous_request(asgi_server, spool, settings):
    settings.PARLEY_IMPORT_MAX_BYTES = 20 * MB
    body, content_type = multipart("people.csv", csv_of(8 * MB))
    with Spool(spool) as disk:
        status, _head, _content = send(
            asgi_server,
            "/api/v1/imports/",
            headers={"Content-Type": content_type, "Authorization": "Bearer prl_forged_key"},
            body=body,
        )
    assert status == 413
    assert disk.peak == 0


# --- Members: an upload route's own cap --------------------------------------------------------


def test_a_member_uploads_a_file_larger_than_the_small_cap(asgi_server, cast, spool, settings):
    settings.PARLEY_IMPORT_MAX_BYTES = 20 * MB
    body, content_type = multipart("people.csv", csv_of(8 * MB))
    key = key_for(cast.agent, cast.org_a)

    status, _head, content = send(
        asgi_server,
        "/api/v1/imports/",
        headers={"Content-Type": content_type, "Authorization": f"Bearer {key}"},
        body=body,
    )

    assert status == 201, content[:300]
    assert ImportJob.objects.get().headers == ["name", "phone"]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_members_upload_past_the_routes_cap_is_refused_without_filling_a_disk(
    asgi_server, cast, spool, settings, chunked
):
    settings.PARLEY_IMPORT_MAX_BYTES = 8 * MB
    key = key_for(cast.agent, cast.org_a)
    with Spool(spool) as disk:
        status, _head, content = send(
            asgi_server,
            "/api/v1/imports/",
            headers={
                "Content-Type": "multipart/form-data; boundary=x",
                "Authorization": f"Bearer {key}",
            },
            body=SENT,
            chunked=chunked,
        )
    assert status == 413
    assert b"at most 8 MB here" in content
    assert disk.peak <= (8 * MB + CHUNK if chunked else 0)
    assert not ImportJob.objects.exists()


def test_a_signed_in_member_uploads_a_large_file_from_the_dashboard(
    asgi_server, cast, spool, settings, client
):
    settings.PARLEY_IMPORT_MAX_BYTES = 20 * MB
    client.force_login(cast.agent)
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    page = client.get("/o/acme/contacts/import/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    cookie = f"sessionid={cookies['sessionid']}; csrftoken={client.cookies['csrftoken'].value}"
    body, content_type = multipart(
        "people.csv", csv_of(4 * MB), {"csrfmiddlewaretoken": token.decode()}
    )

    status, head, content = send(
        asgi_server,
        "/o/acme/contacts/import/",
        headers={"Content-Type": content_type, "Cookie": cookie, "Origin": asgi_server.url},
        body=body,
    )

    assert status == 302, content[:500]
    job = ImportJob.objects.get()
    assert f"/o/acme/contacts/import/{job.pk}/" in head
    assert not Contact.objects.exists()  # a draft: nothing imported until it is started


def test_a_signed_out_browser_cannot_push_a_large_file_at_the_dashboard(asgi_server, spool):
    body, content_type = multipart("people.csv", csv_of(4 * MB))
    with Spool(spool) as disk:
        status, _head, content = send(
            asgi_server,
            "/o/acme/contacts/import/",
            headers={"Content-Type": content_type, "Cookie": "sessionid=not-a-session"},
            body=body,
        )
    assert status == 413 and b"The request is too large" in content
    assert disk.peak == 0
