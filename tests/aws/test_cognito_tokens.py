"""``JwtVerifier`` against tokens from moto's Cognito (which signs them and serves its JWKS):
the check the local server makes is the one API Gateway's JWT authorizer makes for the stack's
user pool - issuer, signature, expiry, and audience as ``aud`` (ID tokens) or ``client_id``
(access tokens, which carry no ``aud``)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import aws_support
from imgpipe.api.identity import JwtVerifier
from imgpipe.errors import UnauthorizedError

pytestmark = pytest.mark.aws


@dataclass(frozen=True)
class Pool:
    issuer: str
    jwks_uri: str
    client_id: str
    other_client_id: str
    sub: str
    tokens: dict[str, Any]


@pytest.fixture
def pool() -> Iterator[Pool]:
    cognito = aws_support.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=aws_support.unique("users"))["UserPool"]["Id"]
    clients = [cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName=name, GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"] for name in ("dashboard", "other")]  # fmt: skip
    cognito.admin_create_user(UserPoolId=pool_id, Username="ada", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="ada",
                                    Password="Correct-horse-1", Permanent=True)  # fmt: skip
    user = cognito.admin_get_user(UserPoolId=pool_id, Username="ada")
    sub = next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")
    tokens = cognito.admin_initiate_auth(
        UserPoolId=pool_id, ClientId=clients[0], AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada", "PASSWORD": "Correct-horse-1"},
    )["AuthenticationResult"]  # fmt: skip
    issuer = f"https://cognito-idp.{aws_support.REGION}.amazonaws.com/{pool_id}"
    jwks = f"{aws_support.endpoint()}/{pool_id}/.well-known/jwks.json"
    try:
        yield Pool(issuer, jwks, clients[0], clients[1], sub, tokens)
    finally:
        cognito.delete_user_pool(UserPoolId=pool_id)


def test_the_pools_access_and_id_tokens_are_accepted_with_their_subject(pool: Pool) -> None:
    verifier = JwtVerifier(pool.issuer, pool.client_id, pool.jwks_uri)
    access = verifier.verify(pool.tokens["AccessToken"])
    assert (access["sub"], access["client_id"], access["token_use"]) == (
        pool.sub, pool.client_id, "access")  # fmt: skip
    assert verifier.verify(pool.tokens["IdToken"])["sub"] == pool.sub


def test_a_token_for_another_client_issuer_or_with_a_bad_signature_is_refused(
    pool: Pool,
) -> None:
    token = pool.tokens["AccessToken"]
    with pytest.raises(UnauthorizedError, match="another client"):
        JwtVerifier(pool.issuer, pool.other_client_id, pool.jwks_uri).verify(token)
    with pytest.raises(UnauthorizedError, match="not accepted"):
        JwtVerifier(pool.issuer + "x", pool.client_id, pool.jwks_uri).verify(token)
    header, payload, signature = token.split(".")
    flipped = base64.urlsafe_b64decode(signature + "==")
    forged = base64.urlsafe_b64encode(bytes([flipped[0] ^ 1]) + flipped[1:]).rstrip(b"=")
    with pytest.raises(UnauthorizedError, match="not accepted"):
        JwtVerifier(pool.issuer, pool.client_id, pool.jwks_uri).verify(
            f"{header}.{payload}.{forged.decode()}")  # fmt: skip
    with pytest.raises(UnauthorizedError):
        JwtVerifier(pool.issuer, pool.client_id, pool.jwks_uri).verify("not-a-jwt")
