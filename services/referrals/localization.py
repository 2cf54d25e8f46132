"""The languages families are written to: gettext catalogs (Babel) and per-locale formatting.

Every text a family reads comes from ``locale/<code>/LC_MESSAGES/messages.po``, managed with
``make translations`` (``pybabel extract`` → ``messages.pot``, ``pybabel update``, ``pybabel
compile``). The ``.po`` files are the source of truth and the only thing under version control:
:func:`translations` compiles a catalog in memory with Babel the first time a language is used
(a few milliseconds), so a clean checkout runs without a build step and a stale ``.mo`` can
never be served. Days, times and cost are said per locale with Babel's CLDR data, never by
string templates. ``docs/LANGUAGES.md`` says how a district adds or corrects a language.

Example::

    >>> hours_text([{"byday": "MO,TU,WE,TH,FR", "opens_at": "09:00", "closes_at": "17:00"}], "es")
    'lun–vie 9:00–17:00'
    >>> delivered_language("so-SO")
    'so'
    >>> translations("es").gettext("Cost")
    'Costo'
"""
from __future__ import annotations

import functools
import io
from datetime import time
from pathlib import Path

from babel import Locale
from babel.dates import format_time
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE_LANGUAGE = "en"
# The ten languages most spoken by US English learners' families, and English (the source).
SHIPPED = ("en", "es", "ar", "zh", "vi", "ht", "so", "ru", "pt", "tl", "ko")
# The language the directory's own content (names, descriptions, hours notes) is written in:
# shares say so in the family's language whenever that is another one.
DIRECTORY_CONTENT_LANGUAGE = "en"
_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
# Where CLDR's data for a shipped language is missing and inherited from another one (Haitian
# Creole's falls back to French: "lun.", "anglais"), the words a Kreyòl reader uses.
_CLDR_GAPS = {
    "ht": {"days": ["len", "mad", "mèk", "jed", "van", "sam", "dim"], "languages": {"en": "angle"}},
    # CLDR's abbreviated Korean day period is the Latin "AM"/"PM"; Korean print says 오전/오후
    # (CLDR's wide form, "aaaa").
    "ko": {"clock": "aaaa h:mm"},
}


def normalise(code: str | None) -> str | None:
    """The shipped catalog of a language tag ("es-MX" → "es", "zh-Hans" → "zh", "fil" → "tl"),
    or None when we do not ship it."""
    if not code:
        return None
    base = str(code).strip().replace("_", "-").split("-")[0].lower()
    base = {"fil": "tl", "cmn": "zh", "hat": "ht", "som": "so"}.get(base, base)
    return base if base in SHIPPED else None


def delivered_language(preferred: str | None, second: str | None = None) -> str:
    """The language a contact receives: their preferred one if shipped, else their second
    language if recorded and shipped, else English (never a silent guess: the share form and
    the share's answer say which)."""
    return normalise(preferred) or normalise(second) or SOURCE_LANGUAGE


def locale(language: str) -> Locale:
    return Locale.parse(normalise(language) or SOURCE_LANGUAGE)


def direction(language: str) -> str:
    """"rtl" or "ltr", from CLDR (Arabic is right to left)."""
    return "rtl" if locale(language).character_order == "right-to-left" else "ltr"


def language_name(language: str, in_language: str | None = None) -> str:
    """"Arabic" / "árabe" / "العربية": a language's name, said in ``in_language`` (default: itself)."""
    code = normalise(language) or language
    gap = _CLDR_GAPS.get(normalise(in_language or code) or "", {}).get("languages", {})
    if code in gap:
        return gap[code]
    try:
        name = Locale.parse(code).get_language_name(locale(in_language or code))
    except (ValueError, LookupError):
        return code
    return name or code


@functools.lru_cache(maxsize=None)
def translations(language: str) -> NullTranslations:
    """The compiled catalog of a shipped language (English: the msgids themselves)."""
    code = normalise(language) or SOURCE_LANGUAGE
    path = LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"
    if code == SOURCE_LANGUAGE or not path.exists():
        return NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale(code))
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as `pybabel compile` does
    compiled.seek(0)
    return Translations(compiled)


def cost_words(cost: str | None, language: str) -> str:
    """free / low / paid / unknown (directory's cost classes) in words."""
    _ = translations(language).gettext
    words = {
        "free": _("Free"),
        "low": _("Low cost"),
        "paid": _("Fee charged"),
        "unknown": _("Ask the service about cost"),
    }
    return words.get(cost or "unknown", words["unknown"])


def _day_names(language: str) -> dict[str, str]:
    code = normalise(language) or SOURCE_LANGUAGE
    if "days" in _CLDR_GAPS.get(code, {}):
        return dict(zip(_DAYS, _CLDR_GAPS[code]["days"]))
    days = locale(language).days["format"]["abbreviated"]
    return {code: days[i] for i, code in enumerate(_DAYS)}


def _clock(hhmm: str, language: str) -> str:
    hour, minute = int(hhmm[:2]), int(hhmm[3:5])
    pattern = _CLDR_GAPS.get(normalise(language) or "", {}).get("clock", "short")
    # CLDR puts a narrow no-break space before "AM": a plain one keeps an English SMS in GSM-7.
    return format_time(time(hour, minute), format=pattern, locale=locale(language)).replace("\u202f", " ")


def _day_span(days: list[str], language: str) -> str:
    names = _day_names(language)
    idx = sorted(_DAYS.index(d) for d in days)
    if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{names[_DAYS[idx[0]]]}–{names[_DAYS[idx[-1]]]}"
    return format_list([names[_DAYS[i]] for i in idx], style="standard-short", locale=locale(language))


def hours_text(schedules: list[dict], language: str) -> str:
    """Weekly opening hours in one line, in the locale's words and clock; "" when there are none
    readable (the caller then shows the directory's own hours text)."""
    by_time: dict[tuple[str, str], list[str]] = {}
    for s in schedules or []:
        if not s.get("opens_at") or not s.get("closes_at") or s.get("freq") not in (None, "", "WEEKLY"):
            continue
        for day in (s.get("byday") or "").split(","):
            if day in _DAYS:
                days = by_time.setdefault((s["opens_at"][:5], s["closes_at"][:5]), [])
                if day not in days:
                    days.append(day)
    parts = sorted(by_time.items(), key=lambda kv: min(_DAYS.index(d) for d in kv[1]))
    separator = "؛ " if direction(language) == "rtl" else "; "
    return separator.join(
        f"{_day_span(days, language)} {_clock(o, language)}–{_clock(c, language)}" for (o, c), days in parts)
