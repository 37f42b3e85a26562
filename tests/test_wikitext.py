"""Wikitext cleaning, one markup family per test, on snippets in real Wikipedia markup."""
from workflow_scripts.data.sources.wikitext import WikitextCleaner

clean = WikitextCleaner().paragraphs


def test_templates_nested_and_wrappers():
    text = ("{{Infobox person|name={{nowrap|A B}}|born={{birth date|1900|1|1}}}}\n"
            "'''Ada''' ({{lang|grc|ἀναρχία}}) ran {{convert|5|km}} in {{nihongo|Tokyo|東京}}.{{sfn|X|2000}}\n"
            "{{Broken template that never closes\nSecond line survives.")
    assert clean(text) == ["Ada (ἀναρχία) ran 5 km in Tokyo.", "Second line survives."]
    assert clean("{{lang-fr|Bonjour}} and {{lang-rtl|ar|مرحبا}} {{convert|2|to|4|mi}}.") == [
        "Bonjour and مرحبا 2 to 4 mi."]


def test_tables_nested():
    text = "Before.\n{| class=wikitable\n|-\n| cell {{x}}\n{|\n| inner\n|}\n| more\n|}\nAfter."
    assert clean(text) == ["Before.", "After."]


def test_refs_comments_and_tags():
    text = ('Fact.<ref name="a">{{cite web|url=http://x}}</ref> More<ref name=b /> here.<!-- hidden\n'
            'comment --> End <math>x^2</math> of <b>bold</b> text<br/>line &amp; &nbsp;entity.')
    assert clean(text) == ["Fact. More here. End of bold text line & entity."]


def test_links():
    text = ("[[Political philosophy]] and [[self-governance|self-governed]] [[anarchy]]s, "
            "[[Paris, Texas|]], [[:Category:Anarchism|a category]], "
            "[[wikt:anarchism|anarchism]] [http://example.org Example site] [http://bare.org] http://url.org/x.")
    assert clean(text) == ["Political philosophy and self-governed anarchys, Paris, a category, "
                           "anarchism Example site."]


def test_files_categories_and_interlanguage_links_go_whole():
    text = ("Prose.\n[[File:Godwin.jpg|thumb|[[William Godwin]], a [[philosopher]] [above]]]\n"
            "[[Image:X.png|left|Caption with [http://a.org link]]]\n"
            "[[Category:Political culture]]\n[[fr:Anarchisme]]\n[[zh-yue:無政府主義]]\nEnd.")
    assert clean(text) == ["Prose.", "End."]


def test_localized_namespaces_from_siteinfo():
    german = WikitextCleaner({6: "Datei", 14: "Kategorie", -2: "Medium"})
    text = "Ein Satz.\n[[Datei:Bild.jpg|mini|Eine [[Stadt]]]]\n[[Kategorie:Stadt]]\n[[Medium:Ton.ogg]]\nNoch einer."
    assert german.paragraphs(text) == ["Ein Satz.", "Noch einer."]
    # canonical English names keep working on every wiki
    assert german.paragraphs("[[File:A.jpg|x]][[Category:B]]Text.") == ["Text."]


def test_headings_lists_and_tail_sections():
    text = ("Intro sentence.\n== History ==\nBody text.\n* A list item that reads as prose.\n"
            "* Just a name\n# Numbered prose item.\n: Indented remark.\n----\n__NOTOC__\n"
            "== See also ==\n* [[Other]]\n== References ==\n{{reflist}}\nTrailing text.")
    assert clean(text) == ["Intro sentence.", "Body text.", "A list item that reads as prose.",
                           "Numbered prose item.", "Indented remark."]
    # a deeper "Notes" or a "Literature" section is content, not the appendix
    assert clean("A.\n=== Notes ===\nB.\n== Literature ==\nC.\n==See also==\nD.") == ["A.", "B.", "C."]


def test_leftover_punctuation_is_tidied():
    text = "Achilles ({{IPAc-en|ə|ˈ|k|ɪ|l|iː|z}}; {{lang-grc|Ἀχιλλεύς}},) was a hero ( ) , brave ."
    assert clean(text) == ["Achilles (Ἀχιλλεύς) was a hero, brave."]


def test_bold_italic_quotes():
    assert clean("'''Bold''' and ''italic'' and '''''both''''' but l'apostrophe stays.") == [
        "Bold and italic and both but l'apostrophe stays."]


def test_single_newlines_join_a_paragraph():
    text = "The rate was 2.5% for those 65 or older\n.<ref>x</ref> It rose\nslowly.\n\nNew paragraph.\n- dash line."
    assert clean(text) == ["The rate was 2.5% for those 65 or older. It rose slowly.", "New paragraph. - dash line."]
