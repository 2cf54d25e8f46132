"""What the OpenAPI document says of the answers the fuzz found it wrong about
(tests/security/test_openapi_fuzz.py checks every answer against it; these pin the fixes)."""
import pytest

import gateway.service  # noqa: F401 - registers every route
from gateway.openapi import openapi_document

PAGED = [
    ("/api/v1/referrals", "get", "ReferralPage"),
    ("/api/v1/lists", "get", "SavedListPage"),
    ("/api/v1/students/{student_id}/disclosures", "get", "DisclosurePage"),
]


def _ok(path, method, status="200"):
    return openapi_document()["paths"][path][method]["responses"][status]


@pytest.mark.parametrize("path, method, page", PAGED)
def test_lists_are_documented_as_the_page_object_they_answer_not_an_array(path, method, page):
    schema = _ok(path, method)["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{page}"}
    component = openapi_document()["components"]["schemas"][page]
    assert component["type"] == "object"
    assert set(component["required"]) == {"items", "total", "page", "per_page"}
    assert component["properties"]["items"]["type"] == "array"


def test_a_share_answers_its_referrals_under_items():
    schema = _ok("/api/v1/referrals", "post", "201")["content"]["application/json"]["schema"]
    component = openapi_document()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert component["required"] == ["items"] and component["properties"]["items"]["type"] == "array"


@pytest.mark.parametrize("path, method", [("/api/v1/lists/{list_id}", "delete"),
                                          ("/api/v1/deliveries/sms-status", "post")])
def test_no_content_answers_are_documented_as_204(path, method):
    responses = openapi_document()["paths"][path][method]["responses"]
    assert "204" in responses and "200" not in responses
    assert "content" not in responses["204"]


def test_an_expired_shared_link_is_documented_as_the_html_page_it_is():
    not_found = openapi_document()["paths"]["/r/{token}"]["get"]["responses"]["404"]
    assert list(not_found["content"]) == ["text/html"]


def test_analytics_rows_document_each_reports_item_fields():
    row = openapi_document()["components"]["schemas"]["ReportRow"]
    assert row["additionalProperties"] is False
    assert {"service_id", "service_name", "category_id", "category_name", "bucket", "bucket_start", "channel",
            "services_nearby", "need_score"} <= set(row["properties"])


@pytest.mark.parametrize("path, method, status", [
    ("/api/v1/sessions", "post", "401"), ("/api/v1/sessions", "post", "429"),
    ("/api/v1/me/policy-acknowledgement", "post", "409"), ("/api/v1/deliveries/sms-status", "post", "403"),
    ("/api/v1/deletion-requests", "post", "404"), ("/api/v1/exports", "post", "404"),
    ("/api/v1/inspection-requests", "post", "404"), ("/api/v1/users", "get", "404"), ("/api/v1/users", "post", "404"),
    ("/api/v1/lists", "post", "404"), ("/api/v1/referrals", "post", "404"),
    ("/api/v1/referrals/{referral_id}/status", "post", "409"), ("/hsds/taxonomies", "get", "401"),
    ("/api/v1/inspection-requests/{inspection_id}/close", "post", "409"),
    ("/api/v1/inspection-requests/{inspection_id}/records", "get", "409"),
])
def test_error_statuses_the_endpoints_answer_are_documented(path, method, status):
    assert status in openapi_document()["paths"][path][method]["responses"]


@pytest.mark.parametrize("path", ["/api/v1/deletion-requests", "/api/v1/analytics/{report}"])
def test_a_csv_download_of_a_json_list_is_documented_as_text_csv_too(path):
    content = _ok(path, "get")["content"]
    assert set(content) == {"application/json", "text/csv"}


@pytest.mark.parametrize("path, page", [("/api/v1/retention-policies", "PolicyPage"),
                                        ("/api/v1/inspection-requests", "InspectionPage")])
def test_retention_lists_document_the_page_they_answer(path, page):
    assert _ok(path, "get")["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{page}"}


def test_sign_out_documents_its_answer():
    schema = _ok("/api/v1/sessions/current", "delete")["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/SignedOut"}
