"""Every shipped language renders every message kind, from complete, current gettext catalogs.

The catalogs (services/referrals/locale/<code>/LC_MESSAGES/messages.po) are checked against the
source: a msgid the code or a template uses but a catalog lacks, an empty or fuzzy entry, or a
placeholder a translation dropped fails here, as does a committed messages.pot that
``make translations`` would change.
"""
from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from datetime import time, timedelta
from pathlib import Path

import pytest
from babel import Locale
from babel.dates import format_time
from babel.messages.pofile import read_po
from sqlalchemy import select

from services.referrals import localization
from services.referrals.localization import LOCALE_DIR, SHIPPED
from services.referrals.messages import render_link_gone, render_page, render_share
from services.referrals.models import Delivery, Share
from services.referrals.printing import share_pdf
from tests.unit.referrals_fixtures import (  # noqa: F401  (fixtures)
    CONTACTS, MOTHER, SERVICE, STUDENT, TEACHER_AUTH, db, directory, identity, make_session, svc,
)

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [code for code in SHIPPED if code != "en"]
WEEKDAYS = [{"byday": "MO,TU,WE,TH,FR", "opens_at": "09:00", "closes_at": "17:00", "freq": "WEEKLY"}]
FACTS = {
    "id": "s-1", "name": "Casa Azul Tutoring", "organization": None, "address": "12 Main St, Springfield, IL 62701",
    "phone": "217-555-0100", "hours": "Mon-Fri 9:00 AM-5:00 PM", "schedules": WEEKDAYS,
    "eligibility": None, "cost": "unknown",
}
pdftotext = shutil.which("pdftotext")


def catalog(code):
    with (LOCALE_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po)


def extracted_msgids(tmp_path) -> set[str]:
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "-q", "extract", "-F", "babel.cfg", "--no-location", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as f:
        return {m.id for m in read_po(f) if m.id}


def translated(code: str, msgid: str) -> str:
    return localization.translations(code).gettext(msgid)


def localised_hours(code: str) -> tuple[str, str]:
    """Friday's abbreviation and 17:00 as the locale says them (CLDR, or the localization's gap fill)."""
    loc = Locale.parse(localization.normalise(code))
    friday = localization._day_names(code)["FR"]
    if code == "ko":  # CLDR's wide day period (localization._CLDR_GAPS), not its Latin "PM"
        return friday, "오후 5:00"
    return friday, format_time(time(17, 0), "short", locale=loc).replace("\u202f", " ")


BIDI_CONTROLS = dict.fromkeys([0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


# -- the catalogs ----------------------------------------------------------------------

@pytest.mark.parametrize("code", TRANSLATED)
def test_catalog_is_complete_unfuzzy_and_keeps_placeholders(code):
    cat = catalog(code)
    entries = [m for m in cat if m.id]
    assert entries, code
    assert not [m.id for m in entries if not m.string], "untranslated"
    assert not [m.id for m in entries if m.fuzzy], "fuzzy (review, then remove the flag)"
    assert not [(m.id, errors) for m, errors in cat.check()], "a placeholder differs from the msgid"
    assert "Translator note" in (cat.header_comment or "") and "docs/LANGUAGES.md" in cat.header_comment


def test_catalogs_and_template_are_current_with_the_source(tmp_path):
    source = extracted_msgids(tmp_path)
    assert "Your school shared a service with you" in source and "Cost" in source
    with (LOCALE_DIR / "messages.pot").open("rb") as f:
        assert {m.id for m in read_po(f) if m.id} == source, "run `make translations`"
    for code in TRANSLATED:
        assert {m.id for m in catalog(code) if m.id} == source, f"{code}: run `make translations`"


def test_every_shipped_language_has_a_catalog_and_nothing_else_ships():
    on_disk = {p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po")}
    assert on_disk == set(TRANSLATED)


# -- each language x each channel ------------------------------------------------------

def render_channel(code: str, channel: str) -> str:
    if channel == "email":
        rendered = render_share(code, [FACTS], note="Ask for Ana", channel="email")
        return rendered["subject"] + "\n" + rendered["text"] + "\n" + rendered["html"]
    if channel == "sms":
        return render_share(code, [FACTS], note="Ask for Ana", channel="sms")["sms"]
    if channel in ("print", "link"):
        return render_page(code, [FACTS], "Ask for Ana", kind=channel)
    if channel == "pdf":
        if pdftotext is None:
            pytest.fail("pdftotext is missing: apt-get install poppler-utils (.ci/run does)")
        done = subprocess.run([pdftotext, "-", "-"], input=share_pdf(code, [FACTS], note="Ask for Ana"),
                              capture_output=True, check=True)
        return done.stdout.decode().translate(BIDI_CONTROLS)  # the text layer's embedding marks
    raise AssertionError(channel)


@pytest.mark.parametrize("channel", ["email", "sms", "print", "link", "pdf"])
@pytest.mark.parametrize("code", TRANSLATED)
def test_each_language_renders_each_channel_in_its_words_and_hours(code, channel):
    text = render_channel(code, channel)
    english = render_channel("en", channel)
    hours_label = translated(code, "Hours")
    assert hours_label != "Hours" and hours_label in text, (code, channel)
    assert "Hours" not in text and "Mon–Fri" not in text and "Mon-Fri" not in text
    friday, five_pm = localised_hours(code)
    if channel == "pdf":  # the text layer splits a right-to-left line's runs: the clock's digits
        five_pm = "".join(c for c in five_pm if c.isdigit() or c == ":")
    assert friday in text and five_pm in text, (code, channel, friday, five_pm)
    assert text != english
    if channel != "sms":  # cost in words, never the directory's class name
        assert translated(code, "Ask the service about cost") in text and "unknown" not in text


def test_spanish_reads_hours_and_cost_as_the_issue_asks():
    sms = render_share("es", [FACTS], channel="sms")["sms"]
    assert "Horario: lun–vie 9:00–17:00" in sms
    page = render_page("es", [FACTS], None, kind="print")
    assert "Costo" in page and "Pregunte al servicio por el costo" in page and "unknown" not in page
    assert "inglés" in page  # the directory's details are said to be in English


def test_korean_says_its_own_day_periods():
    assert "월–금 오전 9:00–오후 5:00" in render_share("ko", [FACTS], channel="sms")["sms"]


def test_english_keeps_the_am_pm_clock_in_plain_spaces_for_gsm7():
    sms = render_share("en", [FACTS], channel="sms")["sms"]
    assert "Mon–Fri 9:00 AM–5:00 PM" in sms and "\u202f" not in sms
    assert "Details in" not in sms  # no "in English" note to an English reader


# -- right to left ---------------------------------------------------------------------

def test_arabic_html_pages_and_email_are_right_to_left():
    for html in (render_page("ar", [FACTS], None, "print"), render_page("ar", [FACTS], None, "link"),
                 render_share("ar", [FACTS], channel="email")["html"], render_link_gone("ar", None)):
        assert '<html lang="ar" dir="rtl">' in html
    assert '<html lang="es" dir="ltr">' in render_page("es", [FACTS], None, "print")


def test_arabic_pdf_is_shaped_right_aligned_and_keeps_its_text_layer():
    if pdftotext is None:
        pytest.fail("pdftotext is missing: apt-get install poppler-utils (.ci/run does)")
    pdf = share_pdf("ar", [FACTS], note="Ask for Ana")
    text = subprocess.run([pdftotext, "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "خدمات لعائلتك" in text and "العنوان" in text and "12 Main St" in text
    bbox = subprocess.run([pdftotext, "-bbox", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    # The title line (the topmost words) ends at the right margin (Letter: 612 pt wide, 1 cm
    # margins): right-aligned. -bbox lists a line's glyph runs in visual order.
    words = [line for line in bbox.splitlines() if "<word" in line]
    top = min(float(w.split('yMin="')[1].split('"')[0]) for w in words)
    title = [w for w in words if float(w.split('yMin="')[1].split('"')[0]) == top]
    assert len(title) == 2, title  # "خدمات" and "لعائلتك"
    assert max(float(w.split('xMax="')[1].split('"')[0]) for w in title) > 550
    assert min(float(w.split('xMin="')[1].split('"')[0]) for w in title) > 300
    latin = subprocess.run([pdftotext, "-bbox", "-", "-"], input=share_pdf("es", [FACTS]),
                           capture_output=True, check=True).stdout.decode()
    first = next(line for line in latin.splitlines() if "<word" in line)
    assert float(first.split('xMin="')[1].split('"')[0]) < 60  # Spanish starts at the left margin


# -- the share: which language each contact receives -----------------------------------

@pytest.mark.parametrize(("preferred", "received"), [("ar", "ar"), ("vi", "vi"), ("zh-Hans", "zh"), ("fr", "en")])
def test_a_contact_gets_their_language_or_english_when_we_do_not_ship_it(svc, db, monkeypatch, preferred, received):
    monkeypatch.setitem(CONTACTS[MOTHER], "preferred_language", preferred)
    svc.share(TEACHER_AUTH, {"student_id": STUDENT, "contact_ids": [MOTHER], "service_ids": [SERVICE],
                             "channel": "sms"})
    assert db.scalar(select(Delivery.language)) == received
    assert db.scalar(select(Share.language)) == received


def test_every_shipped_language_is_accepted_when_the_sharer_chooses_it(svc, db):
    for code in SHIPPED:
        [item] = svc.share(TEACHER_AUTH, {"student_id": STUDENT, "contact_ids": [], "service_ids": [SERVICE],
                                          "channel": "print", "language": code})["items"]
        assert "<html lang=\"%s\"" % code in svc.print_share(TEACHER_AUTH, item["id"], "html")["html"]
        assert base64.b64decode(svc.print_share(TEACHER_AUTH, item["id"], "pdf")["pdf_base64"])[:5] == b"%PDF-"


# -- the expired link --------------------------------------------------------------------

def test_expired_link_page_is_in_the_links_language_and_names_the_school(svc, db):
    [item] = svc.share(TEACHER_AUTH, {"student_id": STUDENT, "contact_ids": [], "service_ids": [SERVICE],
                                      "channel": "link", "language": "vi"})["items"]
    token = item["link_url"].rsplit("/", 1)[1]
    assert 'lang="vi"' in svc.open_link(token)["html"]
    share = db.scalar(select(Share))
    share.link_expires_at = share.created_at - timedelta(seconds=1)
    db.commit()
    page = svc.expired_link_page(token, "es-MX,es;q=0.9")["html"]  # the link's language wins
    assert '<html lang="vi" dir="ltr">' in page and "Liên kết này đã hết hạn" in page
    assert "Bright Futures Inc." in page  # the fake identity's tenant name: the school that shared it
    assert 'href="/static/family.css"' in page and "Diego" not in page


@pytest.mark.parametrize(("header", "lang", "words"), [
    ("es-MX,es;q=0.9,en;q=0.5", "es", "Este enlace ha vencido"),
    ("ar", "ar", "انتهت صلاحية هذا الرابط"),
    ("de-DE,de;q=0.9", "en", "This link has expired"),
    (None, "en", "Ask your school for a new link."),
])
def test_unknown_link_page_follows_accept_language(svc, header, lang, words):
    page = svc.expired_link_page("x" * 43, header)["html"]
    assert f'lang="{lang}"' in page and words in page


def test_family_templates_are_given_no_student_data():
    """What each family-facing template may read: services' public facts, the sender's note,
    the language, the school's name. A template that asked for a student (or anything else)
    would fail here before it could be rendered with it."""
    from jinja2 import meta

    from services.referrals.messages import TEMPLATE_DIR, environment

    env = environment("en")
    allowed = {"services", "note", "kind", "title", "lang", "dir", "content_note", "content_language", "school"}
    for path in sorted(TEMPLATE_DIR.glob("*.j2")):
        source = path.read_text(encoding="utf-8")
        wanted = meta.find_undeclared_variables(env.parse(source)) - {"_", "gettext", "ngettext", "s"}
        assert wanted <= allowed, (path.name, wanted - allowed)
