"""The print-ready PDF of a share (the HTML version is ``messages.render_page``).

fpdf2's built-in Helvetica covers Latin-1, which holds English and Spanish
(á, é, ñ, ¿, ¡); any other character is replaced rather than failing the page.

Example::

    >>> pdf_bytes = share_pdf("es", [facts], note="Pregunte por Ana")
    >>> pdf_bytes[:5]
    b'%PDF-'
"""
from __future__ import annotations

from fpdf import FPDF

from services.referrals.messages import text_for


def _latin1(value) -> str:
    return str(value or "").encode("latin-1", "replace").decode("latin-1")


def share_pdf(language: str, services: list[dict], note: str | None = None) -> bytes:
    t = text_for(language)
    pdf = FPDF(format="Letter")
    pdf.set_title(_latin1(t["print_title"]))
    pdf.set_creator("WeIntervene")
    pdf.set_lang(t["lang"])
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 10, _latin1(t["print_title"]), new_x="LMARGIN", new_y="NEXT")
    if note:
        pdf.set_font("Helvetica", "I", 11)
        pdf.multi_cell(0, 6, _latin1(f"{t['note']}: {note}"), new_x="LMARGIN", new_y="NEXT")
    for service in services:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(0, 8, _latin1(service["name"]), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        rows = [
            (t["address"], service.get("address")),
            (t["phone"], service.get("phone")),
            (t["hours"], service.get("hours")),
            (t["eligibility"], service.get("eligibility")),
        ]
        if service.get("cost"):
            rows.append((t["cost"], t["costs"].get(service["cost"], service["cost"])))
        for label, value in rows:
            pdf.multi_cell(0, 6, _latin1(f"{label}: {value or t['unknown']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, _latin1(t["footer"]), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
