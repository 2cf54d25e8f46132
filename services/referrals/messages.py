"""What families and sharers read: the share in the recipient's language.

Templates are Jinja2 files in ``templates/``; HTML ones are autoescaped, so a
note or a service name can never inject markup. Their words come from the gettext catalogs
of :mod:`services.referrals.localization` through Jinja's ``i18n`` extension (one environment
per language, so concurrent renders never share an installed catalog); hours and cost are
said per locale. An unshipped language is answered in English (the share form has said so).

Example::

    >>> render_share("es", [facts], note="Pregunte por Ana")["sms"]
    'Su escuela le compartió un servicio (datos en inglés):\\nCasa Azul, 12 Main St, Horario: lun–vie 9:00–17:00…'
"""
from __future__ import annotations

import functools
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.referrals import localization
from services.referrals.localization import DIRECTORY_CONTENT_LANGUAGE, SOURCE_LANGUAGE

TEMPLATE_DIR = Path(__file__).parent / "templates"


@functools.lru_cache(maxsize=None)
def environment(language: str) -> Environment:
    """The template environment of one shipped language, its catalog installed."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the code: no stat() of every template file on every render.
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(localization.translations(language), newstyle=True)
    return env


def language_of(language: str | None) -> str:
    return localization.normalise(language) or SOURCE_LANGUAGE


def service_facts(service: dict) -> dict:
    """The public facts of a directory service printed in a share (HSDS dict in, flat dict out).
    The weekly ``schedules`` are kept so hours are said in each family's locale."""
    location = (service.get("locations") or [{}])[0] or {}
    address = location.get("address") or {}
    street = ", ".join(
        part for part in (
            address.get("address_1"), address.get("city"),
            " ".join(p for p in (address.get("state_province"), address.get("postal_code")) if p),
        ) if part
    )
    phones = [p.get("number") for p in service.get("phones") or [] if p.get("number")]
    hours = service.get("hours_text")
    if not hours:
        hours = "; ".join(s.get("hours_text") for s in service.get("schedules") or [] if s.get("hours_text")) or None
    organization = service.get("organization") or {}
    return {
        "id": str(service["id"]),
        "name": service.get("name") or "",
        "organization": organization.get("name"),
        "description": service.get("description"),
        "address": street or None,
        "phone": phones[0] if phones else None,
        "hours": hours,
        "schedules": [{k: s.get(k) for k in ("byday", "opens_at", "closes_at", "freq")}
                      for s in service.get("schedules") or [] if s.get("opens_at") and s.get("closes_at")][:20],
        "eligibility": service.get("eligibility_description"),
        "languages": list(service.get("languages") or []),
        "cost": service.get("cost"),
        "url": service.get("url"),
        "email": service.get("email"),
        # Not printed: kept so the referral's closing is counted under its categories.
        "taxonomy_term_ids": [str(t) for t in service.get("taxonomy_term_ids") or []][:50],
    }


def localised_facts(service: dict, language: str) -> dict:
    """A service's facts as one family reads them: hours in the locale's days and clock (the
    directory's own hours text when its schedules cannot be read), cost in words."""
    facts = dict(service)
    facts["hours"] = localization.hours_text(service.get("schedules") or [], language) or service.get("hours")
    facts["cost_words"] = localization.cost_words(service.get("cost"), language)
    return facts


def content_note(language: str) -> str | None:
    """"The service's details are as the directory wrote them, in English." in the family's
    language, when the directory's language is not theirs."""
    if language == DIRECTORY_CONTENT_LANGUAGE:
        return None
    _ = localization.translations(language).gettext
    return _("The names and details of the services below are as the directory wrote them, in %(language)s.") % {
        "language": localization.language_name(DIRECTORY_CONTENT_LANGUAGE, language)}


def subject(language: str, services: list[dict]) -> str:
    _ = localization.translations(language).gettext
    if len(services) == 1:
        return _("A service for your family: %(name)s") % {"name": services[0]["name"]}
    return _("Services for your family (%(count)s)") % {"count": len(services)}


def render(template: str, language: str, services: list[dict], **extra) -> str:
    language = language_of(language)
    return environment(language).get_template(template).render(
        lang=language, dir=localization.direction(language), content_note=content_note(language),
        content_language=None if language == DIRECTORY_CONTENT_LANGUAGE
        else localization.language_name(DIRECTORY_CONTENT_LANGUAGE, language),
        services=[localised_facts(s, language) for s in services], **extra)


def render_share(language: str, services: list[dict], note: str | None = None, channel: str | None = None) -> dict:
    """Every rendering of one share: email subject/text/html and the SMS body; only the
    email's (``channel="email"``) or the SMS's (``channel="sms"``) when that is all that is sent."""
    language = language_of(language)
    rendered = {}
    if channel in (None, "email"):
        rendered["subject"] = subject(language, services)
        rendered["text"] = render("share_email.txt.j2", language, services, note=note)
        rendered["html"] = render("share_email.html.j2", language, services, note=note)
    if channel in (None, "sms"):
        rendered["sms"] = render("share_sms.txt.j2", language, services, note=note).strip()
    return rendered


def page_title(language: str, kind: str) -> str:
    _ = localization.translations(language).gettext
    return _("Services for your family") if kind == "print" else _("Services shared with you")


def render_page(language: str, services: list[dict], note: str | None, kind: str) -> str:
    """The print-ready page (``kind="print"``) or the public link page (``kind="link"``)."""
    language = language_of(language)
    return render("page.html.j2", language, services, note=note, kind=kind, title=page_title(language, kind))


def render_link_gone(language: str | None, school: str | None) -> str:
    """The page of an expired or unknown link, in the family's language, naming the school."""
    language = language_of(language)
    return environment(language).get_template("link_gone.html.j2").render(
        lang=language, dir=localization.direction(language), school=school)


def render_reminder(language: str, service_name: str, days: int, status: str, url: str) -> tuple[str, str]:
    _ = localization.translations(language_of(language)).gettext
    values = {"name": service_name, "days": days, "status": status}
    return (
        _("Follow up: %(name)s") % values,
        _("You shared %(name)s %(days)s days ago and its status is still \"%(status)s\".") % values + "\n"
        + _("Please check in with the family and update the referral:") + f"\n{url}\n",
    )
