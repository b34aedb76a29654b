"""Webhook verification and parsing (integrations/webhooks.py and providers/*/webhooks.py).

Pure unit tests: no database, no HTTP. Expected signatures are computed here with hmac and
hashlib directly, never with the helpers under test, and two are fixed literals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

import integrations.providers.hubspot  # noqa: F401 (registers the handlers on import)
import integrations.providers.jobber
import integrations.providers.servicem8
import integrations.providers.servicetitan  # noqa: F401
from integrations.exceptions import UnknownProvider
from integrations.providers.hubspot.webhooks import HubSpotWebhookHandler, signed_uri
from integrations.providers.jobber.webhooks import JobberWebhookHandler
from integrations.providers.servicem8.webhooks import ServiceM8WebhookHandler
from integrations.providers.servicetitan.webhooks import ServiceTitanWebhookHandler
from integrations.webhooks import (
    ENTITIES,
    Headers,
    WebhookChallenge,
    WebhookFailure,
    WebhookHandler,
    WebhookPayloadError,
    WebhookRequest,
    WebhookVerificationError,
    constant_time_equals,
    hmac_sha256,
    register_webhook_handler,
    stable_id,
    usable_secrets,
    webhook_handler,
    webhook_handlers,
)

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
NOW_MS = 1736942400000  # NOW as a millisecond epoch
OLD, NEW = "old-secret-0001", "new-secret-0002"


def make_request(
    body: bytes = b"",
    *,
    headers: dict | None = None,
    url: str = "https://app.example.com/webhooks/x/",
    method: str = "POST",
    content_type: str = "application/json",
    path_token: str = "",
    received_at: datetime = NOW,
) -> WebhookRequest:
    return WebhookRequest(
        method=method,
        url=url,
        headers=headers or {},
        body=body,
        content_type=content_type,
        path_token=path_token,
        received_at=received_at,
    )


def verification_error(handler: WebhookHandler, request, secrets) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as caught:
        handler.verify(request, secrets)
    return caught.value


# -- shared helpers --------------------------------------------------------------------------


def test_hmac_sha256_matches_rfc_4231_test_case_2():
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hmac_sha256("Jefe", b"what do ya want for nothing?", encoding="hex") == expected
    assert hmac_sha256("Jefe", "what do ya want for nothing?") == base64.b64encode(
        bytes.fromhex(expected)
    ).decode("ascii")


def test_constant_time_equals_takes_str_and_bytes_including_non_ascii():
    assert constant_time_equals("abc", b"abc")
    assert not constant_time_equals("abc", "abd")
    assert not constant_time_equals("abc", "abcd")
    assert constant_time_equals("café", "café")  # compare_digest alone refuses non-ASCII str


def test_stable_id_ignores_key_order_and_separates_parts():
    assert stable_id({"a": 1, "b": 2}) == stable_id({"b": 2, "a": 1})
    assert stable_id("ab", "c") != stable_id("a", "bc")
    assert len(stable_id("x")) == 64


@pytest.mark.parametrize("secrets", [[], [""], ("", "")])
def test_no_usable_secret_is_a_clear_failure(secrets):
    with pytest.raises(WebhookVerificationError) as caught:
        usable_secrets(secrets)
    assert caught.value.code == WebhookFailure.NOT_CONFIGURED
    assert caught.value.reason == "no webhook secret configured"


def test_a_bare_string_is_not_a_list_of_secrets():
    with pytest.raises(TypeError):
        usable_secrets("secret")


def test_request_headers_are_case_insensitive_and_repr_hides_secrets():
    request = make_request(
        b"body-bytes", headers={"X-Token": "tok-value"}, path_token="path-secret"
    )
    assert isinstance(request.headers, Headers)
    assert request.headers["x-token"] == request.headers["X-TOKEN"] == "tok-value"
    assert "x-TOKEN" in request.headers and list(request.headers) == ["X-Token"]
    shown = repr(request)
    assert "path-secret" not in shown and "body-bytes" not in shown and "tok-value" not in shown


def test_request_needs_an_aware_received_at():
    with pytest.raises(ValueError, match="timezone-aware"):
        make_request(received_at=datetime(2025, 1, 15, 12, 0))  # noqa: DTZ001


def test_registry_knows_each_provider_and_refuses_unknown_keys():
    assert webhook_handler("hubspot") is HubSpotWebhookHandler
    assert webhook_handler("jobber") is JobberWebhookHandler
    assert webhook_handler("servicem8") is ServiceM8WebhookHandler
    assert webhook_handler("servicetitan") is ServiceTitanWebhookHandler
    assert {"hubspot", "jobber", "servicem8", "servicetitan"} <= {
        cls.provider for cls in webhook_handlers()
    }
    with pytest.raises(UnknownProvider):
        webhook_handler("nope")


def test_registry_refuses_a_second_class_for_a_key_and_a_class_without_key():
    class Impostor(WebhookHandler):
        provider = "hubspot"

    with pytest.raises(ValueError, match="twice"):
        register_webhook_handler(Impostor)
    assert webhook_handler("hubspot") is HubSpotWebhookHandler
    register_webhook_handler(HubSpotWebhookHandler)  # the same class again is fine

    class Nameless(WebhookHandler):
        pass

    with pytest.raises(ValueError, match="no provider key"):
        register_webhook_handler(Nameless)


def test_app_secrets_reads_the_named_settings_in_order(monkeypatch):
    monkeypatch.setenv("JOBBER_WEBHOOK_SECRET", NEW)
    monkeypatch.setenv("JOBBER_WEBHOOK_SECRET_PREVIOUS", OLD)
    assert JobberWebhookHandler.app_secrets() == [NEW, OLD]
    monkeypatch.delenv("JOBBER_WEBHOOK_SECRET_PREVIOUS")
    assert JobberWebhookHandler.app_secrets() == [NEW]
    monkeypatch.delenv("JOBBER_WEBHOOK_SECRET")
    assert JobberWebhookHandler.app_secrets() == []


def test_every_notice_entity_is_one_of_ours_or_empty():
    assert {"clients", "contacts", "jobs", "quotes", "line_items", "materials", "staff"} == ENTITIES


# -- HubSpot ---------------------------------------------------------------------------------

HUBSPOT_URL = "https://app.example.com/webhooks/hubspot/?portal=42"
HUBSPOT_EVENTS = [
    {
        "eventId": 100,
        "subscriptionId": 2001,
        "portalId": 42,
        "appId": 7,
        "occurredAt": NOW_MS - 1500,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 123,
        "propertyName": "email",
        "propertyValue": "a@example.com",
        "changeSource": "CRM",
    },
    {
        "eventId": 101,
        "subscriptionId": 2002,
        "portalId": 42,
        "appId": 7,
        "occurredAt": NOW_MS - 1000,
        "subscriptionType": "company.deletion",
        "attemptNumber": 0,
        "objectId": 456,
        "changeSource": "CRM",
    },
    {
        "eventId": 102,
        "subscriptionId": 2003,
        "portalId": 42,
        "appId": 7,
        "occurredAt": NOW_MS - 500,
        "subscriptionType": "deal.creation",
        "attemptNumber": 0,
        "objectId": 789,
        "changeSource": "CRM",
    },
]


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """v3, straight from the docs: base64(HMAC-SHA256(secret, method + uri + body + ts))."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_request(
    body: bytes,
    *,
    secret: str = NEW,
    url: str = HUBSPOT_URL,
    signed_url: str | None = None,
    timestamp_ms: int = NOW_MS,
    method: str = "POST",
    headers: dict | None = None,
) -> WebhookRequest:
    timestamp = str(timestamp_ms)
    signature = hubspot_signature(secret, method, signed_url or url, body, timestamp)
    return make_request(
        body,
        url=url,
        method=method,
        headers=headers
        if headers is not None
        else {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp},
    )


def hubspot_body(events=HUBSPOT_EVENTS) -> bytes:
    return json.dumps(events).encode()


def test_hubspot_known_answer_vector():
    # A fixed vector: if this changes, the message layout (method + URI + body + ts) changed.
    body = (
        b'[{"eventId":1,"portalId":42,"occurredAt":1736942400000,'
        b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123}]'
    )
    request = make_request(
        body,
        url=HUBSPOT_URL,
        headers={
            "X-HubSpot-Signature-v3": "HXhSseYd2snjzWw20mE9OxyLxaDd0Z3J39rsd09ch30=",
            "X-HubSpot-Request-Timestamp": "1736942400000",
        },
    )
    HubSpotWebhookHandler().verify(request, ["hubspot-client-secret-0001"])


def test_hubspot_valid_signature_passes_and_header_case_does_not_matter():
    body = hubspot_body()
    HubSpotWebhookHandler().verify(hubspot_request(body), [NEW])
    timestamp = str(NOW_MS)
    lower = {
        "x-hubspot-signature-v3": hubspot_signature(NEW, "POST", HUBSPOT_URL, body, timestamp),
        "x-hubspot-request-timestamp": timestamp,
    }
    HubSpotWebhookHandler().verify(hubspot_request(body, headers=lower), [NEW])


def test_hubspot_tampered_body_fails():
    request = hubspot_request(hubspot_body())
    tampered = make_request(
        request.body.replace(b"123", b"124"), url=request.url, headers=dict(request.headers)
    )
    error = verification_error(HubSpotWebhookHandler(), tampered, [NEW])
    assert error.code == WebhookFailure.INVALID
    assert NEW not in error.reason and "123" not in error.reason


def test_hubspot_wrong_secret_fails():
    request = hubspot_request(hubspot_body(), secret="someone-else")
    assert verification_error(HubSpotWebhookHandler(), request, [NEW]).code == "invalid"


@pytest.mark.parametrize("drop", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "both"])
def test_hubspot_missing_headers_fail_as_missing(drop):
    request = hubspot_request(hubspot_body())
    headers = {k: v for k, v in request.headers.items() if drop not in (k, "both")}
    stripped = make_request(request.body, url=request.url, headers=headers)
    error = verification_error(HubSpotWebhookHandler(), stripped, [NEW])
    assert error.code == WebhookFailure.MISSING


def test_hubspot_rotated_secrets_pass_with_either_signer():
    body = hubspot_body()
    for signer in (OLD, NEW):
        HubSpotWebhookHandler().verify(hubspot_request(body, secret=signer), [NEW, OLD])
    error = verification_error(HubSpotWebhookHandler(), hubspot_request(body, secret=OLD), [NEW])
    assert error.code == WebhookFailure.INVALID


@pytest.mark.parametrize("secrets", [[], [""]])
def test_hubspot_without_secrets_fails_even_when_signed_with_the_empty_key(secrets):
    request = hubspot_request(hubspot_body(), secret="")
    error = verification_error(HubSpotWebhookHandler(), request, secrets)
    assert error.code == WebhookFailure.NOT_CONFIGURED


@pytest.mark.parametrize(
    ("offset", "passes"),
    [
        (timedelta(minutes=-4, seconds=-59), True),
        (timedelta(minutes=-5), True),
        (timedelta(minutes=-5, seconds=-1), False),
        (timedelta(hours=-1), False),
        (timedelta(minutes=4, seconds=59), True),
        (timedelta(minutes=5, seconds=1), False),
        (timedelta(days=1), False),
    ],
)
def test_hubspot_five_minute_window_on_both_sides(offset, passes):
    sent_ms = NOW_MS + int(offset.total_seconds() * 1000)
    request = hubspot_request(hubspot_body(), timestamp_ms=sent_ms)
    if passes:
        HubSpotWebhookHandler().verify(request, [NEW])
    else:
        assert verification_error(HubSpotWebhookHandler(), request, [NEW]).code == "expired"


@pytest.mark.parametrize("timestamp", ["soon", "-5", "1.7e12", "99999999999999999999999"])
def test_hubspot_malformed_timestamp_fails(timestamp):
    request = make_request(
        hubspot_body(),
        url=HUBSPOT_URL,
        headers={"X-HubSpot-Signature-v3": "abc=", "X-HubSpot-Request-Timestamp": timestamp},
    )
    error = verification_error(HubSpotWebhookHandler(), request, [NEW])
    assert error.code == WebhookFailure.INVALID


def test_hubspot_signs_method_and_full_uri_with_query_string():
    body = hubspot_body()
    # Signed for another path, query or method: refused.
    for signed_url in (
        "https://app.example.com/webhooks/hubspot/",
        "https://app.example.com/webhooks/hubspot/?portal=43",
        "http://app.example.com/webhooks/hubspot/?portal=42",
    ):
        request = hubspot_request(body, signed_url=signed_url)
        assert verification_error(HubSpotWebhookHandler(), request, [NEW]).code == "invalid"
    get = hubspot_request(body, method="GET")
    posted = make_request(body, url=HUBSPOT_URL, headers=dict(get.headers))
    assert verification_error(HubSpotWebhookHandler(), posted, [NEW]).code == "invalid"
    # Query parameters are signed in the order sent.
    url = "https://app.example.com/webhooks/hubspot/?a=1&b=2"
    swapped = hubspot_request(body, url=url, signed_url=url.replace("a=1&b=2", "b=2&a=1"))
    assert verification_error(HubSpotWebhookHandler(), swapped, [NEW]).code == "invalid"
    HubSpotWebhookHandler().verify(hubspot_request(body, url=url), [NEW])


def test_hubspot_decodes_exactly_the_listed_percent_encodings():
    assert (
        signed_uri("https://h/p?x=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B")
        == "https://h/p?x=:/?@!$'()*,;"
    )
    assert signed_uri("https://h/p?x=%3a%2f%40") == "https://h/p?x=:/@"  # lower-case hex too
    # Not in the list: left encoded (%20 space, %26 &, %3D =, %25 %, %2B +).
    untouched = "https://h/p?x=a%20b%26c%3Dd%25e%2Bf"
    assert signed_uri(untouched) == untouched
    # A request HubSpot signed over the decoded URI verifies against the encoded one it sent.
    body = hubspot_body()
    received = "https://app.example.com/webhooks/hubspot/?email=a%40b.com&t=x%3Ay%20z"
    signed = "https://app.example.com/webhooks/hubspot/?email=a@b.com&t=x:y%20z"
    HubSpotWebhookHandler().verify(hubspot_request(body, url=received, signed_url=signed), [NEW])
    over_decoded = signed.replace("%20", " ")
    request = hubspot_request(body, url=received, signed_url=over_decoded)
    assert verification_error(HubSpotWebhookHandler(), request, [NEW]).code == "invalid"


def test_hubspot_receive_verifies_then_parses():
    notices = HubSpotWebhookHandler().receive(hubspot_request(hubspot_body()), [OLD, NEW])
    assert [n.entity for n in notices] == ["contacts", "clients", "jobs"]
    with pytest.raises(WebhookVerificationError):
        HubSpotWebhookHandler().receive(hubspot_request(hubspot_body(), secret="x"), [NEW])


def test_hubspot_parses_each_event_into_a_notice():
    notices = HubSpotWebhookHandler().parse(make_request(hubspot_body()))
    assert [(n.event_type, n.entity, n.external_id, n.account_id) for n in notices] == [
        ("contact.propertyChange", "contacts", "123", "42"),
        ("company.deletion", "clients", "456", "42"),
        ("deal.creation", "jobs", "789", "42"),
    ]
    assert notices[0].occurred_at == NOW - timedelta(milliseconds=1500)
    assert notices[0].raw == HUBSPOT_EVENTS[0]
    assert len({n.event_id for n in notices}) == 3


def test_hubspot_event_ids_are_stable_across_retries_and_distinct_across_portals():
    first = HubSpotWebhookHandler().parse(make_request(hubspot_body()))
    again = HubSpotWebhookHandler().parse(make_request(hubspot_body()))
    assert [n.event_id for n in first] == [n.event_id for n in again]
    # A retry: same event, next attempt, batched differently.
    retry = [dict(HUBSPOT_EVENTS[2], attemptNumber=1), dict(HUBSPOT_EVENTS[0], attemptNumber=1)]
    retried = HubSpotWebhookHandler().parse(make_request(hubspot_body(retry)))
    assert [n.event_id for n in retried] == [first[2].event_id, first[0].event_id]
    # eventId is not unique: the same number from another portal is another event.
    other_portal = dict(HUBSPOT_EVENTS[0], portalId=43)
    (elsewhere,) = HubSpotWebhookHandler().parse(make_request(hubspot_body([other_portal])))
    assert elsewhere.event_id != first[0].event_id and elsewhere.account_id == "43"


def test_hubspot_other_objects_and_shapes():
    events = [
        {"eventId": 1, "portalId": 42, "subscriptionType": "line_item.creation", "objectId": 9},
        {"eventId": 2, "portalId": 42, "subscriptionType": "product.propertyChange", "objectId": 8},
        {"eventId": 3, "portalId": 42, "subscriptionType": "ticket.creation", "objectId": 7},
        {
            "eventId": 4,
            "portalId": 42,
            "subscriptionType": "contact.associationChange",
            "fromObjectId": 6,
            "toObjectId": 5,
            "associationType": "CONTACT_TO_COMPANY",
        },
        {
            "eventId": 5,
            "portalId": 42,
            "subscriptionType": "object.creation",
            "objectTypeId": "0-2",
            "objectId": 4,
        },
        {"eventId": 6, "portalId": 42},
    ]
    notices = HubSpotWebhookHandler().parse(make_request(hubspot_body(events)))
    assert [(n.event_type, n.entity, n.external_id) for n in notices] == [
        ("line_item.creation", "line_items", "9"),
        ("product.propertyChange", "", "8"),
        ("ticket.creation", "", "7"),
        ("contact.associationChange", "contacts", "6"),
        ("object.creation", "clients", "4"),
        ("unknown", "", ""),
    ]
    assert notices[-1].occurred_at is None


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"\xff\xfe", b'{"eventId": 1}', b"[1, 2]", b'[{"a": 1}, "x"]']
)
def test_hubspot_malformed_bodies_raise(body):
    with pytest.raises(WebhookPayloadError) as caught:
        HubSpotWebhookHandler().parse(make_request(body))
    assert isinstance(caught.value, ValueError)


def test_hubspot_empty_array_is_no_notices():
    assert HubSpotWebhookHandler().parse(make_request(b"[]")) == []


# -- Jobber ----------------------------------------------------------------------------------


def jobber_body(topic="CLIENT_UPDATE", item="Z2lkOi8vSm9iYmVyL0NsaWVudC8x", **extra) -> bytes:
    event = {
        "topic": topic,
        "appId": "app-1",
        "accountId": "Z2lkOi8vSm9iYmVyL0FjY291bnQvMQ==",
        "itemId": item,
        "occurredAt": "2025-01-15T04:59:30-07:00",
    }
    event.update(extra)
    return json.dumps({"data": {"webHookEvent": event}}).encode()


def jobber_request(body: bytes, *, secret: str = NEW, headers: dict | None = None):
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return make_request(
        body, headers={"X-Jobber-Hmac-SHA256": signature} if headers is None else headers
    )


def test_jobber_known_answer_vector():
    body = b'{"data":{"webHookEvent":{"topic":"JOB_CREATE","itemId":"1"}}}'
    expected = base64.b64encode(hmac.new(b"jobber-secret", body, hashlib.sha256).digest())
    request = make_request(body, headers={"X-Jobber-Hmac-SHA256": expected.decode()})
    JobberWebhookHandler().verify(request, ["jobber-secret"])
    assert hmac_sha256("jobber-secret", body) == expected.decode()


def test_jobber_valid_signature_passes():
    JobberWebhookHandler().verify(jobber_request(jobber_body()), [NEW])


def test_jobber_tampered_body_fails():
    request = jobber_request(jobber_body())
    tampered = make_request(
        request.body.replace(b"CLIENT_UPDATE", b"CLIENT_DESTROY"), headers=dict(request.headers)
    )
    assert verification_error(JobberWebhookHandler(), tampered, [NEW]).code == "invalid"


def test_jobber_wrong_or_missing_signature_fails():
    wrong = jobber_request(jobber_body(), secret="not-ours")
    assert verification_error(JobberWebhookHandler(), wrong, [NEW]).code == "invalid"
    hex_encoded = make_request(
        jobber_body(),
        headers={
            "X-Jobber-Hmac-SHA256": hmac.new(NEW.encode(), jobber_body(), "sha256").hexdigest()
        },
    )
    assert verification_error(JobberWebhookHandler(), hex_encoded, [NEW]).code == "invalid"
    for headers in ({}, {"X-Jobber-Hmac-SHA256": "  "}):
        missing = jobber_request(jobber_body(), headers=headers)
        assert verification_error(JobberWebhookHandler(), missing, [NEW]).code == "missing"


def test_jobber_rotated_secrets_pass_with_either_signer():
    for signer in (OLD, NEW):
        JobberWebhookHandler().verify(jobber_request(jobber_body(), secret=signer), [NEW, OLD])


@pytest.mark.parametrize("secrets", [[], [""]])
def test_jobber_without_secrets_fails(secrets):
    request = jobber_request(jobber_body(), secret="")
    error = verification_error(JobberWebhookHandler(), request, secrets)
    assert error.code == WebhookFailure.NOT_CONFIGURED


def test_jobber_parses_the_event():
    (notice,) = JobberWebhookHandler().parse(make_request(jobber_body()))
    assert notice.event_type == "CLIENT_UPDATE"
    assert notice.entity == "clients"
    assert notice.external_id == "Z2lkOi8vSm9iYmVyL0NsaWVudC8x"
    assert notice.account_id == "Z2lkOi8vSm9iYmVyL0FjY291bnQvMQ=="
    assert notice.occurred_at == datetime(2025, 1, 15, 11, 59, 30, tzinfo=UTC)
    assert notice.raw["appId"] == "app-1"


@pytest.mark.parametrize(
    ("topic", "entity"),
    [
        ("CLIENT_CREATE", "clients"),
        ("CLIENT_DESTROY", "clients"),
        ("JOB_UPDATE", "jobs"),
        ("QUOTE_CREATE", "quotes"),
        ("QUOTE_SENT", "quotes"),
        ("VISIT_COMPLETE", ""),
        ("PROPERTY_UPDATE", ""),
        ("INVOICE_CREATE", ""),
        ("PRODUCT_OR_SERVICE_UPDATE", ""),
        ("APP_DISCONNECT", ""),
        ("SOMETHING_NEW", ""),
    ],
)
def test_jobber_topics_map_to_entities(topic, entity):
    (notice,) = JobberWebhookHandler().parse(make_request(jobber_body(topic=topic)))
    assert (notice.event_type, notice.entity) == (topic, entity)


def test_jobber_event_ids_are_stable_and_distinct():
    def event_id(**kwargs) -> str:
        return JobberWebhookHandler().parse(make_request(jobber_body(**kwargs)))[0].event_id

    base = event_id()
    assert base == event_id()  # a redelivery
    assert len(base) == 64
    assert base != event_id(topic="CLIENT_DESTROY")
    assert base != event_id(item="other")
    assert base != event_id(accountId="another-account")
    assert base != event_id(occurredAt="2025-01-15T04:59:31-07:00")
    assert base == event_id(appId="whatever")  # not part of the identity


def test_jobber_accepts_the_old_occured_at_spelling():
    body = json.dumps(
        {
            "data": {
                "webHookEvent": {
                    "topic": "JOB_CREATE",
                    "accountId": "a",
                    "itemId": "j",
                    "occuredAt": "2025-01-15T12:00:00Z",
                }
            }
        }
    ).encode()
    (notice,) = JobberWebhookHandler().parse(make_request(body))
    assert notice.occurred_at == NOW and notice.entity == "jobs"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"topic=CLIENT_CREATE&itemId=1",
        b"[]",
        b'{"data": null}',
        b'{"data": {"webHookEvent": {}}}',
        b'{"data": {"webHookEvent": {"topic": 5}}}',
        b'{"webHookEvent": {"topic": "CLIENT_CREATE"}}',
    ],
)
def test_jobber_malformed_bodies_raise(body):
    with pytest.raises(ValueError):
        JobberWebhookHandler().parse(make_request(body))


# -- path-token providers: ServiceM8 and ServiceTitan ----------------------------------------

TOKEN_HANDLERS = [ServiceM8WebhookHandler, ServiceTitanWebhookHandler]
SM8_NOTICE = {
    "object": "job",
    "entry": [
        {"uuid": "job-uuid-1", "changed_fields": ["status"], "time": "2025-01-15 22:00:00"},
        {"uuid": "job-uuid-2", "changed_fields": ["job_address"], "time": "2025-01-15 22:00:01"},
    ],
    "resource_url": "https://api.servicem8.com/api_1.0/job.json",
}


def sm8_body(payload=SM8_NOTICE) -> bytes:
    return json.dumps(payload).encode()


@pytest.mark.parametrize("handler_class", TOKEN_HANDLERS)
def test_path_token_passes_with_either_rotated_secret(handler_class):
    for token in (OLD, NEW):
        handler_class().verify(make_request(sm8_body(), path_token=token), [NEW, OLD])


@pytest.mark.parametrize("handler_class", TOKEN_HANDLERS)
def test_wrong_or_missing_path_token_fails(handler_class):
    wrong = make_request(sm8_body(), path_token=NEW + "x")
    error = verification_error(handler_class(), wrong, [NEW])
    assert error.code == WebhookFailure.INVALID and NEW not in error.reason
    missing = make_request(sm8_body(), path_token="")
    assert verification_error(handler_class(), missing, [NEW]).code == WebhookFailure.MISSING


@pytest.mark.parametrize("handler_class", TOKEN_HANDLERS)
@pytest.mark.parametrize(("secrets", "token"), [([], "anything"), ([""], ""), ([""], "x")])
def test_path_token_without_secrets_fails(handler_class, secrets, token):
    request = make_request(sm8_body(), path_token=token)
    error = verification_error(handler_class(), request, secrets)
    assert error.code == WebhookFailure.NOT_CONFIGURED


# -- ServiceM8 -------------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def test_servicem8_challenge_is_answered_only_with_a_valid_token():
    body = b"mode=subscribe&challenge=abc123XYZ"
    valid = make_request(body, content_type=FORM, path_token=NEW)
    with pytest.raises(WebhookChallenge) as caught:
        ServiceM8WebhookHandler().verify(valid, [OLD, NEW])
    assert caught.value.response_body == "abc123XYZ"
    with pytest.raises(WebhookChallenge):
        ServiceM8WebhookHandler().receive(valid, [NEW])
    assert ServiceM8WebhookHandler().parse(valid) == []

    forged = make_request(body, content_type=FORM, path_token="guess")
    assert verification_error(ServiceM8WebhookHandler(), forged, [NEW]).code == "invalid"
    untokened = make_request(body, content_type=FORM)
    assert verification_error(ServiceM8WebhookHandler(), untokened, [NEW]).code == "missing"
    unconfigured = make_request(body, content_type=FORM, path_token="")
    assert verification_error(ServiceM8WebhookHandler(), unconfigured, []).code == (
        "not_configured"
    )


def test_servicem8_challenge_value_is_echoed_decoded_and_with_charset():
    body = b"challenge=a%2Bb+c&mode=subscribe"
    request = make_request(body, content_type=f"{FORM}; charset=UTF-8", path_token=NEW)
    with pytest.raises(WebhookChallenge) as caught:
        ServiceM8WebhookHandler().verify(request, [NEW])
    assert caught.value.response_body == "a+b c"


def test_servicem8_change_notice_verifies_without_challenge():
    ServiceM8WebhookHandler().verify(make_request(sm8_body(), path_token=NEW), [NEW])


def test_servicem8_parses_one_notice_per_entry():
    notices = ServiceM8WebhookHandler().parse(make_request(sm8_body()))
    assert [(n.event_type, n.entity, n.external_id) for n in notices] == [
        ("job", "jobs", "job-uuid-1"),
        ("job", "jobs", "job-uuid-2"),
    ]
    assert notices[0].raw == {
        "object": "job",
        "resource_url": "https://api.servicem8.com/api_1.0/job.json",
        "entry": SM8_NOTICE["entry"][0],
    }
    assert notices[0].occurred_at is None  # local time, zone unknown
    assert notices[0].account_id == ""
    again = ServiceM8WebhookHandler().parse(make_request(sm8_body()))
    assert [n.event_id for n in notices] == [n.event_id for n in again]
    assert notices[0].event_id != notices[1].event_id
    later = dict(SM8_NOTICE, entry=[dict(SM8_NOTICE["entry"][0], time="2025-01-15 22:05:00")])
    (changed_again,) = ServiceM8WebhookHandler().parse(make_request(sm8_body(later)))
    assert changed_again.event_id != notices[0].event_id
    expected = hashlib.sha256(
        json.dumps(
            ["servicem8", "job", "job-uuid-1", "2025-01-15 22:00:00"], separators=(",", ":")
        ).encode()
    ).hexdigest()
    assert notices[0].event_id == expected


@pytest.mark.parametrize(
    ("object_name", "entity"),
    [
        ("company", "clients"),
        ("companycontact", "contacts"),
        ("Job", "jobs"),
        ("jobmaterial", "materials"),
        ("staff", "staff"),
        ("jobactivity", "activities"),
        ("attachment", "attachments"),
        ("note", "notes"),
        ("jobcontact", "job_contacts"),
        ("material", "pricebook_items"),
        ("vendor", ""),
        ("materialbundle", ""),
    ],
)
def test_servicem8_objects_map_to_entities(object_name, entity):
    payload = {"object": object_name, "entry": [{"uuid": "u-1", "time": "t"}]}
    (notice,) = ServiceM8WebhookHandler().parse(make_request(sm8_body(payload)))
    assert (notice.event_type, notice.entity, notice.external_id) == (object_name, entity, "u-1")


@pytest.mark.parametrize(
    ("object_name", "entity", "kind"),
    [
        ("category", "job_categories", "job_category"),
        ("taxrate", "tax_rates", "tax_rate"),
        ("jobmaterialbundle", "material_bundles", "material_bundle"),
    ],
)
def test_servicem8_reference_objects_name_the_stored_reference_id(object_name, entity, kind):
    # ReferenceRecords are stored as "<kind>:<uuid>": a 404 re-fetch must find that row.
    payload = {"object": object_name, "entry": [{"uuid": "u-1", "time": "t"}]}
    (notice,) = ServiceM8WebhookHandler().parse(make_request(sm8_body(payload)))
    assert (notice.entity, notice.external_id) == (entity, f"{kind}:u-1")


def test_servicem8_event_subscription_body_is_kept_as_unknown():
    payload = {"type": "job.created", "createdAt": "2025-01-15T12:00:00Z", "data": {"x": 1}}
    (notice,) = ServiceM8WebhookHandler().parse(make_request(sm8_body(payload)))
    assert (notice.event_type, notice.entity, notice.external_id) == ("job.created", "", "")
    assert notice.raw == payload
    (same,) = ServiceM8WebhookHandler().parse(make_request(sm8_body(payload)))
    assert same.event_id == notice.event_id
    other = dict(payload, createdAt="2025-01-15T12:00:01Z")
    (different,) = ServiceM8WebhookHandler().parse(make_request(sm8_body(other)))
    assert different.event_id != notice.event_id


def test_servicem8_form_body_that_is_not_a_challenge_is_kept_as_unknown():
    request = make_request(b"mode=other&x=1", content_type=FORM)
    (notice,) = ServiceM8WebhookHandler().parse(request)
    assert (notice.event_type, notice.entity, notice.raw) == (
        "unknown",
        "",
        {"mode": "other", "x": "1"},
    )


def test_servicem8_json_sent_as_form_is_still_json():
    # A resource_url with "=" would parse as a form field if the body were taken as a form.
    payload = dict(SM8_NOTICE, resource_url="https://api.servicem8.com/api_1.0/job.json?a=b")
    notices = ServiceM8WebhookHandler().parse(make_request(sm8_body(payload), content_type=FORM))
    assert [n.entity for n in notices] == ["jobs", "jobs"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"job"',
        b"{}",
        b'{"object": "job"}',
        b'{"object": "job", "entry": {"uuid": "u"}}',
        b'{"object": "", "entry": [{"uuid": "u"}]}',
        b'{"entry": [{"uuid": "u"}]}',
        b'{"object": "job", "entry": [{"time": "t"}]}',
        b'{"object": "job", "entry": ["u"]}',
        b'{"type": ""}',
    ],
)
def test_servicem8_malformed_bodies_raise(body):
    with pytest.raises(WebhookPayloadError):
        ServiceM8WebhookHandler().parse(make_request(body))


# -- ServiceTitan ----------------------------------------------------------------------------


def st_parse(payload) -> list:
    return ServiceTitanWebhookHandler().parse(make_request(json.dumps(payload).encode()))


def test_servicetitan_places_events_that_clearly_name_a_record():
    (customer,) = st_parse(
        {"eventId": "e-1", "eventType": "Customer.Updated", "tenantId": 9, "customerId": 123}
    )
    assert (customer.event_id, customer.entity, customer.external_id, customer.account_id) == (
        "9:e-1",
        "clients",
        "123",
        "9",
    )
    (job,) = st_parse({"eventId": "e-2", "eventType": "JobCompleted", "id": 55})
    assert (job.event_id, job.entity, job.external_id, job.account_id) == ("e-2", "jobs", "55", "")
    (estimate,) = st_parse({"eventType": "estimate_sold", "estimateId": 77, "jobId": 55})
    assert (estimate.entity, estimate.external_id) == ("quotes", "77")


@pytest.mark.parametrize(
    "payload",
    [
        {"eventType": "Customer.Updated"},  # names the kind but no record
        {"eventType": "Membership.Created", "id": 5},  # not a kind we sync
        {"eventType": "TagType.Created", "id": 5},  # synced, but no re-fetch of one
        {"eventType": "JobCancelReason.Updated", "id": 5, "jobId": 6},  # not a job
        {"eventType": "CustomerContact.Updated", "id": 5, "customerId": 6},  # not a customer
        {"eventType": "InvoiceItem.Updated", "id": 5, "invoiceId": 6},  # item id != invoice
        {"eventType": "Invoice.Created"},  # names the kind but no record
        {"eventType": "Jobs", "jobId": 5},  # "Jobs" is not "job": no guessing
        {"customerId": 5},  # no event type
        {"eventType": 7, "customerId": 5},
    ],
)
def test_servicetitan_does_not_guess(payload):
    (notice,) = st_parse(payload)
    assert (notice.entity, notice.external_id) == ("", "")
    assert notice.event_type in {payload.get("eventType"), "unknown"}


@pytest.mark.parametrize(
    ("payload", "entity", "external_id"),
    [
        # Assumed event names (no ServiceTitan event catalogue; see the handler's docstring).
        ({"eventType": "Location.Updated", "locationId": 11, "customerId": 5}, "locations", "11"),
        ({"eventType": "BusinessUnit.Updated", "id": 1005}, "business_units", "business_unit:1005"),
        (
            {"eventType": "JobType.Created", "jobTypeId": 2006, "id": 1},
            "job_types",
            "job_type:2006",
        ),
        ({"eventType": "zone_updated", "zoneId": 12}, "zones", "zone:12"),
        ({"eventType": "Team.Deleted", "id": 9451}, "teams", "team:9451"),
        ({"eventType": "Project.Updated", "projectId": 180000012}, "projects", "project:180000012"),
        (
            {"eventType": "TechnicianShift.Created", "id": 9500234, "technicianId": 7017},
            "technician_shifts",
            "technician_shift:9500234",
        ),
        ({"eventType": "Category.Updated", "categoryId": 31}, "pricebook_categories", "31"),
        ({"eventType": "Material.Updated", "id": 40001}, "pricebook_materials", "material:40001"),
        (
            {"eventType": "PricebookService.Updated", "serviceId": 50002},
            "pricebook_services",
            "service:50002",
        ),
        ({"eventType": "EquipmentCreated", "id": 60003}, "pricebook_equipment", "equipment:60003"),
        (
            {"eventType": "DiscountAndFee.Updated", "discountAndFeeId": 7},
            "pricebook_discounts_fees",
            "discount_fee:7",
        ),
        ({"eventType": "Invoice.Created", "id": 5, "jobId": 55}, "invoices", "5"),
        ({"eventType": "Payment.Created", "paymentId": 8, "customerId": 5}, "payments", "8"),
        ({"eventType": "Vendor.Updated", "vendorId": 3}, "inventory_vendors", "vendor:3"),
        ({"eventType": "Warehouse.Updated", "id": 4}, "inventory_warehouses", "warehouse:4"),
        (
            {"eventType": "PurchaseOrder.Received", "purchaseOrderId": 6},
            "inventory_purchase_orders",
            "purchase_order:6",
        ),
        (
            {"eventType": "InventoryAdjustment.Created", "id": 9},
            "inventory_adjustments",
            "inventory_adjustment:9",
        ),
        (
            {"eventType": "Adjustment.Updated", "adjustmentId": 9},
            "inventory_adjustments",
            "inventory_adjustment:9",
        ),
    ],
)
def test_servicetitan_places_the_issue_5_entities_with_their_id_prefix(
    payload, entity, external_id
):
    (notice,) = st_parse(payload)
    assert (notice.entity, notice.external_id) == (entity, external_id)
    # The prefix is the one the provider's fetch_record strips (its Resource.id_prefix).
    from integrations.providers.servicetitan.provider import ServiceTitanProvider

    prefix = ServiceTitanProvider.resources[entity][0].id_prefix
    assert external_id.startswith(prefix) and external_id.removeprefix(prefix).isdigit()


def test_servicetitan_event_ids_without_an_event_id():
    first = st_parse({"eventType": "Job.Updated", "id": 55, "summary": "a"})[0].event_id
    assert first == st_parse({"summary": "a", "id": 55, "eventType": "Job.Updated"})[0].event_id
    # A record id is not an event id: a later event about the same job is another event.
    assert first != st_parse({"eventType": "Job.Updated", "id": 55, "summary": "b"})[0].event_id
    assert len(first) == 64
    long_id = st_parse({"eventId": "x" * 300, "eventType": "Job.Updated"})[0].event_id
    assert len(long_id) == 64


def test_servicetitan_accepts_an_array_of_events():
    notices = st_parse([{"eventId": "a", "eventType": "Job.Created", "jobId": 1}, {"eventId": "b"}])
    assert [(n.event_id, n.entity, n.event_type) for n in notices] == [
        ("a", "jobs", "Job.Created"),
        ("b", "", "unknown"),
    ]


@pytest.mark.parametrize("body", [b"", b"nope", b'"x"', b"3", b"[1]", b'[{"a": 1}, null]'])
def test_servicetitan_malformed_bodies_raise(body):
    with pytest.raises(WebhookPayloadError):
        ServiceTitanWebhookHandler().parse(make_request(body))
