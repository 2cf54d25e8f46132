"""directory's entrypoints (thin: the logic lives in search, views, editing, hsds_api...).

Callers pass the gateway's auth dict first where a user is behind the call;
``None`` means an anonymous (or service-to-service) caller who sees only the
global directory.
"""
from __future__ import annotations

import base64
import binascii
import shutil
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import select

from services.directory import archives, editing, hsds_api, visibility
from services.directory.demo import load_demo
from services.directory.dependencies import ImportRunner, TaxonomyAtStart, directory_database
from services.directory.geo import bounding_box, miles_between
from services.directory.importer import recognise
from services.directory.layouts import LayoutError
from services.directory.sources import SourceRequired
from services.directory.models import DeletionReceipt, ImportJob, OutboxMessage, Service, ServiceSearch
from services.directory.schemas import (
    HsdsOrganizationsQuerySchema, HsdsPageSchema, HsdsServicesQuerySchema, HsdsTaxonomyTermsQuerySchema,
    SearchQuerySchema, ServiceInputSchema,
)
from services.directory.search import from_the_school, search as run_search
from services.directory.taxonomy import OPEN_ELIGIBILITY_ID, TermTree
from services.directory.tenant_data import delete_tenant_services
from services.directory.views import cards, details
from weintervene.auth import AuthContext, Role
from weintervene.config import settings
from weintervene.deletion import DeletionParticipant
from weintervene.entrypoints import rpc
from weintervene.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unauthorized
from weintervene.messaging import OutboxRelay, ReliablePublisher
from weintervene.export import DataExporter
from weintervene.observability import EntrypointMetrics, HealthCheck, OutboxBacklogGauges
from weintervene.rpc import ServiceRpc
from weintervene.validation import load

MAX_IMPORT_BYTES = 50 * 1024 * 1024


def _ids_to_text(data: dict) -> dict:
    out = {}
    for k, v in data.items():
        if isinstance(v, uuid.UUID):
            v = str(v)
        elif isinstance(v, list):
            v = [str(x) if isinstance(x, uuid.UUID) else x for x in v]
        out[k] = v
    return out


_viewer = visibility.viewer_for


class DirectoryService(DataExporter, HealthCheck, DeletionParticipant, OutboxRelay, OutboxBacklogGauges):
    name = "directory"

    db = directory_database()
    metrics = EntrypointMetrics()
    events = ReliablePublisher()
    outbox_model = OutboxMessage
    receipt_model = DeletionReceipt
    taxonomy_at_start = TaxonomyAtStart()
    imports = ImportRunner()
    identity_rpc = ServiceRpc("identity")

    # --- educator search and reading -------------------------------------------------

    @rpc
    def search(self, auth, params):
        """Ranked, filtered, faceted search. ``search(auth, {"q": "tutoring", "postcode": "20001",
        "radius_miles": 5, "sort": "distance"})`` -> {items: [card], total, page, per_page, facets, corrected_query};
        a card is {id, name, organization_name, description, address, hours_text, cost, languages, categories,
        distance_miles, relevance} (the full service: ``get_service``)."""
        ctx = AuthContext.from_dict(auth)
        params = _ids_to_text(load(SearchQuerySchema(), params or {}))
        needs_origin = (params.get("radius_miles") or params.get("sort") == "distance") and not (
            params.get("postcode") or params.get("latitude") is not None or params.get("longitude") is not None)
        school = self._school(ctx) if params.get("open_now") or needs_origin else {}
        measured_from = None
        if needs_origin:
            params, measured_from = from_the_school(params, school)
        result = run_search(self.db, params, _viewer(auth), school_timezone=school.get("timezone") or None,
                            cards=lambda ids: cards(self.db, ids), exact_limit=settings().directory_search_exact_limit)
        if measured_from:
            result["measured_from"] = measured_from
        return result

    def _school(self, ctx: AuthContext) -> dict:
        """The caller's school or program (its timezone and place), {} when identity is unreachable."""
        try:
            return self.identity_rpc.tenant_info(ctx.tenant_id) or {}
        except Exception:  # noqa: BLE001 - identity unreachable: services' own timezones still apply
            return {}

    @rpc
    def get_service(self, auth, service_id):
        """``get_service(auth_or_none, "5f0e…")`` -> the service with organization, locations, phones,
        schedules + hours_text, ages, languages, cost, taxonomy terms, owner_tenant_id."""
        service = self.db.get(Service, str(service_id)) if _is_uuid(service_id) else None
        ctx = AuthContext.from_dict(auth) if auth else None
        if service is None or not editing.visible_to(ctx, service):
            raise NotFound("No such service.", code="service_not_found")
        return details(self.db, [service.id])[0]

    @rpc
    def service_names(self, auth, service_ids):
        """``service_names(auth, ["5f0e…", …])`` -> {id: name} of the services the caller may see;
        the others are left out. One query for a report's whole list (analytics), where
        ``get_service`` would build every full document."""
        ids = sorted({str(i) for i in service_ids or [] if _is_uuid(i)})
        if len(ids) > 500:
            raise BadRequest("At most 500 service ids at once.", code="too_many_ids")
        ctx = AuthContext.from_dict(auth) if auth else None
        services = self.db.scalars(select(Service).where(Service.id.in_(ids))) if ids else []
        return {s.id: s.name for s in services if editing.visible_to(ctx, s)}

    @rpc
    def get_terms(self, term_ids):
        """``get_terms(["…"])`` -> {term_id: {id, name, code, parent_id, top_level_id, top_level_name}}."""
        tree = TermTree.load(self.db)
        return {str(t): tree.info(str(t)) for t in term_ids or [] if tree.info(str(t))}

    @rpc
    def categories(self):
        """Open Eligibility's top-level categories with their children:
        [{id, name, code, children: [{id, name, code}]}]."""
        tree = TermTree.load(self.db)
        out = []
        for top in tree.top_levels(OPEN_ELIGIBILITY_ID):
            children = [tree.terms[c] for c in tree.children.get(top["id"], [])]
            out.append({"id": top["id"], "name": top["name"], "code": top["code"],
                        "children": [{"id": c["id"], "name": c["name"], "code": c["code"]} for c in sorted(children, key=lambda c: c["code"] or "")]})
        return out

    @rpc
    def count_services(self, term_ids, latitude=None, longitude=None, radius_miles=None, tenant_id=None,
                       tenant_kind=None, district_id=None, groups=None):
        """``count_services(["…"], 38.91, -77.02, 5, tenant_id, "school", district_id)`` -> {term_id: services
        that tenant sees with that term or a descendant within the radius} (analytics' unmet need).
        Without ``tenant_kind`` only the global directory and the tenant's own services count.
        ``groups`` ({key: [term ids]}, e.g. one category named "Food" in two taxonomies) adds
        {key: services with any of those terms}, each service counted once."""
        viewer = {"tenant_id": str(tenant_id), "district_id": district_id and str(district_id), "kind": tenant_kind} if tenant_id else None
        query = select(ServiceSearch.term_ids, ServiceSearch.latitude, ServiceSearch.longitude).where(
            ServiceSearch.status == "active", visibility.clause(ServiceSearch, viewer))
        point = latitude is not None and longitude is not None and radius_miles
        if point:
            lat0, lat1, lon0, lon1 = bounding_box(latitude, longitude, radius_miles)
            query = query.where(ServiceSearch.latitude.between(lat0, lat1), ServiceSearch.longitude.between(lon0, lon1))
        counts = {str(t): 0 for t in term_ids or []}
        grouped = {str(k): [f"|{t}|" for t in ids] for k, ids in (groups or {}).items()}
        counts.update({k: 0 for k in grouped})
        for terms, lat, lon in self.db.execute(query):
            if point and miles_between(latitude, longitude, lat, lon) > radius_miles:
                continue
            for t in term_ids or []:
                if f"|{t}|" in terms:
                    counts[str(t)] += 1
            for key, marks in grouped.items():
                if any(mark in terms for mark in marks):
                    counts[key] += 1
        return counts

    # --- writing ---------------------------------------------------------------------

    @rpc
    def create_service(self, auth, data):
        """Operators add global services; school/district/program admins their own.
        ``create_service(auth, {"name": "Math Club", "taxonomy_term_ids": [...], ...})`` -> service."""
        ctx = AuthContext.from_dict(auth)
        return editing.create_service(self.db, ctx, _ids_to_text(load(ServiceInputSchema(), data)))

    @rpc
    def update_service(self, auth, service_id, data):
        """``update_service(auth, id, {"minimum_age": 8})`` -> service; history recorded."""
        ctx = AuthContext.from_dict(auth)
        return editing.update_service(self.db, ctx, str(service_id), _ids_to_text(load(ServiceInputSchema(), data, partial=True)))

    @rpc
    def retire_service(self, auth, service_id):
        """``retire_service(auth, id)`` -> service with status "inactive"."""
        return editing.retire_service(self.db, AuthContext.from_dict(auth), str(service_id))

    @rpc
    def service_history(self, auth, service_id):
        """Edit history (HSDS metadata rows) of a service the caller may edit."""
        ctx = AuthContext.from_dict(auth)
        service = self.db.get(Service, str(service_id))
        if service is None or not editing.may_edit(ctx, service):
            raise NotFound("No such service.", code="service_not_found")
        return editing.history(self.db, service.id)

    # --- import ----------------------------------------------------------------------

    @rpc
    def start_import(self, auth, filename, content_b64, source=None):
        """Operator only. ``start_import(auth, "region.zip", base64, source="miami-211")`` ->
        {id, status: "running", source, ...}; poll ``get_import``. ``source`` is needed when the
        package has no ``datapackage.json`` naming it (``sources.package_source``); the file name never is."""
        ctx = AuthContext.from_dict(auth).require(Role.OPERATOR)
        try:
            content = base64.b64decode(content_b64, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise BadRequest("The file is not valid base64.", code="invalid_input") from None
        if len(content) > MAX_IMPORT_BYTES:
            raise PayloadTooLarge("The file is too large.", code="payload_too_large")
        if not content:
            raise BadRequest("The file is empty.", code="invalid_input")
        suffix = Path(filename).suffix.lower()
        if suffix not in (".zip", ".json"):
            raise BadRequest("Send a .zip of CSV files or an HSDS .json file.", code="invalid_input")
        if suffix == ".zip":  # a zip bomb is refused now, from the archive's directory, not by the job
            archives.refuse_upload_over_caps(content, Path(filename).name, settings())
        folder = Path(tempfile.mkdtemp(prefix="wi-upload-"))
        path = folder / Path(filename).name
        path.write_bytes(content)
        try:  # a package no reader knows is a 400 now, not a job that "completes" with 0 created
            _layout, source = recognise(path, source)
        except SourceRequired as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise BadRequest(f"{Path(filename).name}: {exc}", code="source_required") from None
        except LayoutError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise BadRequest(f"{Path(filename).name}: {exc}", code="unrecognised_layout") from None
        job = ImportJob(source=source, created_by=ctx.user_id, status="running")
        self.db.add(job)
        self.db.commit()
        self.imports.start_job(job.id, path, source, ctx.user_id, cleanup=folder)
        return self._job(job)

    @rpc
    def get_import(self, auth, import_id):
        """``get_import(auth, id)`` -> {id, status, rows_done, rows_total, report}."""
        AuthContext.from_dict(auth).require(Role.OPERATOR)
        job = self.db.get(ImportJob, str(import_id)) if _is_uuid(import_id) else None
        if job is None:
            raise NotFound("No such import.", code="import_not_found")
        self.db.refresh(job)
        return self._job(job)

    @rpc
    def import_skipped_csv(self, auth, import_id):
        """``import_skipped_csv(auth, id)`` -> CSV text (file,row,table,id,reason) of every row the
        finished import skipped; 409 ``import_running`` while it runs."""
        from services.directory.import_report import skipped_rows_csv

        AuthContext.from_dict(auth).require(Role.OPERATOR)
        job = self.db.get(ImportJob, str(import_id)) if _is_uuid(import_id) else None
        if job is None:
            raise NotFound("No such import.", code="import_not_found")
        self.db.refresh(job)
        if job.status == "running":
            raise Conflict("The import is still running; its report is written when it ends.", code="import_running")
        return skipped_rows_csv(job.report or {})

    def _job(self, job: ImportJob) -> dict:
        live = self.imports.read_progress(job.id) if job.status == "running" else None
        done, total = live or (job.rows_done, job.rows_total)
        return {"id": job.id, "status": job.status, "source": job.source, "rows_done": done, "rows_total": total,
                "created_at": job.created_at.isoformat() if job.created_at else None,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
                "error": job.error, "report": job.report}

    @rpc
    def load_demo(self, auth, count=300):
        """Operator only: the generated demo directory (idempotent) -> import report."""
        AuthContext.from_dict(auth).require(Role.OPERATOR)
        report = load_demo(self.db, count=int(count))
        report.pop("skipped_rows", None)
        return report

    # --- HSDS API --------------------------------------------------------------------

    def _hsds_viewer(self, auth):
        if auth:
            return _viewer(auth)
        if not settings().hsds_public:
            raise Unauthorized("Sign in to read the directory.", code="not_authenticated")
        return None

    @rpc
    def hsds(self, auth, resource, params=None, item_id=None):
        """The HSDS 3.1 API: ``hsds(None, "services", {"page": 1})`` -> Page;
        ``hsds(None, "services", item_id="…")`` -> one document."""
        viewer = self._hsds_viewer(auth)
        params = params or {}
        if item_id is not None and not _is_uuid(item_id):
            raise BadRequest("id is not a valid UUID.", code="invalid_id")
        item_id = str(item_id) if item_id is not None else None
        if resource == "root":
            return hsds_api.root(settings().public_base_url)
        if resource == "services":
            if item_id:
                return hsds_api.service(self.db, item_id, viewer)
            return hsds_api.services(self.db, _ids_to_text(load(HsdsServicesQuerySchema(), params)), viewer)
        if resource == "service_at_locations":
            if item_id:
                return hsds_api.service_at_location(self.db, item_id, viewer)
            return hsds_api.service_at_locations(self.db, _ids_to_text(load(HsdsServicesQuerySchema(), params)), viewer)
        if resource == "organizations":
            if item_id:
                return hsds_api.organization(self.db, item_id, viewer)
            return hsds_api.organizations(self.db, _ids_to_text(load(HsdsOrganizationsQuerySchema(), params)), viewer)
        if resource == "taxonomies":
            if item_id:
                return hsds_api.taxonomy(self.db, item_id)
            return hsds_api.taxonomies(self.db, load(HsdsPageSchema(), params))
        if resource == "taxonomy_terms":
            if item_id:
                return hsds_api.taxonomy_term(self.db, item_id)
            return hsds_api.taxonomy_terms(self.db, _ids_to_text(load(HsdsTaxonomyTermsQuerySchema(), params)))
        raise NotFound("No such HSDS resource.", code="not_found")

    # --- deletion --------------------------------------------------------------------

    def delete_for(self, request: dict) -> dict:
        """Scope tenant: every service the tenant (or its schools) owned, and all under it."""
        if request["scope"] != "tenant":
            return {}
        return delete_tenant_services(self.db, request["tenant_ids"])


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except (ValueError, TypeError):
        return False
