"""The retention service: deletion requests, their proof, exports and inspection requests.

- ``deletions``: requests (student opt-out, tenant termination, user removal,
  policy runs), identity's fence before dispatch, the FERPA guard, dispatch
  through the outbox, re-sends to silent services, confirmations, completion.
- ``audit``: the append-only, hash-chained audit log (``weintervene audit verify``).
- ``exports``: a data owner's export and a parent's inspection/amendment requests;
  the data comes from each service's ``export_tenant``/``export_student``
  (``weintervene.export.DataExporter``) when downloaded and is never stored here.

Nothing retention keeps names a person: subjects are HMAC references; the raw
id is kept only while a deletion is in flight.
"""
