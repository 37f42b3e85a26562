"""Stream the pages of a MediaWiki XML export (pages-articles .xml or .xml.bz2), any schema version.

`WikiDump(path).pages()` yields one `Page` per <page>, in file order, holding only that page in
memory (iterparse, each page cleared after use). `read_namespaces()` returns the localized
namespace names of <siteinfo> (the cleaner needs them before the first page). The export
namespace URI (export-0.3 ... export-0.11) is read from the root element, so every language and
schema version parses the same way. Given a process pool, a multistream .bz2 (Wikipedia's
pages-articles-multistream layout) is decompressed by the pool's workers, stream groups in
parallel (workflow_scripts.data.sources.multistream); the bytes, and so the pages, are the same.
"""
import bz2
import contextlib
import gzip
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from workflow_scripts.errors import BadInput


@dataclass
class Page:
    title: str
    ns: int
    redirect: bool
    text: str


@contextlib.contextmanager
def _open(path: Path, external_bz2: bool = False, pool=None, workers: int = 1):
    """The dump's XML bytes. A multistream .bz2 is decompressed by `pool` (when given). Else, with
    external_bz2, a .bz2 is decompressed by lbzip2/pbzip2/bzip2 in a process of its own (on
    another core, in parallel with parsing) when one is installed."""
    name = path.name.lower()
    if pool is not None and name.endswith(".bz2"):
        from workflow_scripts.data.sources import multistream

        parallel = multistream.open_parallel(path, pool, workers)
        if parallel is not None:
            reader, how = parallel
            print(f"corpus: {path.name} is multistream: {workers} processes decompress its streams ({how})",
                  flush=True)
            yield reader
            return
    tool = next(filter(None, map(shutil.which, ("lbzip2", "pbzip2", "bzip2"))), None) if external_bz2 else None
    if name.endswith(".bz2") and tool:
        proc = subprocess.Popen([tool, "-dc", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            yield proc.stdout
            if proc.stdout.read(1):
                return  # stopped early on purpose (siteinfo only): nothing to check
            if proc.wait() != 0:
                message = proc.stderr.read().decode(errors="replace").strip().splitlines()
                raise OSError(f"{tool}: {message[-1] if message else f'exit status {proc.returncode}'}")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    elif name.endswith(".bz2"):
        with bz2.open(path, "rb") as f:
            yield f
    elif name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            yield f
    else:
        with open(path, "rb") as f:
            yield f


class WikiDump:
    def __init__(self, path, external_bz2: bool = False, pool=None, workers: int = 1):
        self.path = Path(path)
        if not self.path.is_file():
            raise BadInput(f"corpus: wikipedia dump {self.path} does not exist")
        self.external_bz2 = external_bz2
        self.pool, self.workers = pool, workers
        self.namespaces: dict[int, str] = {}  # key -> local name ("" for articles), from <siteinfo>

    def _namespace_of(self, title: str) -> int:
        """Exports before 0.6 have no <ns>: the namespace is the title's prefix, if it is one."""
        prefix, colon, _ = title.partition(":")
        if colon:
            prefix = prefix.strip().replace("_", " ").lower()
            for key, name in self.namespaces.items():
                if name and name.lower() == prefix:
                    return key
        return 0

    def _events(self, stop_after_siteinfo: bool = False):
        """(uri, root, iterparse events) over the dump; read errors become one clear line."""
        try:
            # The head alone (siteinfo) is not worth a pool, nor an external process.
            pool = None if stop_after_siteinfo else self.pool
            external = self.external_bz2 and not stop_after_siteinfo
            with _open(self.path, external, pool, self.workers) as f:
                context = ET.iterparse(f, events=("start", "end"))
                _, root = next(context)
                uri = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
                if root.tag != uri + "mediawiki":
                    raise BadInput(f"corpus: {self.path} is not a MediaWiki XML export "
                                     f"(root element <{root.tag}>, expected <mediawiki>)")
                t_namespaces, t_siteinfo, t_page = uri + "namespaces", uri + "siteinfo", uri + "page"
                for event, elem in context:
                    if event == "end":
                        if elem.tag == t_namespaces:
                            self.namespaces = {int(n.get("key")): (n.text or "") for n in elem}
                        elif elem.tag == t_siteinfo and stop_after_siteinfo:
                            return
                    elif stop_after_siteinfo and elem.tag == t_page:
                        return  # an export without <siteinfo>: no need to read on
                    yield uri, root, event, elem
        except (ET.ParseError, EOFError, OSError) as e:
            raise BadInput(f"corpus: cannot read wikipedia dump {self.path}: {e} "
                             "(truncated or not an XML export?): download it again, or fix the corpus path") from None

    def read_namespaces(self) -> dict[int, str]:
        """The namespace names from <siteinfo> alone (reads only the head of the file)."""
        for _ in self._events(stop_after_siteinfo=True):
            pass
        return self.namespaces

    def pages(self):
        tags = None
        for uri, root, event, elem in self._events():
            if event != "end":
                continue
            if tags is None:
                tags = {k: uri + k for k in ("page", "title", "ns", "redirect", "revision", "text")}
            if elem.tag == tags["page"]:
                title = elem.findtext(tags["title"]) or ""
                ns_text = elem.findtext(tags["ns"])
                ns = int(ns_text) if ns_text else self._namespace_of(title)
                revisions = elem.findall(tags["revision"])  # history dumps: the last one is current
                text = (revisions[-1].findtext(tags["text"]) if revisions else None) or ""
                redirect = elem.find(tags["redirect"]) is not None
                root.clear()  # drop the finished page (and siteinfo) from the tree
                yield Page(title, ns, redirect, text)
