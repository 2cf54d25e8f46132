"""What families and sharers read: the share in the recipient's language.

Templates are Jinja2 files in ``templates/``; HTML ones are autoescaped, so a
note or a service name can never inject markup. Strings are per language in
``TEXT`` (English and Spanish); an unknown language falls back to English.

Example::

    >>> render_share("es", [facts], note="Pregunte por Ana")["sms"]
    'WeIntervene: Le compartieron un servicio: Tutoría Casa Azul, 12 Main St…'
"""
from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    # The templates ship with the code: no stat() of every template file on every render.
    auto_reload=False,
)

TEXT = {
    "en": {
        "lang": "en",
        "subject_one": "A service for your family: {name}",
        "subject_many": "{count} services for your family",
        "intro": "Your school shared this information with you.",
        "intro_sms": "Your school shared a service with you",
        "note": "Note from the sender",
        "address": "Address",
        "phone": "Phone",
        "hours": "Hours",
        "eligibility": "Who can use it",
        "languages": "Languages",
        "cost": "Cost",
        "costs": {"free": "Free", "low": "Low cost", "paid": "Paid"},
        "unknown": "Not listed",
        "footer": "You received this because your school shared it with you. Reply to your school with any questions.",
        "print_title": "Services for your family",
        "link_title": "Services shared with you",
        "reminder_subject": "Follow up: {name}",
        "reminder_body": (
            "You shared {name} {days} days ago and its status is still \"{status}\".\n"
            "Please check in with the family and update the referral:\n{url}\n"
        ),
    },
    "es": {
        "lang": "es",
        "subject_one": "Un servicio para su familia: {name}",
        "subject_many": "{count} servicios para su familia",
        "intro": "Su escuela compartió esta información con usted.",
        "intro_sms": "Su escuela le compartió un servicio",
        "note": "Nota de quien lo envía",
        "address": "Dirección",
        "phone": "Teléfono",
        "hours": "Horario",
        "eligibility": "Quién puede usarlo",
        "languages": "Idiomas",
        "cost": "Costo",
        "costs": {"free": "Gratis", "low": "Bajo costo", "paid": "Pagado"},
        "unknown": "No indicado",
        "footer": "Recibió este mensaje porque su escuela se lo compartió. Si tiene preguntas, responda a su escuela.",
        "print_title": "Servicios para su familia",
        "link_title": "Servicios compartidos con usted",
        "reminder_subject": "Seguimiento: {name}",
        "reminder_body": (
            "Compartió {name} hace {days} días y su estado sigue siendo \"{status}\".\n"
            "Consulte con la familia y actualice la referencia:\n{url}\n"
        ),
    },
}


def text_for(language: str | None) -> dict:
    return TEXT.get(language or "en", TEXT["en"])


def service_facts(service: dict) -> dict:
    """The public facts of a directory service printed in a share (HSDS dict in, flat dict out)."""
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
        "eligibility": service.get("eligibility_description"),
        "languages": list(service.get("languages") or []),
        "cost": service.get("cost"),
        "url": service.get("url"),
        "email": service.get("email"),
        # Not printed: kept so the referral's closing is counted under its categories.
        "taxonomy_term_ids": [str(t) for t in service.get("taxonomy_term_ids") or []][:50],
    }


def subject(language: str, services: list[dict]) -> str:
    t = text_for(language)
    if len(services) == 1:
        return t["subject_one"].format(name=services[0]["name"])
    return t["subject_many"].format(count=len(services))


def render(template: str, language: str, services: list[dict], **extra) -> str:
    return TEMPLATES.get_template(template).render(t=text_for(language), services=services, **extra)


def render_share(language: str, services: list[dict], note: str | None = None, channel: str | None = None) -> dict:
    """Every rendering of one share: email subject/text/html and the SMS body; only the
    email's (``channel="email"``) or the SMS's (``channel="sms"``) when that is all that is sent."""
    rendered = {}
    if channel in (None, "email"):
        rendered["subject"] = subject(language, services)
        rendered["text"] = render("share_email.txt.j2", language, services, note=note)
        rendered["html"] = render("share_email.html.j2", language, services, note=note)
    if channel in (None, "sms"):
        rendered["sms"] = render("share_sms.txt.j2", language, services, note=note).strip()
    return rendered


def render_page(language: str, services: list[dict], note: str | None, kind: str) -> str:
    """The print-ready page (``kind="print"``) or the public link page (``kind="link"``)."""
    return render("page.html.j2", language, services, note=note, kind=kind)


def render_reminder(language: str, service_name: str, days: int, status: str, url: str) -> tuple[str, str]:
    t = text_for(language)
    return (
        t["reminder_subject"].format(name=service_name),
        t["reminder_body"].format(name=service_name, days=days, status=status, url=url),
    )
