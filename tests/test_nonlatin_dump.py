"""A non-Latin Wikipedia dump survives cleaning with its script intact: Russian and Chinese exports.

The pages are written as those wikis write them: local namespace names (Файл, Категория),
the aliases articles still use (文件, 分类), infobox and citation templates, <ref>s, tables,
Chinese variant markup -{...}-, interlanguage links and the localized appendix sections.
"""
import re
import unicodedata
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from workflow_scripts.data import corpus

RU_NAMESPACES = {-2: "Медиа", 0: "", 1: "Обсуждение", 6: "Файл", 10: "Шаблон", 14: "Категория"}
# zhwiki's siteinfo names File and Category in English; articles also use the aliases 文件, 分类.
ZH_NAMESPACES = {-2: "Media", 0: "", 1: "Talk", 6: "File", 10: "Template", 14: "Category"}

MOSCOW = """{{Другие значения|Москва (значения)}}
{{Город
 |Русское название = Москва
 |Страна = Россия
 |Население = 13 104 177
}}
'''Москва́''' — [[столица]] [[Россия|Российской Федерации]], [[город федерального значения]], \
административный центр [[Центральный федеральный округ|Центрального федерального округа]] и центр \
[[Московская область|Московской области]]<ref name="конституция">{{cite web|url=http://www.constitution.ru/\
|title=Конституция}}</ref>. Крупнейший по численности населения город России и её \
[[субъект Российской Федерации|субъект]].

[[Файл:Moscow Kremlin.jpg|thumb|Вид на [[Московский Кремль]]]]
== История ==
Первое упоминание о Москве относится к 1147 году<ref>{{книга|автор=Тихомиров М. Н.|заглавие=Древняя \
Москва}}</ref>. В 1156 году по приказу [[Юрий Долгорукий|Юрия Долгорукого]] был построен деревянный \
[[кремль]].

=== Население ===
{| class="wikitable"
! Год !! Население
|-
| 1897 || 1 038 600
|}
Москва — самый населённый город Европы<!-- по данным Росстата -->.

== Примечания ==
{{примечания}}

== Ссылки ==
* [http://www.mos.ru Официальный сайт]
{{Навигационная таблица|Города России}}

[[Категория:Города России]]
[[Категория:Столицы европейских государств]]
[[en:Moscow]]
"""

BEIJING = """{{NoteTA|G1=地名}}
{{Infobox settlement
|name = 北京市
|population = 21893095
}}
'''北京市'''，简称“'''京'''”，是[[中华人民共和国]]的[[首都]]及[[直辖市]]，是全国的[[政治]]、[[文化]]中心\
<ref>{{cite web|url=http://www.beijing.gov.cn|title=北京概况}}</ref>。北京位于[[华北平原]]北部，\
-{zh-hans:总面积;zh-hant:總面積;}-16410平方公里。

[[File:Beijing skyline.jpg|thumb|北京的天际线]]
[[文件:Tiananmen.jpg|thumb|[[天安门]]城楼]]
== 历史 ==
北京有三千多年的建城史。[[元朝]]在此建立[[元大都|大都]]，此后[[明朝]]和[[清朝]]亦定都于此。-{H|zh-cn:软件;zh-tw:軟體;}-

{| class="wikitable"
! 年份 !! 人口
|-
| 2020 || 21893095
|}
北京是中国的-{R|交通}-枢纽。

== 参考文献 ==
{{reflist}}

== 外部链接 ==
* [http://www.beijing.gov.cn 北京市人民政府]

[[Category:北京市| ]]
[[分类:中华人民共和国直辖市]]
[[en:Beijing]]
"""


def write_dump(path: Path, lang: str, namespaces: dict, pages: list) -> Path:
    """A MediaWiki export-0.11 file: <siteinfo> with the namespaces, then the pages (title, ns, text)."""
    ns_xml = "".join(f'<namespace key="{k}" case="first-letter">{v}</namespace>' if v else
                     f'<namespace key="{k}" case="first-letter" />' for k, v in namespaces.items())
    page_xml = "".join(
        f"<page><title>{escape(title)}</title><ns>{ns}</ns><id>{i}</id><revision><id>{i}</id>"
        f'<text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text></revision></page>'
        for i, (title, ns, text) in enumerate(pages, 1))
    path.write_text(
        f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="{lang}">'
        f"<siteinfo><sitename>Википедия</sitename><namespaces>{ns_xml}</namespaces></siteinfo>"
        f"{page_xml}</mediawiki>", encoding="utf-8")
    return path


MARKUP = ("{{", "}}", "[[", "]]", "<ref", "</ref", "{|", "|}", "<!--", "-{", "}-", "'''", "http", "thumb",
          "wikitable", "==", "&lt;", "&amp;")


def extract(tmp_path, lang, namespaces, pages, min_chars=20):
    dump = write_dump(tmp_path / f"{lang}wiki.xml", lang, namespaces, pages)
    out = [tmp_path / "part_0.txt"]
    stats = corpus.extract({"type": "wikipedia", "path": str(dump), "min_chars": min_chars}, out)
    return out[0].read_text(encoding="utf-8"), stats


def test_russian_dump_keeps_cyrillic_and_loses_markup(tmp_path):
    text, stats = extract(tmp_path, "ru", RU_NAMESPACES, [
        ("Москва", 0, MOSCOW),
        ("Обсуждение:Москва", 1, "Текст страницы обсуждения, которого не должно быть в корпусе. " * 5),
        ("Категория:Города России", 14, "Описание категории, которого не должно быть в корпусе. " * 5)])
    assert stats.kept == 1 and stats.dropped["not_an_article"] == 2
    lines = text.split("\n")
    # The script survives, NFC, with its stress mark and the long dash; links keep their labels.
    assert lines[0] == unicodedata.normalize(
        "NFC", "Москва́ — столица Российской Федерации, город федерального значения, административный центр "
               "Центрального федерального округа и центр Московской области.")
    assert "Крупнейший по численности населения город России и её субъект." in lines
    assert "Первое упоминание о Москве относится к 1147 году." in lines
    assert "В 1156 году по приказу Юрия Долгорукого был построен деревянный кремль." in lines
    assert "Москва — самый населённый город Европы." in lines
    for marker in MARKUP:
        assert marker not in text, marker
    # Templates, file captions, tables, categories, interwiki and the Примечания/Ссылки tail are gone.
    for gone in ("Другие значения", "Русское название", "Конституция", "Тихомиров", "Вид на", "Население",
                 "1 038 600", "Категория", "Города России", "Moscow", "Официальный сайт", "Примечания",
                 "Ссылки", "обсуждения", "Описание категории"):
        assert gone not in text, gone
    cyrillic = sum("\u0400" <= ch <= "\u04ff" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    assert cyrillic / letters > 0.99


def test_chinese_dump_keeps_han_and_loses_markup(tmp_path):
    text, stats = extract(tmp_path, "zh", ZH_NAMESPACES, [("北京市", 0, BEIJING)])
    assert stats.kept == 1
    # 。 ends a sentence without a space; variant markup keeps the simplified text.
    assert text.split("\n")[:5] == [
        "北京市，简称“京”，是中华人民共和国的首都及直辖市，是全国的政治、文化中心。",
        "北京位于华北平原北部，总面积16410平方公里。",
        "北京有三千多年的建城史。",
        "元朝在此建立大都，此后明朝和清朝亦定都于此。",
        "北京是中国的交通枢纽。"]
    assert text.endswith("\n\n") and text.count("\n\n") == 1  # one document, and nothing after it
    for marker in MARKUP:
        assert marker not in text, marker
    for gone in ("NoteTA", "Infobox", "北京概况", "天际线", "天安门", "文件", "分类", "Category", "直辖市]",
                 "軟體", "软件", "總面積", "21893095", "参考文献", "外部链接", "人民政府", "Beijing"):
        assert gone not in text, gone
    han = len(re.findall(r"[\u4e00-\u9fff]", text))
    assert han / sum(ch.isalpha() for ch in text) == 1.0


@pytest.mark.parametrize("workers", [2])
def test_worker_processes_clean_non_latin_the_same(tmp_path, workers):
    dump = write_dump(tmp_path / "ruwiki.xml", "ru", RU_NAMESPACES, [("Москва", 0, MOSCOW)] * 3)
    serial, parallel = [tmp_path / "s.txt"], [tmp_path / "p.txt"]
    corpus.extract({"type": "wikipedia", "path": str(dump), "min_chars": 20}, serial)
    corpus.extract({"type": "wikipedia", "path": str(dump), "min_chars": 20}, parallel, workers=workers)
    assert parallel[0].read_bytes() == serial[0].read_bytes()
    assert "Москва" in serial[0].read_text(encoding="utf-8")
