"""How a referral looks to each caller: the sharer's school sees it whole; a
receiving program sees only what was disclosed to it under consent."""
from __future__ import annotations

from sqlalchemy import select

from services.referrals.models import Referral, Share
from services.referrals.schemas import ReferralSchema
from weintervene.auth import PROGRAM_ROLES, AuthContext, Role
from weintervene.config import settings

REFERRAL = ReferralSchema()  # made once; dumping keeps no state on it

RECEIVED_REFERRALS_TABLE = "received_referral"
"""The name of the referrals a program received, in its tenant export (not a table of its own)."""


def is_incoming_for(referral, caller: AuthContext) -> bool:
    return (
        caller.role in PROGRAM_ROLES
        and referral.receiving_tenant_id is not None
        and referral.receiving_tenant_id == caller.tenant_id
        and referral.share.tenant_id != caller.tenant_id
    )


def referral_view(referral, caller: AuthContext, link_token: str | None = None, detail: bool = False) -> dict:
    """The referral as ``caller`` may see it (``detail`` adds history and delivery attempts)."""
    share = referral.share
    incoming = is_incoming_for(referral, caller)
    base = settings().public_base_url.rstrip("/")
    data = {
        "id": referral.id,
        "share_id": share.id,
        "tenant_id": share.tenant_id,
        "sharer_id": share.sharer_id,
        "service_id": referral.service_id,
        "service": referral.service_info,
        "channel": share.channel,
        "language": share.language,
        "status": referral.status,
        "outcome": referral.outcome,
        "follow_up_on": referral.follow_up_on,
        "incoming": incoming,
        "receiving_tenant_id": referral.receiving_tenant_id,
        "created_at": referral.created_at,
        "last_update_at": referral.last_update_at,
        "print_url": f"{base}/api/v1/referrals/{referral.id}/print",
        "link_url": f"{base}/r/{link_token}" if link_token else None,
        "link_expires_at": share.link_expires_at,
    }
    if incoming:
        # The program learns only what the school disclosed with consent.
        data.update(student_id=None, contact_ids=[], note=None, disclosed=referral.disclosed)
    else:
        data.update(
            student_id=share.student_id,
            contact_ids=[r.contact_id for r in share.recipients],
            note=share.note,
            disclosed=referral.disclosed,
        )
    if detail:
        data["history"] = [
            {"status": h.status, "outcome": h.outcome, "note": h.note, "changed_by": h.changed_by, "at": h.at}
            for h in referral.history
        ]
        if not incoming:
            data["deliveries"] = [
                {
                    "id": d.id, "purpose": d.purpose, "channel": d.channel, "recipient_kind": d.recipient_kind,
                    "recipient_id": d.recipient_id, "language": d.language, "state": d.state,
                    "attempts": d.attempts, "next_attempt_at": d.next_attempt_at if d.state == "queued" else None,
                    "last_error": d.last_error, "sent_at": d.sent_at,
                    "attempt_log": [
                        {"number": a.number, "started_at": a.started_at, "finished_at": a.finished_at,
                         "result": a.result, "reason": a.reason}
                        for a in d.attempt_log
                    ],
                }
                for d in share.deliveries if d.purpose == "share"
            ]
    return REFERRAL.dump(data)


def received_referrals(db, tenant_ids) -> list[dict]:
    """The referrals other tenants sent to ``tenant_ids`` (programs), each exactly as the
    program's staff see it in the app (``referral_view`` for an incoming caller, with its
    history): no student id, contacts or the sharer's note, only what was disclosed under
    consent. For the program's export; the rows themselves are the sending school's.

    Example: received_referrals(db, [program_id]) -> [{"id": "…", "incoming": true,
    "student_id": null, "disclosed": {"first_name": "Ana"}, "history": […], …}]
    """
    tenant_ids = [str(t) for t in tenant_ids]
    stmt = (
        select(Referral).join(Referral.share)
        .where(Referral.receiving_tenant_id.in_(tenant_ids), Share.tenant_id.not_in(tenant_ids))
        .order_by(Referral.created_at, Referral.id)
    )
    rows = []
    for referral in db.scalars(stmt).unique():
        program_staff = AuthContext(user_id="export", tenant_id=referral.receiving_tenant_id,
                                    role=Role.PROGRAM_STAFF)
        view = referral_view(referral, program_staff, detail=True)
        if not view["incoming"]:  # the app's own rule decides, as on the program's pages
            continue
        for link in ("print_url", "link_url", "link_expires_at"):  # addresses of the live app, not data
            view.pop(link, None)
        rows.append(view)
    return rows
