"""referrals's entrypoints: thin, each delegating to sharing / followup / saved_lists / delivery / erasure."""
from __future__ import annotations

import logging

from nameko.timer import timer
from sqlalchemy.orm import sessionmaker

from services.referrals import backlog, delivery, erasure, followup, idempotency, saved_lists, sharing, sms, sms_callbacks, views
from services.referrals.batching import ShareBatches
from services.referrals.dependencies import referrals_database
from services.referrals.directory_cache import DirectoryServices
from services.referrals.exceptions import BadSignature
from services.referrals.models import DeletionReceipt, OutboxMessage
from weintervene.deletion import DeletionParticipant
from weintervene.entrypoints import rpc
from weintervene.export import DataExporter, export_rows
from weintervene.messaging import OutboxRelay, ReliablePublisher
from weintervene.observability import BACKLOG_SECONDS, EntrypointMetrics, HealthCheck, OutboxBacklogGauges
from weintervene.rpc import ServiceRpc

log = logging.getLogger(__name__)


class ReferralsService(DataExporter, HealthCheck, OutboxRelay, DeletionParticipant, OutboxBacklogGauges):
    name = "referrals"

    db = referrals_database()
    metrics = EntrypointMetrics()
    events = ReliablePublisher()
    outbox_model = OutboxMessage
    receipt_model = DeletionReceipt
    # Free text and addresses (services.referrals.erasure marks the ones a deletion touched).
    tables_with_personal_data = ("share", "referral", "status_change", "delivery", "delivery_attempt")

    identity = ServiceRpc("identity")
    directory = ServiceRpc("directory")
    directory_services = DirectoryServices()
    share_batches = ShareBatches()

    # -- the data owner's export ---------------------------------------------
    @rpc
    def export_tenant(self, request):
        """Every row the tenants hold here (DataExporter) and, for a program, the referrals it
        received, as its staff see them (``received_referral``).

        Example: export_tenant({"tenant_ids": [program_id]}) -> {"received_referral": [{"id": …,
        "student_id": null, "disclosed": {…}, "history": […]}], …}
        """
        tables = export_rows(self.db, request["tenant_ids"], metadata=self._export_metadata())
        received = views.received_referrals(self.db, request["tenant_ids"])
        if received:
            tables[views.RECEIVED_REFERRALS_TABLE] = received
        return tables

    # -- sharing ------------------------------------------------------------
    @rpc
    def share(self, auth, data, idempotency_key=None):
        """Share services with a student's authorised contacts, or a walk-in family.

        With ``idempotency_key`` (the client's Idempotency-Key), a repeat of the same request
        answers with the first one's referrals (``"idempotent_replayed": true``) and shares
        nothing again; the key with another request is ``idempotency_key_reused``.

        Example: share(auth, {"student_id": s, "contact_ids": [c], "service_ids": [svc],
        "channel": "email", "note": "Ask for Ana"}, "0c2f6a1e-…") -> {"items": [{"id": …,
        "status": "requested", "link_url": null, …}]}
        """
        return sharing.create_share(self.db, self.identity, self.directory, self.directory_services,
                                    self.share_batches, auth, data, idempotency_key)

    # -- following up -------------------------------------------------------
    @rpc
    def list_referrals(self, auth, query):
        """list_referrals(auth, {"scope": "mine", "due": true}) -> {"items": […], "total": 3, "page": 1, "per_page": 25}"""
        return followup.list_referrals(self.db, auth, query)

    @rpc
    def get_referral(self, auth, referral_id):
        """get_referral(auth, id) -> the referral with its history and deliveries."""
        return followup.get_referral(self.db, auth, referral_id)

    @rpc
    def update_status(self, auth, referral_id, data):
        """update_status(auth, id, {"status": "completed", "outcome": "connected", "note": "…"}) -> the referral."""
        return followup.update_status(self.db, auth, referral_id, data)

    @rpc
    def print_share(self, auth, referral_id, fmt="html"):
        """print_share(auth, id, "pdf") -> {"pdf_base64": "JVBERi0…"}; "html" -> {"html": "<!doctype html>…"}"""
        return followup.print_share(self.db, auth, referral_id, fmt)

    @rpc
    def open_link(self, token):
        """Public: open_link("Xy…") -> {"html": …} with service information only; LinkNotFound if expired."""
        return followup.open_link(self.db, token)

    @rpc
    def expired_link_page(self, token, accept_language=None):
        """Public: expired_link_page("Xy…", "es-MX,es;q=0.9") -> {"html": …} the page of an expired or
        unknown link, in the family's language, naming the school."""
        return followup.expired_link_page(self.db, self.identity, token, accept_language)

    @rpc
    def list_disclosures(self, auth, student_id):
        """list_disclosures(admin_auth, student_id) -> {"items": [{"recipient_name": "Casa Azul", "basis": "consent", …}]}"""
        return followup.list_disclosures(self.db, self.identity, auth, student_id)

    @rpc
    def sms_status(self, params, signature):
        """The SMS provider's status callback, signed with the account token.

        A callback seen before (the same signature) changes nothing and gets the first answer.

        Example: sms_status({"MessageSid": "SM1…", "MessageStatus": "delivered"}, "base64sig=")
        -> {"updated": true}; BadSignature when the signature does not match.
        """
        if not sms.valid_signature(params, signature):
            raise BadSignature("The callback signature does not match.")
        return sms_callbacks.receive(self.db, params, signature)

    # -- saved lists --------------------------------------------------------
    @rpc
    def get_lists(self, auth):
        """get_lists(auth) -> {"items": [{"name": "Food pantries", "shared": true, "items": […]}], …}"""
        return saved_lists.get_lists(self.db, auth)

    @rpc
    def create_list(self, auth, data):
        """create_list(auth, {"name": "Food pantries", "shared": true, "service_ids": [a]}) -> the list."""
        return saved_lists.create_list(self.db, self.directory, auth, data)

    @rpc
    def add_list_item(self, auth, list_id, data):
        """add_list_item(auth, list_id, {"service_id": s}) -> the list."""
        return saved_lists.add_item(self.db, self.directory, auth, list_id, data)

    @rpc
    def remove_list_item(self, auth, list_id, service_id):
        """remove_list_item(auth, list_id, service_id) -> the list without that service."""
        return saved_lists.remove_item(self.db, auth, list_id, service_id)

    @rpc
    def delete_list(self, auth, list_id):
        """delete_list(auth, list_id) -> None; the owner's own list only."""
        saved_lists.delete_list(self.db, auth, list_id)

    # -- timers -------------------------------------------------------------
    @timer(interval=0.5)
    def deliver(self):
        """Send due email/SMS deliveries, with retry and backoff."""
        delivery.deliver_due(sessionmaker(self.db.get_bind(), expire_on_commit=False), self.identity)

    @timer(interval=2)
    def remind(self):
        """Queue follow-up reminders to sharers of referrals without an update."""
        delivery.queue_reminders(self.db)

    @timer(interval=BACKLOG_SECONDS)
    def measure_deliveries(self):
        """weintervene_deliveries_failing for the alert rules."""
        backlog.measure_failing_deliveries(self.db)

    @timer(interval=3600.0)
    def purge_published_outbox(self):
        """Hourly: the published outbox rows (OutboxRelay's purge), then the idempotency
        keys older than ``idempotency_key_ttl_hours`` and the SMS callbacks seen older than
        ``sms_callback_replay_hours``."""
        OutboxRelay.purge_published_outbox(self)
        n = idempotency.purge_expired(self.db)
        if n:
            log.info("referrals: purged %d idempotency keys", n)
        n = sms_callbacks.purge_expired(self.db)
        if n:
            log.info("referrals: purged %d SMS callbacks seen", n)

    # -- retention ----------------------------------------------------------
    def delete_for(self, request):
        return erasure.delete_for(self.db, request)
