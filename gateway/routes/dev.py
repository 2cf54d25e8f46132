"""Development mode's "Messages sent": what the demo's catcher (weintervene.catcher) caught.

Only in development mode (``WEINTERVENE_DEV_MODE=1``, which production refuses to need):
elsewhere the endpoint does not exist (404). The operator reads it whenever it is on; while
the demo's catcher runs (``make run``), every signed-in demo account does too, so a teacher
sees the share they just sent arrive. It shows what families received: demo data only.
"""
from __future__ import annotations

from marshmallow import Schema, fields

from gateway.http import route
from weintervene.auth import Role
from weintervene.catcher import caught_messages
from weintervene.config import settings
from weintervene.errors import Forbidden, NotFound


class CaughtMessageSchema(Schema):
    id = fields.String(required=True)
    received_at = fields.String(required=True)
    channel = fields.String(required=True, metadata={"enum": ["email", "sms"]})
    to = fields.String(required=True)
    subject = fields.String(allow_none=True)
    language = fields.String(allow_none=True, metadata={"description": "Content-Language of an email; "
                                                        "null for an SMS (the provider's API carries none)"})
    text = fields.String(required=True)
    html = fields.String(allow_none=True)
    sid = fields.String()


class CaughtMessagesSchema(Schema):
    catcher_running = fields.Boolean(required=True)
    items = fields.List(fields.Nested(CaughtMessageSchema), required=True)


class DevRoutes:
    @route("GET", "/api/v1/dev/messages", summary="Messages the demo's catcher received (development mode only)",
           tags=["system"], response=CaughtMessagesSchema,
           errors={403: "Not an operator, and no demo catcher runs", 404: "Not in development mode"})
    def caught_messages(self, request, auth, **_):
        """-> ``{"catcher_running": true, "items": [{"channel": "sms", "to": "+1555…", "text": "…", …}]}``,
        newest first."""
        cfg = settings()
        if not cfg.dev_mode:
            raise NotFound("Messages sent exist only in development mode")
        items = caught_messages(cfg.data_dir)
        if auth.role != Role.OPERATOR and items is None:
            raise Forbidden("Messages sent are the operator's, or every demo account's while the demo runs")
        return {"catcher_running": items is not None, "items": items or []}
