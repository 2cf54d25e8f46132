"""analytics's own tables."""
from sqlalchemy.orm import DeclarativeBase

from weintervene.messaging import make_outbox_model, make_processed_event_model


class Base(DeclarativeBase):
    pass


OutboxMessage = make_outbox_model(Base)
ProcessedEvent = make_processed_event_model(Base)
