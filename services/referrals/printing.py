"""The print-ready PDF of a share (the HTML version is ``messages.render_page``).

Same words as every other rendering (the gettext catalogs of ``localization``), set in Debian's
Noto fonts (``fonts-noto-core``, ``fonts-noto-cjk``), which carry the glyphs of every shipped
language: Noto Sans for Latin, Cyrillic and Vietnamese, Noto Sans Arabic, Noto Sans CJK SC/KR;
Noto Sans is the fallback for the directory's Latin text inside an Arabic, Chinese or Korean
page. fpdf2 shapes the text with HarfBuzz (``uharfbuzz``): Arabic letters are joined and its
lines run right to left, aligned right; the PDF's text layer keeps the logical order, so
``pdftotext`` and screen readers read it. Without the Noto fonts (a machine that did not
install them) the page falls back to Helvetica for the Latin-1 languages and refuses the
others with a clear error rather than printing question marks.

Example::

    >>> pdf_bytes = share_pdf("ar", [facts], note="اسأل عن آنا")
    >>> pdf_bytes[:5]
    b'%PDF-'
"""
from __future__ import annotations

import logging
from pathlib import Path

from fpdf import FPDF

from services.referrals import localization
from services.referrals.messages import content_note, language_of, localised_facts, page_title
from weintervene.errors import Unavailable

log = logging.getLogger(__name__)

NOTO_DIRS = (Path("/usr/share/fonts/truetype/noto"), Path("/usr/share/fonts/opentype/noto"))
# family name -> (regular file, bold file, index in a .ttc collection)
FONTS = {
    "NotoSans": ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf", 0),
    "NotoSansArabic": ("NotoSansArabic-Regular.ttf", "NotoSansArabic-Bold.ttf", 0),
    # NotoSansCJK-*.ttc holds JP, KR, SC, TC, HK in that order (fc-list -f "%{index}").
    "NotoSansCJKSC": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 2),
    "NotoSansCJKKR": ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 1),
}
MAIN_FONT = {"ar": "NotoSansArabic", "zh": "NotoSansCJKSC", "ko": "NotoSansCJKKR"}
SCRIPT = {"ar": "arab", "zh": "hani", "ko": "hang"}
LATIN1 = {"en", "es", "pt", "ht", "so", "tl"}


def _font_file(name: str) -> Path | None:
    return next((d / name for d in NOTO_DIRS if (d / name).exists()), None)


def _add_family(pdf: FPDF, family: str) -> bool:
    regular, bold, index = FONTS[family]
    regular_path, bold_path = _font_file(regular), _font_file(bold)
    if regular_path is None:
        return False
    pdf.add_font(family, "", regular_path, collection_font_number=index)
    pdf.add_font(family, "B", bold_path or regular_path, collection_font_number=index)
    return True


class SharePDF(FPDF):
    """One share's printed page in one language; ``write_line`` sets a paragraph in the
    language's font, direction and alignment."""

    def __init__(self, language: str):
        super().__init__(format="Letter")
        self.language = language
        self.rtl = localization.direction(language) == "rtl"
        main = MAIN_FONT.get(language, "NotoSans")
        if _add_family(self, main):
            self.family_name = main
            if main != "NotoSans" and _add_family(self, "NotoSans"):
                self.set_fallback_fonts(["NotoSans"], exact_match=False)
            self.set_text_shaping(use_shaping_engine=True, direction="rtl" if self.rtl else "ltr",
                                  script=SCRIPT.get(language), language=language)
            self.clean = str
        elif language in LATIN1:
            log.warning("Noto fonts missing (apt-get install fonts-noto-core fonts-noto-cjk): Helvetica")
            self.family_name = "Helvetica"
            self.clean = lambda value: str(value).encode("latin-1", "replace").decode("latin-1")
        else:
            raise Unavailable(
                "This language's PDF needs the Noto fonts on the server (fonts-noto-core, fonts-noto-cjk); "
                "print the HTML page instead.")

    def isolate(self, value: str, ltr: bool = False) -> str:
        """The directory's or the sender's text as its own bidi run (first-strong isolate), so
        "12 Main St" keeps its order inside an Arabic line, as ``dir="auto"`` does in HTML."""
        if not self.rtl:
            return str(value)
        opening = "\u2066" if ltr else "\u2068"  # left-to-right isolate, first-strong isolate
        return f"{opening}{value}\u2069"

    def write_line(self, text: str, size: float, bold: bool = False, height: float = 6) -> None:
        self.set_font(self.family_name, "B" if bold else "", size)
        self.multi_cell(0, height, self.clean(text), align="R" if self.rtl else "L",
                        new_x="LMARGIN", new_y="NEXT")


def share_pdf(language: str, services: list[dict], note: str | None = None) -> bytes:
    language = language_of(language)
    _ = localization.translations(language).gettext
    pdf = SharePDF(language)
    title = page_title(language, "print")
    pdf.set_title(title)
    pdf.set_creator("WeIntervene")
    pdf.set_lang(language)
    pdf.add_page()
    pdf.write_line(title, 18, bold=True, height=10)
    if note:
        pdf.write_line(f"{_('Note from the sender')}: {pdf.isolate(note)}", 11)
    explained = content_note(language)
    if explained:
        pdf.ln(2)
        pdf.write_line(explained, 10)
    for service in services:
        facts = localised_facts(service, language)
        pdf.ln(4)
        pdf.write_line(facts["name"], 14, bold=True, height=8)
        rows = [
            (_("Address"), facts.get("address"), False),
            (_("Phone"), facts.get("phone"), True),  # a number reads left to right in every script
            (_("Hours"), facts.get("hours"), False),
            (_("Who can use it"), facts.get("eligibility"), False),
            (_("Cost"), facts["cost_words"], False),
        ]
        for label, value, ltr in rows:
            shown = pdf.isolate(value, ltr=ltr) if value else _("Not listed")
            pdf.write_line(f"{label}: {shown}", 11)
    pdf.ln(6)
    footer = "You received this because your school shared it with you. Reply to your school with any questions."
    pdf.write_line(_(footer), 9, height=5)
    return bytes(pdf.output())
