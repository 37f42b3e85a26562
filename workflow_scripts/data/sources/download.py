"""Download one corpus file (an http, https or file URL) into resources/, streamed and atomic.

    python -m workflow_scripts.data.sources.download --url https://dumps.wikimedia.org/.../pages-articles-multistream.xml.bz2 \
        --out resources/corpora/wiki/enwiki-...-pages-articles-multistream.xml.bz2

The file is written under a dot-name beside it (`.NAME.partial`, which no rule declares, so
Snakemake leaves it alone) and renamed when complete (and, where the server says how long it is,
only when every byte arrived), so a killed or failed download never leaves a file that looks
whole. Run again, it resumes where the partial file ends (an HTTP Range request, If-Range on the
ETag or Last-Modified the first response gave, so a file changed on the server starts over).
Where the URL's folder publishes a Wikimedia-style `<wiki>-<date>-sha1sums.txt` listing the file,
the whole file is checked against it before the rename. Snakemake then keeps it: fetched once.
"""
import argparse
import hashlib
import json
import os
import re
import time
import urllib.parse
from pathlib import Path, PurePosixPath

from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors

URL_SCHEMES = ("http://", "https://", "file://")
CHUNK = 1 << 20
# The characters a local copy's file name keeps (letters, digits, _ . + - and space); the download
# rule's `filename` wildcard allows these only. Spaces are kept (the rules quote every path).
FILENAME_CHARS = r"\w .+-"
FILENAME_PATTERN = rf"[{FILENAME_CHARS}]+"


def is_url(path: str) -> bool:
    return path.lower().startswith(URL_SCHEMES)


def url_filename(url: str) -> str:
    """The file name a URL ends with (percent-decoded), for the local copy, sanitised
    deterministically rather than refused: the name comes from a URL the user may not choose, and
    it becomes a path in resources/ and in shell commands. Each run of other characters (quotes,
    ; $ ( ) ` { } * ? and the like) becomes one `_`, so the suffix that says the format
    (.xml.bz2, .jsonl.gz) survives; a name that would be hidden or empty gets a `download` prefix.
    urlsplit, not urlparse: a `;` belongs to the name, it does not start URL parameters."""
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    name = re.sub(rf"[^{FILENAME_CHARS}]+", "_", name)
    return name if re.match(r"\w", name) else "download" + name


def partial_path(out) -> Path:
    """Where an unfinished download of `out` lives between runs (its validator beside it, + .json)."""
    out = Path(out)
    return out.with_name(f".{out.name}.partial")


def sha1sums_url(url: str) -> str | None:
    """The Wikimedia dump folder's checksum list for `url` (`enwiki-20240301-pages-articles.xml.bz2`
    -> `enwiki-20240301-sha1sums.txt` beside it; `latest` stands for a date too), or None where the
    file name does not follow the dump naming."""
    parts = urllib.parse.urlsplit(url)
    name = PurePosixPath(urllib.parse.unquote(parts.path)).name
    m = re.match(r"([A-Za-z0-9_]+)-(\d{8}|latest)-", name)
    if not m:
        return None
    folder = parts.path[: parts.path.rfind("/") + 1]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"{folder}{m[1]}-{m[2]}-sha1sums.txt", "", ""))


def published_sha1(url: str) -> str | None:
    """The sha1 the dump's folder publishes for this file, or None (no list there, or not listed)."""
    import urllib.error
    import urllib.request

    listing = sha1sums_url(url)
    if listing is None:
        return None
    try:
        with urllib.request.urlopen(listing, timeout=60) as response:
            text = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None   # no checksum list published there: nothing to check against
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    for line in text.splitlines():
        digest, _, listed = line.strip().partition("  ")
        if listed.lstrip("*") == name and re.fullmatch(r"[0-9a-fA-F]{40}", digest):
            return digest.lower()
    return None


def _open(url: str, have: int, validator: str | None):
    """(response, bytes of the partial file to keep): a Range request for the rest where a partial
    file and its validator exist; a server that ignores Range (200) or no longer has the same file
    (If-Range fails: 200) sends it whole, and we start over."""
    import urllib.error
    import urllib.request

    headers = {"Range": f"bytes={have}-", "If-Range": validator} if have and validator else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not headers:       # 416: the partial file is no prefix of this file
            raise
        return urllib.request.urlopen(url, timeout=60), 0
    kept = have if headers and response.status == 206 else 0
    if kept and not (response.headers.get("Content-Range") or "").startswith(f"bytes {have}-"):
        response.close()
        return urllib.request.urlopen(url, timeout=60), 0
    return response, kept


def _validator(response) -> str | None:
    """What If-Range may name on a resume: a strong ETag, else Last-Modified."""
    etag = response.headers.get("ETag")
    return etag if etag and not etag.startswith("W/") else response.headers.get("Last-Modified")


def _fetch(url: str, part: Path, progress_every: int) -> tuple[int, int | None, str]:
    """Append the rest of `url` to `part` (resuming it); returns (bytes in part, expected total, sha1)."""
    meta = part.with_name(part.name + ".json")
    saved = json.loads(meta.read_text()) if meta.exists() and part.exists() else {}
    have = part.stat().st_size if saved.get("url") == url else 0
    response, kept = _open(url, have, saved.get("validator") if have else None)
    with response:
        length = response.headers.get("Content-Length")
        total = kept + int(length) if length and length.isdigit() else None
        meta.write_text(json.dumps({"url": url, "validator": _validator(response)}))
        digest = hashlib.sha1()
        with open(part, "r+b" if kept else "wb") as f:
            while kept and f.tell() < kept and (block := f.read(min(CHUNK, kept - f.tell()))):
                digest.update(block)     # what an earlier run fetched
            f.truncate(kept)
            print(f"download: {url} -> {part}" + (f", resuming at {kept:,} bytes" if kept else "")
                  + (f" ({total / 1e6:,.1f} MB)" if total else ""), flush=True)
            done, next_report, started = kept, kept + progress_every, time.monotonic()
            while chunk := response.read(CHUNK):
                f.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if done >= next_report:
                    next_report += progress_every
                    rate = (done - kept) / max(time.monotonic() - started, 1e-9) / 1e6
                    print(f"download: {done / 1e6:,.0f} MB" + (f" of {total / 1e6:,.0f}" if total else "")
                          + f", {rate:.1f} MB/s", flush=True)
    return done, total, digest.hexdigest()


def download(url: str, out, progress_every: int = 256 << 20) -> int:
    """Copy `url` to `out` atomically, resuming an earlier partial copy and checking the published
    sha1 where there is one; returns the byte count. Failures are one line naming the URL."""
    import http.client
    import urllib.error

    out, started = Path(out), time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(out)
    expected = published_sha1(url)
    try:
        done, total, sha1 = _fetch(url, part, progress_every)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or f"{e.__class__.__name__} {e}".strip()
        kept = part.stat().st_size if part.exists() else 0
        if not kept:
            _discard(part)
        raise BadInput(f"download: cannot fetch {url}: {reason}"
                       + (f"; kept {kept:,} bytes, run again to resume" if kept else "")) from None
    if total is not None and done != total:
        raise BadInput(f"download: {url}: got {done} bytes of {total} (connection cut?); run again to resume")
    if expected and sha1 != expected:
        _discard(part)
        raise BadInput(f"download: {url}: sha1 {sha1}, but {sha1sums_url(url).rsplit('/', 1)[-1]} beside it "
                       f"says {expected}; the copy was removed: run again")
    os.replace(part, out)
    _discard(part)
    print(f"download: {done:,} bytes in {time.monotonic() - started:.1f} s"
          + (f", sha1 {sha1} as published" if expected else ", no published sha1 to check"), flush=True)
    return done


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    part.with_name(part.name + ".json").unlink(missing_ok=True)


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http(s):// or file:// URL")
    parser.add_argument("--out", required=True, help="the local file to write")
    args = parser.parse_args(argv)
    if not is_url(args.url):
        raise BadInput(f"download: {args.url!r} is not an http(s):// or file:// URL")
    download(args.url, args.out)


if __name__ == "__main__":
    main()
