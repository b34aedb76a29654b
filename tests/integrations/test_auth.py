"""OAuth grants through authlib, with the token endpoint mocked by `responses`."""

import time
from urllib.parse import parse_qs

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.auth import (
    BasicApiKeyAuth,
    ClientCredentialsAuth,
    JWTBearerAuth,
    MemoryTokenStore,
    PasswordGrantAuth,
    RefreshTokenAuth,
)
from integrations.exceptions import ProviderAuthError, ProviderServerError

TOKEN_URL = "https://auth.example.test/connect/token"


def form(call) -> dict:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


@responses.activate
def test_client_credentials_token_is_cached_and_refreshed_five_minutes_early():
    responses.post(
        TOKEN_URL, json={"access_token": "t1", "expires_in": 900, "token_type": "Bearer"}
    )
    responses.post(
        TOKEN_URL, json={"access_token": "t2", "expires_in": 900, "token_type": "Bearer"}
    )
    store = MemoryTokenStore()
    auth = ClientCredentialsAuth(
        provider="servicetitan",
        store=store,
        token_url=TOKEN_URL,
        client_id="cid",
        client_secret="csecret",
        extra_headers={"ST-App-Key": "ak1.app"},
    )
    headers: dict = {}
    auth.apply(headers)
    auth.apply(headers)
    assert headers == {"Authorization": "Bearer t1", "ST-App-Key": "ak1.app"}
    assert len(responses.calls) == 1
    assert form(responses.calls[0]) == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "csecret",
    }

    store.cached["expires_at"] = time.time() + 299  # inside the 5-minute margin
    auth.apply(headers)
    assert headers["Authorization"] == "Bearer t2"
    assert len(responses.calls) == 2


@responses.activate
def test_refresh_token_rotation_is_saved_before_the_new_token_is_used():
    responses.post(
        TOKEN_URL,
        json={
            "access_token": "a2",
            "refresh_token": "r2",
            "expires_in": 3600,
            "token_type": "bearer",
        },
    )
    saved_before_use = []

    class Store(MemoryTokenStore):
        def save_credentials(self, credentials):
            saved_before_use.append(self.cached)  # nothing cached yet: not used yet
            super().save_credentials(credentials)

    store = Store({"refresh_token": "r1", "access_token": "a1", "expires_at": time.time() - 10})
    auth = RefreshTokenAuth(
        provider="servicem8", store=store, token_url=TOKEN_URL, client_id="c", client_secret="s"
    )
    assert auth.access_token() == "a2"
    assert form(responses.calls[0])["refresh_token"] == "r1"
    assert form(responses.calls[0])["grant_type"] == "refresh_token"
    assert store.credentials["refresh_token"] == "r2"
    assert saved_before_use == [None]


@responses.activate
def test_a_refused_refresh_token_is_an_auth_error():
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    auth = RefreshTokenAuth(
        provider="jobber",
        store=MemoryTokenStore({"refresh_token": "spent"}),
        token_url=TOKEN_URL,
        client_id="c",
        client_secret="s",
    )
    with pytest.raises(ProviderAuthError, match="invalid_grant"):
        auth.access_token()


@responses.activate
def test_a_failing_token_endpoint_is_a_server_error():
    responses.post(TOKEN_URL, status=503, body="down")
    auth = ClientCredentialsAuth(
        provider="servicetitan",
        store=MemoryTokenStore(),
        token_url=TOKEN_URL,
        client_id="c",
        client_secret="s",
    )
    with pytest.raises(ProviderServerError):
        auth.access_token()


@responses.activate
def test_salesforce_password_grant():
    responses.post(TOKEN_URL, json={"access_token": "sf", "token_type": "Bearer"})
    auth = PasswordGrantAuth(
        provider="salesforce",
        store=MemoryTokenStore(),
        token_url=TOKEN_URL,
        client_id="c",
        client_secret="s",
        username="u@example.com",
        password="pw+securitytoken",
    )
    assert auth.access_token() == "sf"
    body = form(responses.calls[0])
    assert body["grant_type"] == "password" and body["username"] == "u@example.com"


@responses.activate
def test_jwt_bearer_assertion_is_signed_with_the_private_key():
    from authlib.jose import jwt

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    responses.post(TOKEN_URL, json={"access_token": "jwt-token", "token_type": "Bearer"})
    auth = JWTBearerAuth(
        provider="salesforce",
        store=MemoryTokenStore(),
        token_url=TOKEN_URL,
        client_id="consumer",
        subject="api@example.com",
        audience="https://login.salesforce.com",
        private_key=private_pem,
    )
    assert auth.access_token() == "jwt-token"
    body = form(responses.calls[0])
    assert body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(body["assertion"], public_pem)
    assert claims["iss"] == "consumer" and claims["sub"] == "api@example.com"
    assert claims["aud"] == "https://login.salesforce.com"


def test_basic_plus_api_key():
    headers: dict = {}
    BasicApiKeyAuth(username="u", password="p", api_key_header="X-Api-Key", api_key="k").apply(
        headers
    )
    assert headers == {"Authorization": "Basic dTpw", "X-Api-Key": "k"}


@responses.activate
@pytest.mark.parametrize("expires_in", [60, 300])
def test_a_short_lived_token_is_reused_until_half_its_lifetime(expires_in):
    """With expires_in <= 300 a flat 5-minute margin made every call fetch a token; such a
    token's margin is half its lifetime."""
    for name in ("s1", "s2"):
        responses.post(
            TOKEN_URL, json={"access_token": name, "expires_in": expires_in, "token_type": "Bearer"}
        )
    store = MemoryTokenStore()
    auth = ClientCredentialsAuth(
        provider="servicetitan", store=store, token_url=TOKEN_URL, client_id="c", client_secret="s"
    )
    headers: dict = {}
    for _ in range(3):
        auth.apply(headers)
    assert headers["Authorization"] == "Bearer s1"
    assert len(responses.calls) == 1
    assert auth.margin(store.cached) == expires_in / 2

    store.cached["expires_at"] = time.time() + expires_in / 2 - 1  # inside the margin
    auth.apply(headers)
    assert headers["Authorization"] == "Bearer s2"
    assert len(responses.calls) == 2


def test_the_margin_stays_five_minutes_for_long_lived_or_unknown_lifetimes():
    auth = ClientCredentialsAuth(provider="x", store=MemoryTokenStore(), token_url=TOKEN_URL)
    assert auth.margin({"expires_in": 900}) == 300
    assert auth.margin({"expires_in": 301}) == 300  # the rule: 5 minutes before
    assert auth.margin({}) == 300
    assert auth.margin({"expires_in": "junk"}) == 300
