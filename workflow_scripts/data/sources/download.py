"""Download one corpus file (an http, https or file URL) into resources/, streamed and atomic.

    python -m workflow_scripts.data.sources.download --url https://dumps.wikimedia.org/.../pages-articles-multistream.xml.bz2 \
        --out resources/corpora/wiki/enwiki-...-pages-articles-multistream.xml.bz2

The file is written under a temporary name and renamed when complete (and, where the server
says how long it is, only when every byte arrived), so a killed or failed download never
leaves a file that looks whole. Snakemake then keeps it: it is fetched once.
"""
import argparse
import re
import time
import urllib.parse
from pathlib import PurePosixPath
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


def download(url: str, out, progress_every: int = 256 << 20) -> int:
    """Copy `url` to `out` atomically; returns the byte count. Failures are one line naming the URL."""
    import urllib.error
    import urllib.request

    from workflow_scripts.atomic import replacing

    started = time.monotonic()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response, replacing(out) as tmp, open(tmp, "wb") as f:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            print(f"download: {url} -> {out}" + (f" ({total / 1e6:,.1f} MB)" if total else ""), flush=True)
            next_report = progress_every
            while chunk := response.read(CHUNK):
                f.write(chunk)
                done += len(chunk)
                if done >= next_report:
                    next_report += progress_every
                    rate = done / max(time.monotonic() - started, 1e-9) / 1e6
                    print(f"download: {done / 1e6:,.0f} MB" + (f" of {total / 1e6:,.0f}" if total else "")
                          + f", {rate:.1f} MB/s", flush=True)
            if total is not None and done != total:
                raise BadInput(f"download: {url}: got {done} bytes of {total} (connection cut?); run again")
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise BadInput(f"download: cannot fetch {url}: {reason}") from None
    print(f"download: {done:,} bytes in {time.monotonic() - started:.1f} s", flush=True)
    return done


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
