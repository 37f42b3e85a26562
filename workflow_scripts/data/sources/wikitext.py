"""MediaWiki wikitext -> plain prose paragraphs, with compiled regexes and two small bracket scanners.

`WikitextCleaner(namespaces).paragraphs(wikitext)` returns the article's prose, one paragraph per
item, markup removed. It follows what WikiExtractor/gensim do for BERT corpora, in this order
(each step relies on the earlier ones having run):
 1. comments, then tags whose content is not prose (<ref>, <math>, <gallery>, ...);
 2. templates {{...}} (nested; a handful that wrap visible words, such as {{lang|..|text}},
    {{nowrap|..}} and {{convert|5|km}}, keep those words) and tables {|...|} (nested); then
    Chinese variant markup -{zh-hans:..;zh-hant:..}- (the simplified text is kept);
 3. external links [http://x label] -> label, bare URLs dropped;
 4. internal links [[a|b]] -> b, [[a]] -> a; File/Image/Media/Category links (canonical names,
    the dump's localized ones and common aliases such as 分类 or Bild) and interlanguage links
    [[fr:...]] dropped whole, captions and all;
 5. remaining HTML tags, bold/italic quotes, behaviour switches (__NOTOC__), HTML entities;
 6. leftovers of removed markup ("( )", "(; born", " ,") tidied; then line by line: consecutive
    plain lines joined into one paragraph (as MediaWiki renders them), headings dropped, the tail
    from "See also"/"References"/... (and their names on the largest wikis) on cut, list items
    and indented lines kept (markers stripped) only when they end like a sentence, since the
    rest are names and titles.
"""
import html
import re

# Tags whose content is never prose: the whole element goes (self-closing form too).
_DROP_ELEMENTS = ("ref|references|math|chem|ce|score|gallery|timeline|syntaxhighlight|source|pre|"
                  "imagemap|graph|mapframe|maplink|templatedata|templatestyles|hiero|inputbox|"
                  "categorytree|noinclude|indicator|section")
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_DROP_ELEMENT = re.compile(
    rf"<(?P<tag>{_DROP_ELEMENTS})\b(?:[^>]*?/>|[^>]*>.*?</(?P=tag)\s*>)", re.S | re.I)
_BRACES = re.compile(r"\{\{|\}\}")
_TABLE_EDGE = re.compile(r"^[ \t]*(?:(?P<open>\{\|)|\|\})", re.M)
_EXTERNAL_LINK = re.compile(r"\[(?:https?:|ftp:|//|mailto:|news:|irc:)[^\s\]]*(?:[ \t]+(?P<label>[^\]\n]*))?\]",
                            re.I)
_BARE_URL = re.compile(r"(?:https?|ftp)://[^\s<>\]|]*[^\s<>\]|.,;:!?)'\"]")  # no \b or re.I: 4x faster scan
_LINK_EDGE = re.compile(r"\[\[|\]\]\](?!\])|\]\]|\[|\]")  # "]]]]" is two closings
_BR = re.compile(r"<br\s*/?\s*>", re.I)
_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")
_QUOTES = re.compile(r"''+")  # bold, italic, both
_BEHAVIOUR_SWITCH = re.compile(r"__[A-Z]+__")
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_LIST_MARKER = re.compile(r"^(?:[*#:;]+\s*)+")
_EMPTY_BRACKETS = re.compile(r"\([^\S\n]*(?:[,;:–-][^\S\n]*)*\)|\[[^\S\n]*\]")
# "(; born 1947)" and "(ANSI,)": separators orphaned by a removed pronunciation or date template.
_OPEN_SEPARATORS = re.compile(r"\([^\S\n]*(?:[,;][^\S\n]*)+")
_CLOSE_SEPARATORS = re.compile(r"(?:[^\S\n]*[,;])+[^\S\n]*\)")
# List items and indented lines are kept only when they read as prose (end like a sentence);
# otherwise they are names, titles and link lists.
_PROSE_END = re.compile(r"[.!?。！？।]['\"”’»)\]]*$")
_SPACE_BEFORE_PUNCT = re.compile(r"[^\S\n]+(?=[,.;:!?)\]])")
_SPACE_AFTER_OPEN = re.compile(r"(?<=[(\[])[^\S\n]+")
_REPEATED_COMMA = re.compile(r",(?:[^\S\n]*,)+")
# Interlanguage link prefixes: en, de, zh-yue, be-x-old, simple, ...
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z]+)*|simple")
_NAMED_PARAMETER = re.compile(r"^\s*[\w .-]+\s*=")
_PIPE_OUTSIDE_LINK = re.compile(r"\|(?![^\[]*\]\])")
# Chinese wikis' language-variant markup: -{text}-, -{zh-hans:A;zh-hant:B;}-, -{H|rule}- (hidden).
_VARIANT = re.compile(r"-\{(?:(?P<flags>[A-Za-z;+ -]*)\|)?(?P<body>.*?)\}-", re.S)
_VARIANT_RULE = re.compile(r"(?:^|;)\s*(?P<code>zh(?:-[a-z]+)?)\s*:(?P<text>[^;]*)")
_VARIANT_ORDER = ("zh-hans", "zh-cn", "zh-sg", "zh-my", "zh", "zh-hant", "zh-tw", "zh-hk", "zh-mo")

# Canonical names valid on every wiki; the dump adds its localized ones (Datei, Catégorie, ...).
CANONICAL_DROP_NAMESPACES = ("file", "image", "media", "category")
# MediaWiki's namespace ALIASES (older or regional names, still used in articles) are not in an
# export's <siteinfo>: the common ones for File and Category, for the largest wikis.
ALIAS_DROP_NAMESPACES = (
    "bild", "datei", "kategorie",                                   # de
    "fichier", "catégorie",                                         # fr
    "archivo", "imagen", "categoría",                               # es
    "ficheiro", "arquivo", "imagem", "categoria",                   # pt, it
    "plik", "grafika", "kategoria",                                 # pl
    "bestand", "afbeelding", "categorie",                           # nl
    "файл", "изображение", "категория",                             # ru
    "файл", "зображення", "категорія",                              # uk
    "文件", "档案", "檔案", "图像", "圖像", "分类", "分類",          # zh
    "ファイル", "画像", "カテゴリ",                                  # ja
    "파일", "그림", "분류",                                          # ko
    "ملف", "صورة", "تصنيف",                                         # ar
)
DROP_NAMESPACE_KEYS = (-2, 6, 14)  # Media, File, Category
# Appendix sections at the end of an article: cut from the first of these level-2 headings on.
# ("Literature" is not one: in English it is as often a content section, e.g. under Culture.)
TAIL_SECTIONS = frozenset("""
see also|references|external links|further reading|notes|footnotes|bibliography|sources|citations|
notes and references|references and notes|works cited|external sources|other websites|
siehe auch|literatur|weblinks|einzelnachweise|anmerkungen|
voir aussi|notes et références|références|liens externes|bibliographie|
véase también|referencias|enlaces externos|bibliografía|notas|
см. также|примечания|литература|ссылки|источники|
参见|參見|参考文献|參考文獻|参考资料|參考資料|外部链接|外部連結|注释|註釋|延伸阅读|延伸閱讀|
関連項目|脚注|参考文献|外部リンク
""".replace("\n", "").split("|"))
# Templates that wrap words the reader sees: keep the words (index of the positional parameter).
_KEEP_PARAMETER = {"lang": 1, "nowrap": 0, "nobr": 0, "nobreak": 0, "small": 0, "smaller": 0, "big": 0,
                   "sc": 0, "smallcaps": 0, "transl": 1, "nihongo": 0, "nihongo2": 0, "lang-rtl": 1}
# Templates without parameters that stand for punctuation.
_TEMPLATE_TEXT = {"ndash": "–", "mdash": "—", "snd": " – ", "spaced ndash": " – ", "nbsp": " ", "sp": " ",
                  "'": "'", "=": "=", "!": "|", "dot": "·", "middot": "·", "·": "·", "bull": " • "}
_CONVERT = ("convert", "cvt")
_RANGE_WORDS = frozenset(("-", "–", "to", "and", "or", "by", "x", "×", "+", "to(-)", "and(-)"))


def _join(lines: list[str]) -> str:
    """Lines of one paragraph joined by spaces; a line that starts with punctuation attaches."""
    return lines[0] if len(lines) == 1 else _SPACE_BEFORE_PUNCT.sub("", " ".join(lines))


def _norm_namespace(name: str) -> str:
    return name.strip().replace("_", " ").lower()


class WikitextCleaner:
    """Cleans the wikitext of one wiki; `namespaces` maps namespace key -> local name (siteinfo)."""

    def __init__(self, namespaces: dict | None = None):
        names = set(CANONICAL_DROP_NAMESPACES) | set(ALIAS_DROP_NAMESPACES)
        for key, name in (namespaces or {}).items():
            if key in DROP_NAMESPACE_KEYS and name:
                names.add(_norm_namespace(name))
        self.drop_namespaces = frozenset(names)

    # -- step 2: templates and tables -------------------------------------------------------------

    @staticmethod
    def _render_template(inner: str) -> str:
        """What a template shows in prose: usually nothing; the words of a few wrapper templates."""
        name, _, rest = inner.partition("|")
        name = name.strip().lower().replace("_", " ")
        if not rest:
            return _TEMPLATE_TEXT.get(name, "")
        if name in _KEEP_PARAMETER or name.startswith("lang-") or name in _CONVERT:
            positional = [p.strip() for p in _PIPE_OUTSIDE_LINK.split(rest) if not _NAMED_PARAMETER.match(p)]
            if name in _CONVERT:
                if len(positional) >= 4 and positional[1] in _RANGE_WORDS:
                    return f"{positional[0]} {positional[1]} {positional[2]} {positional[3]}"
                return " ".join(positional[:2])
            index = _KEEP_PARAMETER.get(name, 0)  # {{lang-fr|text}}: the first
            if index is not None and len(positional) > index:
                return positional[index]
        return ""

    def _strip_templates(self, text: str) -> str:
        """Remove {{...}} at any depth, innermost first, so nested templates never leak braces."""
        if "{{" not in text:
            return _BRACES.sub("", text)
        out: list[str] = []
        stack: list[list[str]] = []  # the pieces of each template still open
        pos = 0
        for m in _BRACES.finditer(text):
            (stack[-1] if stack else out).append(text[pos:m.start()])
            pos = m.end()
            if m.group() == "{{":
                stack.append([])
            elif stack:
                rendered = self._render_template("".join(stack.pop()))
                (stack[-1] if stack else out).append(rendered)
            # a stray "}}" at depth 0 is dropped
        (stack[-1] if stack else out).append(text[pos:])
        # Unclosed templates (broken markup): drop their text up to the end of the line they open on.
        while stack:
            content = "".join(stack.pop())
            rest = content.partition("\n")[2]
            (stack[-1] if stack else out).append("\n" + rest if rest else "")
        return "".join(out)

    @staticmethod
    def _strip_tables(text: str) -> str:
        """Remove {| ... |} tables (their edges sit at line starts), nested; unclosed ones run to the end."""
        if "{|" not in text:
            return text
        out = []
        depth = 0
        pos = 0
        for m in _TABLE_EDGE.finditer(text):
            if m.group("open"):
                if depth == 0:
                    out.append(text[pos:m.start()])
                depth += 1
            elif depth:
                depth -= 1
                if depth == 0:
                    pos = m.end()
        if depth == 0:
            out.append(text[pos:])
        return "".join(out)

    @staticmethod
    def _render_variant(m: re.Match) -> str:
        """-{...}-: the simplified-Chinese text of a variant rule, the text itself, or nothing (a hidden rule)."""
        flags, body = (m.group("flags") or "").replace(" ", ""), m.group("body")
        if flags and set(flags) & set("H-T"):
            return ""
        rules = {r.group("code"): r.group("text").strip() for r in _VARIANT_RULE.finditer(body)}
        if not rules:
            return body.split("=>")[0]
        return next((rules[code] for code in _VARIANT_ORDER if code in rules), next(iter(rules.values())))

    # -- step 4: internal links -------------------------------------------------------------------

    def _render_link(self, inner: str) -> str:
        """What [[inner]] shows in prose: its label, its target, or nothing (files, categories, ...)."""
        target, pipe, label = inner.partition("|")
        target = target.strip()
        if target.startswith(":"):  # [[:Category:X]] is an ordinary visible link
            target = target[1:]
        else:
            prefix, colon, _ = target.partition(":")
            if colon:
                if _norm_namespace(prefix) in self.drop_namespaces:
                    return ""
                if not pipe and _LANGUAGE_CODE.fullmatch(prefix.strip()):
                    return ""  # interlanguage link: shown in the sidebar, not in the prose
        if pipe:
            label = label.strip()
            if label:
                return label
            # the pipe trick: [[Paris, Texas|]] shows "Paris"
            target = target.rpartition(":")[2].split(" (")[0].split(",")[0]
        return target.lstrip("#")

    def _strip_links(self, text: str) -> str:
        """Resolve [[...]] at any depth, innermost first: a File caption's own links are rendered
        before the File link drops the whole caption. Single brackets inside are text, and are
        counted so that "[above]]]" reads as "[above]" + "]]"."""
        if "[[" not in text:
            return text.replace("]]", "")
        out: list[str] = []
        stack: list[list] = []  # per open link: [its pieces, single "[" still open inside it]
        pos = 0
        for m in _LINK_EDGE.finditer(text):
            level = stack[-1][0] if stack else out
            level.append(text[pos:m.start()])
            pos = m.end()
            token = m.group()
            if token == "[[":
                stack.append([[], 0])
            elif token == "[":
                level.append(token)
                if stack:
                    stack[-1][1] += 1
            elif token == "]":
                level.append(token)
                if stack and stack[-1][1]:
                    stack[-1][1] -= 1
            elif stack:  # "]]" or "]]]"
                if token == "]]]" and stack[-1][1]:
                    stack[-1][0].append("]")  # closes the single "[" first
                    token = "]]"
                pieces, _ = stack.pop()
                level = stack[-1][0] if stack else out
                level.append(self._render_link("".join(pieces)))
                if token == "]]]":
                    level.append("]")
            # a stray "]]" at depth 0 is dropped
        (stack[-1][0] if stack else out).append(text[pos:])
        while stack:  # unclosed "[[": keep its text, drop the brackets
            content = "".join(stack.pop()[0])
            (stack[-1][0] if stack else out).append(content)
        return "".join(out)

    # -- the whole pipeline -----------------------------------------------------------------------

    def paragraphs(self, wikitext: str) -> list[str]:
        """The article's prose paragraphs (markup-free lines; not yet normalized or split)."""
        return _prose_paragraphs(self.plain_text(wikitext))

    def plain_text(self, wikitext: str) -> str:
        """The article with its markup removed, line structure kept (headings, list items, table rows)."""
        text = _COMMENT.sub("", wikitext)
        text = _DROP_ELEMENT.sub("", text)
        text = self._strip_templates(text)
        text = self._strip_tables(text)
        if "-{" in text:
            text = _VARIANT.sub(self._render_variant, text)
        text = _EXTERNAL_LINK.sub(lambda m: m.group("label") or "", text)
        if "://" in text:
            text = _BARE_URL.sub("", text)
        text = self._strip_links(text)
        text = _BR.sub(" ", text)
        text = _TAG.sub("", text)
        text = _QUOTES.sub("", text)
        text = _BEHAVIOUR_SWITCH.sub("", text)
        if "&" in text:
            text = html.unescape(text)
        # Tidy what removed markup leaves behind: "( )", "word ,", ", ,".
        text = _EMPTY_BRACKETS.sub("", text)
        text = _OPEN_SEPARATORS.sub("(", text)
        text = _CLOSE_SEPARATORS.sub(")", text)
        text = _REPEATED_COMMA.sub(",", text)
        text = _SPACE_BEFORE_PUNCT.sub("", text)
        return _SPACE_AFTER_OPEN.sub("", text)


def _prose_paragraphs(text: str) -> list[str]:
    """Paragraphs of markup-free text, up to the first tail section (References, See also, ...).

    As MediaWiki renders it: consecutive plain lines form one paragraph (a single newline is a
    space); blank lines, headings, list items and table rows end it. List items are kept alone,
    and only when they read as prose; table rows and rules are dropped."""
    paragraphs: list[str] = []
    lines: list[str] = []
    for line in text.split("\n"):
        line = " ".join(line.split())  # collapses all Unicode whitespace (&nbsp; too), fast
        first = line[:1]
        if first and first not in "=|!*#:;" and not line.startswith("----"):
            lines.append(line)
            continue
        if lines:
            paragraphs.append(_join(lines))
            lines = []
        if not line:
            continue
        if first == "=":
            heading = _HEADING.match(line)
            if heading:
                if len(heading.group(1)) <= 2 and heading.group(2).strip().lower() in TAIL_SECTIONS:
                    return paragraphs
                continue
            lines.append(line)  # "=" that does not make a heading
        elif first in "|!" or line.startswith("----"):
            continue  # table rows left by broken tables, horizontal rules
        elif first in "*#:;":
            if _PROSE_END.search(line):
                item = _LIST_MARKER.sub("", line)
                if item:
                    paragraphs.append(item)
    if lines:
        paragraphs.append(_join(lines))
    return paragraphs
