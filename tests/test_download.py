"""URL downloads against a real local HTTP server: a cut transfer resumes with a Range request,
a file changed on the server starts over, and the dump folder's published sha1 is checked."""
import hashlib
import http.server
import threading

import pytest

from workflow_scripts.data.sources import download
from workflow_scripts.errors import BadInput

NAME = "enwiki-20240301-pages-articles.xml.bz2"


class DumpServer(http.server.ThreadingHTTPServer):
    """Serves /enwiki/20240301/NAME (honouring Range and If-Range, as Wikimedia's servers do) and
    the folder's sha1sums file; `cut_after` bytes into a response it drops the connection."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files = {}
        self.cut_after = None          # bytes of a body to send before dropping the connection
        self.ranges = []               # the Range header of each request for the dump (None: none)
        self.honour_range = True

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        start = 0
        if self.path.endswith(".bz2"):
            self.server.ranges.append(self.headers.get("Range"))
            asked = self.headers.get("Range")
            if asked and self.server.honour_range and self.headers.get("If-Range") in (None, etag):
                start = int(asked.removeprefix("bytes=").rstrip("-"))
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", etag)
        self.end_headers()
        rest = body[start:]
        if self.server.cut_after is not None and self.path.endswith(".bz2"):
            rest, self.server.cut_after = rest[: self.server.cut_after], None   # once
            self.close_connection = True
        self.wfile.write(rest)


@pytest.fixture
def server():
    srv = DumpServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def publish(server, body, listed_sha1=None):
    server.files[f"/enwiki/20240301/{NAME}"] = body
    sha1 = listed_sha1 or hashlib.sha1(body).hexdigest()
    other = "0" * 40
    server.files["/enwiki/20240301/enwiki-20240301-sha1sums.txt"] = (
        f"{other}  enwiki-20240301-pages-articles1.xml.bz2\n{sha1}  {NAME}\n").encode()
    return server.url(f"/enwiki/20240301/{NAME}")


def test_sha1sums_url_follows_the_dump_naming():
    assert download.sha1sums_url(f"https://dumps.wikimedia.org/enwiki/20240301/{NAME}") == (
        "https://dumps.wikimedia.org/enwiki/20240301/enwiki-20240301-sha1sums.txt")
    assert download.sha1sums_url("https://dumps.wikimedia.org/dewiki/latest/dewiki-latest-pages-articles.xml.bz2") == (
        "https://dumps.wikimedia.org/dewiki/latest/dewiki-latest-sha1sums.txt")
    assert download.sha1sums_url("https://example.org/data/books.jsonl.gz") is None


def test_a_cut_download_resumes_where_it_stopped_and_is_checked(server, tmp_path, capsys):
    body = bytes(range(256)) * 4000                       # ~1 MB, more than one read chunk
    url = publish(server, body)
    out = tmp_path / "wiki" / NAME
    server.cut_after = 300_000
    with pytest.raises(BadInput, match=r"run again to resume$") as cut:
        download.download(url, out)
    assert "\n" not in str(cut.value) and not out.exists()
    assert download.partial_path(out).stat().st_size == 300_000
    assert download.download(url, out) == len(body)
    assert out.read_bytes() == body
    assert server.ranges == [None, "bytes=300000-"]       # the second request asked for the rest only
    log = capsys.readouterr().out
    assert "resuming at 300,000 bytes" in log and f"sha1 {hashlib.sha1(body).hexdigest()} as published" in log
    assert sorted(p.name for p in out.parent.iterdir()) == [NAME]   # no partial file, no validator left


def test_a_file_changed_on_the_server_starts_over(server, tmp_path):
    url = publish(server, b"a" * 200_000)
    out = tmp_path / NAME
    server.cut_after = 50_000
    with pytest.raises(BadInput):
        download.download(url, out)
    publish(server, b"b" * 150_000)                       # a new dump under the same name: If-Range fails
    download.download(url, out)
    assert out.read_bytes() == b"b" * 150_000


def test_a_server_that_ignores_range_sends_it_whole(server, tmp_path):
    body = b"xyz" * 100_000
    url = publish(server, body)
    out = tmp_path / NAME
    server.cut_after, server.honour_range = 10_000, False
    with pytest.raises(BadInput):
        download.download(url, out)
    download.download(url, out)
    assert out.read_bytes() == body and server.ranges[1] == "bytes=10000-"


def test_a_sha1_mismatch_removes_the_copy_in_one_line(server, tmp_path):
    url = publish(server, b"dump bytes", listed_sha1="1" * 40)
    out = tmp_path / NAME
    with pytest.raises(BadInput) as bad:
        download.download(url, out)
    assert str(bad.value) == (f"download: {url}: sha1 {hashlib.sha1(b'dump bytes').hexdigest()}, but "
                              f"enwiki-20240301-sha1sums.txt beside it says {'1' * 40}; the copy was removed: run again")
    assert not list(tmp_path.iterdir())


def test_without_a_published_sha1_the_download_is_kept_unchecked(server, tmp_path, capsys):
    url = publish(server, b"dump bytes")
    del server.files["/enwiki/20240301/enwiki-20240301-sha1sums.txt"]
    download.download(url, tmp_path / NAME)
    assert (tmp_path / NAME).read_bytes() == b"dump bytes"
    assert "no published sha1 to check" in capsys.readouterr().out
