"""directory's own tables: the HSDS 3.0 shape, plus ownership and a search document.

Every HSDS table keeps exactly the HSDS 3.0 field names (so import, export and the
HSDS API are column-for-column), with UUID text ids. Two additions of ours:

* ``owner_tenant_id`` on services and organizations: None for the global directory
  curated by operators; a school's, district's or program's id for its own
  programs, visible only inside that tenant unless it publishes them
  (``published_to``: its district, or, for a youth program, every school;
  the rule is ``services.directory.visibility``).
* ``ServiceSearch``: one denormalised row per service that search reads (name and
  text, ages, languages, cost, categories, first coordinates), rebuilt whenever
  the service or anything under it changes (``services.directory.indexing``).
"""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from weintervene.db import UTCDateTime, new_id, utcnow
from weintervene.deletion import make_deletion_receipt_model
from weintervene.export import declare_ownership, ownership
from weintervene.messaging import make_outbox_model, make_processed_event_model


class Base(DeclarativeBase):
    pass


OutboxMessage = make_outbox_model(Base)
ProcessedEvent = make_processed_event_model(Base)
# What this service deleted per deletion request, totalled over every run (no personal data).
DeletionReceipt = make_deletion_receipt_model(Base)


def _id():
    return mapped_column(String(36), primary_key=True, default=new_id)


def _ref(target: str | None = None, index: bool = True):
    # References are not enforced with foreign keys: HSDS rows arrive table by
    # table from messy files and the importer checks each reference itself.
    return mapped_column(String(36), nullable=True, index=index)


class Taxonomy(Base):
    __tablename__ = "taxonomy"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    uri: Mapped[str | None] = mapped_column(String(500), nullable=True)
    version: Mapped[str | None] = mapped_column(String(50), nullable=True)


class TaxonomyTerm(Base):
    __tablename__ = "taxonomy_term"
    id: Mapped[str] = _id()
    code: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[str | None] = _ref()
    taxonomy: Mapped[str | None] = mapped_column(String(255), nullable=True)
    language: Mapped[str | None] = mapped_column(String(20), nullable=True)
    taxonomy_id: Mapped[str | None] = _ref()
    term_uri: Mapped[str | None] = mapped_column(String(500), nullable=True)


class Organization(Base):
    __tablename__ = "organization"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(500))
    alternate_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    website: Mapped[str | None] = mapped_column(String(500), nullable=True)
    tax_status: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tax_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    year_incorporated: Mapped[int | None] = mapped_column(Integer, nullable=True)
    legal_status: Mapped[str | None] = mapped_column(String(100), nullable=True)
    uri: Mapped[str | None] = mapped_column(String(500), nullable=True)
    parent_organization_id: Mapped[str | None] = _ref()
    owner_tenant_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    last_modified = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Program(Base):
    __tablename__ = "program"
    id: Mapped[str] = _id()
    organization_id: Mapped[str | None] = _ref()
    name: Mapped[str] = mapped_column(String(500))
    alternate_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Service(Base):
    __tablename__ = "service"
    id: Mapped[str] = _id()
    organization_id: Mapped[str | None] = _ref()
    program_id: Mapped[str | None] = _ref()
    name: Mapped[str] = mapped_column(String(500))
    alternate_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(30), default="active", index=True)
    interpretation_services: Mapped[str | None] = mapped_column(Text, nullable=True)
    application_process: Mapped[str | None] = mapped_column(Text, nullable=True)
    fees_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    wait_time: Mapped[str | None] = mapped_column(Text, nullable=True)
    fees: Mapped[str | None] = mapped_column(Text, nullable=True)
    accreditations: Mapped[str | None] = mapped_column(Text, nullable=True)
    eligibility_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    minimum_age: Mapped[float | None] = mapped_column(Float, nullable=True)
    maximum_age: Mapped[float | None] = mapped_column(Float, nullable=True)
    assured_date: Mapped[str | None] = mapped_column(String(20), nullable=True)
    assurer_email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    licenses: Mapped[str | None] = mapped_column(Text, nullable=True)
    alert: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_modified = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Ours: who owns it (None: the global directory), the owner's district, and
    # who else sees it: "tenant" (only the owner), "district", "schools"
    # (see services.directory.visibility).
    owner_tenant_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    owner_district_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    published_to: Mapped[str] = mapped_column(String(20), default="tenant")


class Location(Base):
    __tablename__ = "location"
    id: Mapped[str] = _id()
    location_type: Mapped[str] = mapped_column(String(20), default="physical")
    url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    organization_id: Mapped[str | None] = _ref()
    name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    alternate_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    transportation: Mapped[str | None] = mapped_column(Text, nullable=True)
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    external_identifier: Mapped[str | None] = mapped_column(String(255), nullable=True)
    external_identifier_type: Mapped[str | None] = mapped_column(String(255), nullable=True)


class ServiceAtLocation(Base):
    __tablename__ = "service_at_location"
    id: Mapped[str] = _id()
    service_id: Mapped[str | None] = _ref()
    location_id: Mapped[str | None] = _ref()
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class Address(Base):
    __tablename__ = "address"
    id: Mapped[str] = _id()
    location_id: Mapped[str | None] = _ref()
    attention: Mapped[str | None] = mapped_column(String(255), nullable=True)
    address_1: Mapped[str] = mapped_column(String(500), default="")
    address_2: Mapped[str | None] = mapped_column(String(500), nullable=True)
    city: Mapped[str] = mapped_column(String(255), default="")
    region: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state_province: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="US")
    address_type: Mapped[str] = mapped_column(String(20), default="physical")


class Accessibility(Base):
    """HSDS 3.0 ``accessibility``: what a location offers people with disabilities."""

    __tablename__ = "accessibility"
    id: Mapped[str] = _id()
    location_id: Mapped[str | None] = _ref()
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    url: Mapped[str | None] = mapped_column(String(500), nullable=True)


class Phone(Base):
    __tablename__ = "phone"
    id: Mapped[str] = _id()
    location_id: Mapped[str | None] = _ref()
    service_id: Mapped[str | None] = _ref()
    organization_id: Mapped[str | None] = _ref()
    contact_id: Mapped[str | None] = _ref()
    service_at_location_id: Mapped[str | None] = _ref()
    number: Mapped[str] = mapped_column(String(100))
    extension: Mapped[float | None] = mapped_column(Float, nullable=True)
    type: Mapped[str | None] = mapped_column(String(30), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class Schedule(Base):
    __tablename__ = "schedule"
    id: Mapped[str] = _id()
    service_id: Mapped[str | None] = _ref()
    location_id: Mapped[str | None] = _ref()
    service_at_location_id: Mapped[str | None] = _ref()
    valid_from: Mapped[str | None] = mapped_column(String(20), nullable=True)
    valid_to: Mapped[str | None] = mapped_column(String(20), nullable=True)
    dtstart: Mapped[str | None] = mapped_column(String(20), nullable=True)
    timezone: Mapped[float | None] = mapped_column(Float, nullable=True)
    until: Mapped[str | None] = mapped_column(String(20), nullable=True)
    count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wkst: Mapped[str | None] = mapped_column(String(2), nullable=True)
    freq: Mapped[str | None] = mapped_column(String(10), nullable=True)
    interval: Mapped[int | None] = mapped_column(Integer, nullable=True)
    byday: Mapped[str | None] = mapped_column(String(100), nullable=True)
    byweekno: Mapped[str | None] = mapped_column(String(100), nullable=True)
    bymonthday: Mapped[str | None] = mapped_column(String(100), nullable=True)
    byyearday: Mapped[str | None] = mapped_column(String(100), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # "HH:MM" local time of the place; compared as text by "open at".
    opens_at: Mapped[str | None] = mapped_column(String(8), nullable=True)
    closes_at: Mapped[str | None] = mapped_column(String(8), nullable=True)
    schedule_link: Mapped[str | None] = mapped_column(String(500), nullable=True)
    attending_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)


class Attribute(Base):
    """Links a service (or another entity) to a taxonomy term."""

    __tablename__ = "attribute"
    id: Mapped[str] = _id()
    link_id: Mapped[str] = mapped_column(String(36), index=True)
    taxonomy_term_id: Mapped[str] = mapped_column(String(36), index=True)
    link_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    link_entity: Mapped[str] = mapped_column(String(50), default="service")
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    # HSDS 3.1: a human-readable label for the attribute's value (e.g. its unit).
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Language(Base):
    __tablename__ = "language"
    id: Mapped[str] = _id()
    service_id: Mapped[str | None] = _ref()
    location_id: Mapped[str | None] = _ref()
    phone_id: Mapped[str | None] = _ref()
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    code: Mapped[str | None] = mapped_column(String(10), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class ServiceArea(Base):
    __tablename__ = "service_area"
    id: Mapped[str] = _id()
    service_id: Mapped[str | None] = _ref()
    # HSDS 3.1: an area may belong to one service at one location (service_at_location.service_areas).
    service_at_location_id: Mapped[str | None] = _ref()
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    extent: Mapped[str | None] = mapped_column(Text, nullable=True)
    extent_type: Mapped[str | None] = mapped_column(String(50), nullable=True)
    uri: Mapped[str | None] = mapped_column(String(500), nullable=True)


class CostOption(Base):
    __tablename__ = "cost_option"
    id: Mapped[str] = _id()
    service_id: Mapped[str | None] = _ref()
    valid_from: Mapped[str | None] = mapped_column(String(20), nullable=True)
    valid_to: Mapped[str | None] = mapped_column(String(20), nullable=True)
    option: Mapped[str | None] = mapped_column(String(255), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    amount: Mapped[float | None] = mapped_column(Float, nullable=True)
    amount_description: Mapped[str | None] = mapped_column(Text, nullable=True)


class Contact(Base):
    __tablename__ = "contact"
    id: Mapped[str] = _id()
    organization_id: Mapped[str | None] = _ref()
    service_id: Mapped[str | None] = _ref()
    service_at_location_id: Mapped[str | None] = _ref()
    location_id: Mapped[str | None] = _ref()
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    title: Mapped[str | None] = mapped_column(String(255), nullable=True)
    department: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Unit(Base):
    """HSDS 3.1 ``unit``: what a service's capacity is counted in ("Bed", "Seat", "Hours")."""

    __tablename__ = "unit"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(255))
    scheme: Mapped[str | None] = mapped_column(String(255), nullable=True)
    identifier: Mapped[str | None] = mapped_column(String(255), nullable=True)
    uri: Mapped[str | None] = mapped_column(String(500), nullable=True)


class ServiceCapacity(Base):
    """HSDS 3.1 ``service_capacity``: how many units of a service are available now, out of
    how many, and when that was last known (``updated``). One row per service and unit; a
    program that keeps its own places (issue 20) updates ``available`` and ``updated``.
    """

    __tablename__ = "service_capacity"
    id: Mapped[str] = _id()
    service_id: Mapped[str | None] = _ref()
    unit_id: Mapped[str | None] = _ref()
    available: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float | None] = mapped_column(Float, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated = mapped_column(UTCDateTime, default=utcnow)


class Url(Base):
    """HSDS 3.1 ``url``: a further web address of a service (``service.additional_urls``) or of
    an organization (``organization.additional_websites``), with a label."""

    __tablename__ = "url"
    id: Mapped[str] = _id()
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    url: Mapped[str] = mapped_column(String(500))
    organization_id: Mapped[str | None] = _ref()
    service_id: Mapped[str | None] = _ref()


class Metadata(Base):
    """HSDS edit history: one row per changed field (or per creation/retirement)."""

    __tablename__ = "metadata"
    id: Mapped[str] = _id()
    resource_id: Mapped[str] = mapped_column(String(36), index=True)
    resource_type: Mapped[str] = mapped_column(String(50))
    last_action_date = mapped_column(UTCDateTime, default=utcnow)
    last_action_type: Mapped[str] = mapped_column(String(30))
    field_name: Mapped[str] = mapped_column(String(100), default="")
    previous_value: Mapped[str] = mapped_column(Text, default="")
    replacement_value: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class ServiceSearch(Base):
    """What search reads: one row per service (see ``indexing.py``).

    ``id`` is the row id of the SQLite FTS5 table ``service_fts`` (columns name, body,
    tags); on PostgreSQL the migrations add a generated ``tsv`` column (name A, body B,
    tags without position) with a GIN index, and a GIN index on the name's words alone.
    Lists are stored as ``|a|b|`` so "contains" is a LIKE on both databases.
    """

    __tablename__ = "service_search"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(30), default="active")
    owner_tenant_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    owner_district_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    published_to: Mapped[str] = mapped_column(String(20), default="tenant")
    minimum_age: Mapped[float | None] = mapped_column(Float, nullable=True)
    maximum_age: Mapped[float | None] = mapped_column(Float, nullable=True)
    languages: Mapped[str] = mapped_column(String(255), default="|")
    cost: Mapped[str] = mapped_column(String(10), default="unknown")
    term_ids: Mapped[str] = mapped_column(Text, default="|")
    top_term_ids: Mapped[str] = mapped_column(Text, default="|")
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    postal_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    state_province: Mapped[str | None] = mapped_column(String(100), nullable=True)
    area_names: Mapped[str] = mapped_column(Text, default="|")
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Filter tokens (languages, cost, categories) indexed with the words: ``indexing.search_tags``.
    tags: Mapped[str] = mapped_column(Text, default="")
    # Half hours open, one bitmap per day, and whether exact hours must be checked: ``indexing.open_slots``.
    open_mo: Mapped[int] = mapped_column(BigInteger, default=0)
    open_tu: Mapped[int] = mapped_column(BigInteger, default=0)
    open_we: Mapped[int] = mapped_column(BigInteger, default=0)
    open_th: Mapped[int] = mapped_column(BigInteger, default=0)
    open_fr: Mapped[int] = mapped_column(BigInteger, default=0)
    open_sa: Mapped[int] = mapped_column(BigInteger, default=0)
    open_su: Mapped[int] = mapped_column(BigInteger, default=0)
    hours_unaligned: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_service_search_visibility", "status", "owner_tenant_id"),
        Index("ix_service_search_lat_lon", "latitude", "longitude"),
    )


class ServiceCard(Base):
    """The search result card of a service (``views.card``), so a page of results is one
    primary-key lookup, kept out of ``service_search`` so that the rows search scans stay narrow."""

    __tablename__ = "service_card"
    service_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    card: Mapped[dict] = mapped_column(JSON)


class SearchWord(Base):
    """Vocabulary of indexed words, for "did you mean" on a misspelt query."""

    __tablename__ = "search_word"
    word: Mapped[str] = mapped_column(String(60), primary_key=True)


class ImportJob(Base):
    __tablename__ = "import_job"
    id: Mapped[str] = _id()
    status: Mapped[str] = mapped_column(String(20), default="running")
    source: Mapped[str] = mapped_column(String(255))
    layout: Mapped[str | None] = mapped_column(String(30), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at = mapped_column(UTCDateTime, default=utcnow)
    finished_at = mapped_column(UTCDateTime, nullable=True)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


# The HSDS tables, in the order an import writes them (parents first).
HSDS_TABLES = {
    "taxonomy": Taxonomy,
    "taxonomy_term": TaxonomyTerm,
    "organization": Organization,
    "program": Program,
    "service": Service,
    "location": Location,
    "service_at_location": ServiceAtLocation,
    "address": Address,
    "accessibility": Accessibility,
    "contact": Contact,
    "phone": Phone,
    "schedule": Schedule,
    "attribute": Attribute,
    "language": Language,
    "service_area": ServiceArea,
    "cost_option": CostOption,
    "unit": Unit,
    "service_capacity": ServiceCapacity,
    "url": Url,
}


class ServiceHours(Base):
    """Weekly opening hours of a service, flattened from every schedule that applies
    to it (its own, its locations', its service-at-locations'), for "open at"."""

    __tablename__ = "service_hours"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(36), index=True)
    day: Mapped[str] = mapped_column(String(2))
    opens_at: Mapped[str] = mapped_column(String(5))
    closes_at: Mapped[str] = mapped_column(String(5))

    # service_id in the index too: "open at" reads the index alone.
    __table_args__ = (Index("ix_service_hours_open", "day", "opens_at", "closes_at", "service_id"),)


# Exports (weintervene.export): a tenant's own services and organizations, and
# every row under them that a termination deletes (tenant_data.py). HSDS
# references are not foreign keys here, so they are declared.
_SERVICE, _LOCATION, _ORG = "service_id -> service.id", "location_id -> location.id", "organization_id -> organization.id"
declare_ownership(
    Base,
    organization=ownership(tenant="owner_tenant_id"),
    service=ownership(tenant="owner_tenant_id"),
    program=ownership(via=[_ORG]),
    service_at_location=ownership(via=[_SERVICE]),
    location=ownership(via=[_ORG, "id -> service_at_location.location_id"]),
    address=ownership(via=[_LOCATION]),
    phone=ownership(via=[_SERVICE, _LOCATION, _ORG]),
    contact=ownership(via=[_SERVICE, _LOCATION, _ORG]),
    schedule=ownership(via=[_SERVICE, _LOCATION]),
    language=ownership(via=[_SERVICE, _LOCATION]),
    service_area=ownership(via=[_SERVICE, "service_at_location_id -> service_at_location.id"]),
    cost_option=ownership(via=[_SERVICE]),
    service_capacity=ownership(via=[_SERVICE]),
    url=ownership(via=[_SERVICE, _ORG]),
    attribute=ownership(via=["link_id -> service.id"]),
    metadata=ownership(via=["resource_id -> service.id", "resource_id -> organization.id",
                            "resource_id -> location.id"]),
    service_search=ownership(via=[_SERVICE]),
    service_card=ownership(via=[_SERVICE]),
    service_hours=ownership(via=[_SERVICE]),
)
