"""Sharing: turn a request into a share, its referrals, delivery jobs and events, in ONE transaction.

Rules enforced here, in order:

1. Only school, district and program staff share (operators and auditors never
   touch student data).
2. With a student: identity decides, on every share, whether the caller may act
   for that student (``share_context``: serves them, same school, not fenced for
   deletion) and which contacts are authorised. Only their opaque ids are
   stored; addresses are asked again at send time. Directory's public service
   details may come from a cache of a few seconds (``directory_cache``).
3. Without a student (a walk-in family): nothing about the family is stored; a
   typed address lives in its delivery row until that delivery ends.
4. A service owned by another program on the platform sends the referral to
   that program: student information leaves the school, so consent is required
   and a FERPA disclosure record is written.
5. Every referral stages one ``share_recorded`` event (exactly the contract's
   fields) in the outbox, committed with the rows.
6. With an ``Idempotency-Key``, a repeat of the request answers with the share the
   first one made and writes nothing (``idempotency``); the key is one more row in
   the share's statement, and without one nothing extra is read or written.
7. Shares that arrive while others are being written are written together next
   (``batching``): one ``share_contexts`` call to identity and one transaction for
   all of them, each share refused or answered on its own. A lone share goes as
   before: ``share_context``, its own transaction.

Example::

    >>> create_share(db, identity, directory, catalogue, batches, auth, {"student_id": s, "contact_ids": [c],
    ...     "service_ids": [svc], "channel": "sms", "note": "Ask for Ana"})
    ({"items": [{"id": "…", "status": "requested", "deliveries": [{"state": "queued"}], …}]})
"""
from __future__ import annotations

import dataclasses
import hashlib
import secrets
import uuid
from datetime import timedelta
from types import SimpleNamespace

import eventlet
from nameko.exceptions import deserialize
from sqlalchemy.exc import SQLAlchemyError

from services.referrals import idempotency
from services.referrals.directory_cache import resolve
from services.referrals.exceptions import ConsentRequired, ContactUnreachable, ListNotFound
from services.referrals.models import (
    Delivery, Disclosure, IdempotencyKey, OutboxMessage, Referral, SavedList, Share, ShareRecipient, StatusChange,
)
from services.referrals.localization import delivered_language
from services.referrals.messages import service_facts
from services.referrals.schemas import ShareRequestSchema
from services.referrals.views import referral_view
from weintervene.auth import STUDENT_DATA_ROLES, AuthContext, TenantKind
from weintervene.config import settings
from weintervene.contracts import SHARE_RECORDED, ShareRecorded
from weintervene.db import insert_together, new_id, utcnow
from weintervene.errors import Forbidden, Unavailable, WeInterveneError
from weintervene.messaging import outbox_rows
from weintervene.validation import load

DISCLOSED_FIELDS = ["student_first_name"]

# Made once (marshmallow builds a schema's fields on every instantiation); loading and
# dumping keep no state on them.
SHARE_REQUEST = ShareRequestSchema()
SHARE_RECORDED_EVENT = ShareRecorded()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_link_token() -> str:
    """256 random bits, URL-safe: unguessable; only its hash is stored."""
    return secrets.token_urlsafe(32)


def visible_list(db, caller: AuthContext, list_id: str) -> SavedList:
    saved = db.get(SavedList, list_id)
    if saved is None or saved.tenant_id != caller.tenant_id or (
        saved.owner_id != caller.user_id and not saved.shared
    ):
        raise ListNotFound("No such list.")
    return saved


def _checked_contacts(contacts: list[dict], contact_ids: list[str], channel: str) -> list[dict]:
    by_id = {str(c["id"]): c for c in contacts}
    # identity refuses unauthorised contacts; check again, since sending to the
    # wrong person is the one mistake this service must never make.
    if set(by_id) != set(contact_ids) or not all(c.get("authorised") for c in contacts):
        raise Forbidden("Only authorised contacts of this student can receive information.",
                        code="contact_forbidden")
    needed = {"email": "email", "sms": "mobile"}.get(channel)
    for contact in contacts:
        if needed and not contact.get(needed):
            raise ContactUnreachable(
                f"This contact has no {'email address' if needed == 'email' else 'mobile number'}.",
                details={"contact_id": str(contact["id"])},
            )
    return [by_id[c] for c in contact_ids]


def _foreign_owner(caller: AuthContext, service: dict) -> str | None:
    """The tenant owning a service, when that is another tenant than the caller's."""
    owner = service.get("owner_tenant_id")
    return str(owner) if owner and str(owner) != caller.tenant_id else None


def _receiving_program(identity, caller: AuthContext, service: dict, tenants: dict) -> dict | None:
    """The program tenant a service belongs to, when it is another tenant on the platform.

    ``tenants`` holds what identity already told about the owners known before
    asking it; an owner learnt later (directory's answer was not cached) is asked now.
    """
    owner = _foreign_owner(caller, service)
    if owner is None:
        return None
    tenant = tenants.get(owner) or identity.tenant_info(owner)
    return tenant if tenant.get("kind") == TenantKind.PROGRAM.value else None


@dataclasses.dataclass
class ShareRequest:
    """A share request checked as far as referrals can alone, before identity is asked."""

    caller: AuthContext
    auth: dict
    values: dict
    key: idempotency.RequestKey | None
    student_id: str | None
    contact_ids: list[str]
    services: list[dict]
    owners: list[str]  # other tenants owning a service: identity says which are programs


@dataclasses.dataclass
class ShareRows:
    """A share ready to write: its rows in foreign-key order, and the answer once committed."""

    request: ShareRequest
    rows: list[tuple[type, list[dict]]]
    answer: dict


def create_share(db, identity, directory, catalogue, batches, auth: dict, data: dict,
                 idempotency_key: str | None = None) -> dict:
    """Check, write and answer one share; shares arriving together are written together.

    ``batches`` (a :class:`~services.referrals.batching.NaturalBatcher`) runs the rest in
    the worker that leads the batch: one identity round trip and one transaction for
    every share in it, each share still refused or answered on its own.
    """
    request = read_request(db, directory, catalogue, auth, data, idempotency_key)
    return batches.submit(request, lambda batch: write_batch(db, identity, batch))


def read_request(db, directory, catalogue, auth: dict, data: dict, idempotency_key: str | None) -> ShareRequest:
    """Validate the request and look its services up (directory, or its few-seconds cache)."""
    caller = AuthContext.from_dict(auth).require(*STUDENT_DATA_ROLES)
    values = load(SHARE_REQUEST, data)
    key = idempotency.RequestKey.of(caller, idempotency_key, values) if idempotency_key is not None else None
    if values["list_id"]:
        saved = visible_list(db, caller, str(values["list_id"]))
        service_ids = [item.service_id for item in saved.items]
        if not service_ids:
            raise ListNotFound("That list has no services.", code="list_empty")
    else:
        service_ids = list(dict.fromkeys(str(s) for s in values["service_ids"]))
    services = [resolve(item) for item in catalogue.get_many(directory, auth, service_ids)]
    student_id = str(values["student_id"]) if values["student_id"] else None
    owners = sorted({o for o in (_foreign_owner(caller, s) for s in services) if o}) if student_id else []
    return ShareRequest(caller=caller, auth=auth, values=values, key=key, student_id=student_id,
                        contact_ids=[str(c) for c in values["contact_ids"]], services=services, owners=owners)


def write_batch(db, identity, batch: list) -> None:
    """Settle every :class:`~services.referrals.batching.Pending` of ``batch`` (of ShareRequest).

    Identity is asked once for all of them (``share_context`` for one, ``share_contexts``
    for several); each share is then built on its own (a refusal is that share's
    outcome), and the rest are written in ONE statement and ONE transaction. Should it
    fail (a repeated Idempotency-Key is a unique violation in it, or any row of one
    share), it is rolled back and each share is written alone, so only the faulty one
    fails and a repeat answers with its first share.

    Example: write_batch(db, identity, [Pending(read_request(...)), …]) -> None (each
    Pending resolved with its 201 answer, or failed with its refusal)
    """
    contexts = share_contexts(identity, [item.request for item in batch])
    ready = []
    for item, context in zip(batch, contexts):
        try:
            if isinstance(context, Exception):
                raise context
            ready.append((item, build_share(db, identity, item.request, context)))
        except Exception as refused:  # this share's refusal (or fault) is its own outcome
            item.fail(refused)
    if not ready:
        return
    # Together first: one statement and one commit for the lot, key rows included. A key
    # taken already (a repeat, or twins in this batch) is a unique violation there, and
    # each share then goes alone, where ``idempotency.record`` tells a repeat apart.
    if len(ready) > 1 or ready[0][1].request.key is not None:
        try:
            insert_together(db, _merged([rows for _, rows in ready]), commit=True)
        except SQLAlchemyError:
            db.rollback()
        else:
            for item, rows in ready:
                item.resolve(rows.answer)
            return
    for item, rows in ready:
        try:
            item.resolve(write_one(db, rows))
        except Exception as exc:
            db.rollback()
            item.fail(exc)


def share_contexts(identity, requests: list[ShareRequest]) -> list:
    """Identity's answer for each request: its share context, or the refusal (an exception);
    a request without a student needs none (an empty context)."""
    answers: list = [{"student": None, "contacts": [], "tenants": {}}] * len(requests)
    asks = [(n, r) for n, r in enumerate(requests) if r.student_id]
    if not asks:  # walk-in families only: nothing to ask
        return answers
    # Bounded: the whole batch waits on this call, and the caller on the batch.
    timeout = eventlet.Timeout(settings().rpc_timeout_seconds,
                               Unavailable("Identity did not answer in time; share again.", code="service_timeout"))
    with timeout:
        if len(asks) == 1:
            n, r = asks[0]
            try:
                answers[n] = identity.share_context(r.auth, r.student_id, r.contact_ids, r.owners)
            except WeInterveneError as refused:
                answers[n] = refused
        else:
            replies = identity.share_contexts([
                {"auth": r.auth, "student_id": r.student_id, "contact_ids": r.contact_ids, "tenant_ids": r.owners}
                for _, r in asks])
            for (n, _), reply in zip(asks, replies):
                answers[n] = deserialize(reply["error"]) if reply.get("error") else reply["context"]
    return answers


def _contact_language(contact: dict) -> str:
    """The shipped language a roster contact receives: theirs, else their second one (when the
    roster records it), else English; the share dialog showed the sharer which before sending."""
    return delivered_language(contact.get("preferred_language"), contact.get("second_language"))


def build_share(db, identity, request: ShareRequest, context: dict) -> ShareRows:
    """The share's rows and its answer, from the request and identity's context (``db``: only to
    mark the outbox rows staged, so the commit wakes the relay)."""
    caller, values, student_id, contact_ids = request.caller, request.values, request.student_id, request.contact_ids
    channel = values["channel"]
    student = context["student"]
    contacts = _checked_contacts(context["contacts"], contact_ids, channel) if contact_ids else []
    services = request.services
    programs = [_receiving_program(identity, caller, s, context["tenants"]) if student_id else None
                for s in services]
    if any(programs) and not values["consent"]:
        raise ConsentRequired(
            "This service is run by a program outside your school: record the family's consent "
            "before sharing the student's information with it.",
            details={"consent": ["Required for a program on the platform."]},
        )

    cfg = settings()
    now = utcnow()
    language = values["language"] or (_contact_language(contacts[0]) if contacts else "en")
    share = {
        "id": new_id(), "tenant_id": caller.tenant_id, "district_id": caller.district_id,
        "sharer_id": caller.user_id, "sharer_role": caller.role.value, "student_id": student_id,
        "channel": channel, "language": language,
        "note": values["note"], "list_id": str(values["list_id"]) if values["list_id"] else None,
        "link_token_hash": None, "link_expires_at": None, "created_at": now,
    }
    link_token = None
    if channel == "link":
        link_token = new_link_token()
        share["link_token_hash"] = token_hash(link_token)
        share["link_expires_at"] = now + timedelta(days=cfg.referral_link_ttl_days)

    follow_up_on = (now + timedelta(days=cfg.referral_reminder_days)).date() if student_id else None
    referrals, history, disclosures, events = [], [], [], []
    for position, (service, program) in enumerate(zip(services, programs)):
        referral = {
            "id": new_id(), "share_id": share["id"], "position": position, "tenant_id": caller.tenant_id,
            "service_id": str(service["id"]), "service_info": service_facts(service),
            "receiving_tenant_id": None, "disclosed": None, "status": "requested", "outcome": None,
            "follow_up_on": follow_up_on, "last_update_at": now, "reminded_at": None, "created_at": now,
        }
        referrals.append(referral)
        history.append({"id": new_id(), "referral_id": referral["id"], "status": "requested", "outcome": None,
                        "note": None, "changed_by": caller.user_id, "changed_by_tenant_id": caller.tenant_id,
                        "at": now})
        if program:
            referral["receiving_tenant_id"] = str(program["id"])
            referral["disclosed"] = {"student_first_name": student.get("first_name")}
            disclosures.append({
                "id": new_id(), "tenant_id": caller.tenant_id, "student_id": student_id,
                "referral_id": referral["id"], "recipient_tenant_id": str(program["id"]),
                "recipient_name": program.get("name") or "", "disclosed_by": caller.user_id, "disclosed_at": now,
                "information": DISCLOSED_FIELDS, "basis": "consent", "consent": _consent_json(values["consent"]),
            })
        events.append((SHARE_RECORDED, SHARE_RECORDED_EVENT.dump({
            "event_id": uuid.uuid4(),
            "tenant_id": caller.tenant_id,
            "district_id": caller.district_id,
            "service_id": str(service["id"]),
            "taxonomy_term_ids": [str(t) for t in service.get("taxonomy_term_ids") or []][:50],
            "channel": channel,
            "occurred_on": now.date(),
        })))

    deliveries = []
    if channel in ("email", "sms"):
        if student_id:
            targets = [("contact", str(c["id"]), None, values["language"] or _contact_language(c))
                       for c in contacts]
        else:
            address = values["recipient_email"] if channel == "email" else values["recipient_mobile"]
            targets = [("walk_in", None, address, share["language"])]
        deliveries = [{
            "id": new_id(), "share_id": share["id"], "referral_id": None, "purpose": "share", "channel": channel,
            "recipient_kind": kind, "recipient_id": recipient, "transient_address": address, "language": lang,
            "state": "queued", "attempts": 0, "next_attempt_at": now, "created_at": now,
        } for kind, recipient, address, lang in targets]

    rows = [
        (Share, [share]),
        (IdempotencyKey, [request.key.row(share["id"], now)] if request.key is not None else []),
        (ShareRecipient, [{"share_id": share["id"], "contact_id": c} for c in contact_ids]),
        (Referral, referrals),
        (StatusChange, history),
        (Disclosure, disclosures),
        (OutboxMessage, outbox_rows(db, OutboxMessage, events)),
        (Delivery, deliveries),
    ]
    shared = SimpleNamespace(**share, recipients=[SimpleNamespace(contact_id=c) for c in contact_ids])
    answer = {"items": [referral_view(SimpleNamespace(**r, share=shared), caller, link_token=link_token)
                        for r in referrals]}
    return ShareRows(request=request, rows=rows, answer=answer)


def write_one(db, share: ShareRows) -> dict:
    """Write one share in its own transaction and answer it, or answer the first share of a
    repeated Idempotency-Key (its key row goes in through ``idempotency.record``, which finds a
    committed or concurrent twin without a unique violation: see :mod:`idempotency`)."""
    key = share.request.key
    rows = [(model, rows) for model, rows in share.rows if model is not IdempotencyKey]
    if key is None:
        insert_together(db, rows, commit=True)
        return share.answer
    insert_together(db, rows)
    share_id = share.rows[0][1][0]["id"]
    if not idempotency.record(db, key, share_id, share.rows[0][1][0]["created_at"]):
        db.rollback()  # a repeat: nothing of this one is kept; answer with the first share
        return replayed(db, idempotency.replay(db, key), share.request.caller)
    db.commit()
    return share.answer


def _merged(shares: list[ShareRows]) -> list[tuple[type, list[dict]]]:
    """The rows of several shares, table by table in foreign-key order."""
    merged: dict[type, list[dict]] = {}
    for share in shares:
        for model, rows in share.rows:
            merged.setdefault(model, []).extend(rows)
    return list(merged.items())


def replayed(db, share: Share, caller: AuthContext) -> dict:
    """The answer to a repeat of a share request (same Idempotency-Key, same body): the
    share's referrals, same ids, as they are now, marked ``idempotent_replayed``.

    A link share gets a fresh one-time token. Only the hash of the first one is stored, so
    it cannot be shown again; the new hash replaces it (the old link stops working; the
    expiry stays). This is safe: the caller is the user who made the share (keys are theirs
    alone) and may open it anyway, and a repeat means the first answer never reached them,
    so nobody was given the old token and no working link is lost. A client that read the
    first answer and repeats it all the same gets a new link; the old one says "expired",
    and never shows anything but this share's services. So a client with two answers for
    one key (two requests at once) keeps the last one it received; the web app never has
    two, as it sends nothing while a share request is on its way.

    Example: replayed(db, share, caller) -> {"items": [{"id": "…", "link_url": ".../r/Zq…"}],
    "idempotent_replayed": True}
    """
    link_token = None
    if share.channel == "link":
        link_token = new_link_token()
        share.link_token_hash = token_hash(link_token)
        db.commit()
    return {"items": [referral_view(r, caller, link_token=link_token) for r in share.referrals],
            "idempotent_replayed": True}


def _consent_json(consent: dict | None) -> dict | None:
    if not consent:
        return None
    return {**consent, "given_on": consent["given_on"].isoformat()}
