"""The analytics service: de-identified share counters and the reports built on them.

- ``counting``: the only way in is ``referrals.share_recorded`` loaded with the shared
  contract; counters (tenant, day, service, term, channel -> count) are upserted with
  the event ids in one transaction, so duplicates and redelivery change nothing.
- ``intake``: the consumer hands the service a batch of events; one transaction and
  one acknowledgement per batch, the acknowledgement after the commit.
- ``scope``: who sees which tenants (own school; a district side by side; operators
  only consenting tenants), ``periods``: local-day periods, ``suppression``: small
  counts hidden with complementary cells, ``reports``: the six reports and CSV.

``occurred_on`` is the school's local day, computed by referrals in the school's
time zone; analytics never converts it, and uses the time zone only for "today".
"""
