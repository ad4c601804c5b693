"""Who is calling: OpenID Connect sign-in for the dashboard, and the JWT check of its tokens.

The dashboard signs in with the authorization-code flow and PKCE against an OpenID provider
(the stack's Cognito user pool on AWS; any provider for ``imgpipe serve --oidc-issuer``) and
sends the access token as ``Authorization: Bearer``. ``OidcClient`` is what the page needs to
know, told by ``/dashboard/config.json``.

On AWS, API Gateway's JWT authorizer checks the token before the function runs, and the
function reads the verified claims from the event. Locally, ``JwtVerifier`` makes the same
check: a signature by one of the issuer's keys (its JWKS), ``iss`` equal to the issuer, not
expired, and the audience - ``aud`` containing the client id, or ``client_id`` equal to it, as
API Gateway accepts Cognito's access tokens, which carry no ``aud``. ``caller(request)`` is the
verified ``sub`` in either face (``uploaded_by`` on the records).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request

from imgpipe.errors import ConfigError, UnauthorizedError

__all__ = [
    "CLAIMS",
    "OIDC_ENV",
    "JwtVerifier",
    "OidcClient",
    "caller",
    "discover",
    "oidc_from_env",
]

CLAIMS = "imgpipe.claims"  # where the local Guard leaves the verified claims in the ASGI scope
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
_LEEWAY_S = 30  # clock skew allowed on exp / nbf / iat
_DISCOVERY_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class OidcClient:
    """A public client of an OpenID provider (no secret: PKCE instead)."""

    issuer: str
    client_id: str
    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str | None = None
    scopes: str = "openid email profile"

    def dashboard_config(self) -> dict[str, Any]:
        return asdict(self)


class JwtVerifier:
    """Checks bearer tokens as API Gateway's JWT authorizer does (see the module docstring)."""

    def __init__(self, issuer: str, audience: str, jwks_uri: str) -> None:
        import jwt  # noqa: PLC0415 - only a server with sign-in needs it

        self.issuer, self.audience = issuer, audience
        self._jwt = jwt
        self._keys = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=3600, timeout=10)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; ``UnauthorizedError`` for anything but a valid token."""
        jwt = self._jwt
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=_ALGORITHMS, issuer=self.issuer, leeway=_LEEWAY_S,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False})  # fmt: skip
        except jwt.PyJWKClientConnectionError as exc:
            raise UnauthorizedError("the sign-in provider's keys could not be fetched") from exc
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"the access token was not accepted: {exc}") from exc
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if self.audience not in audiences and claims.get("client_id") != self.audience:
            raise UnauthorizedError("the access token was issued for another client")
        return claims


def discover(issuer: str, client_id: str) -> tuple[OidcClient, str]:
    """The provider's endpoints and JWKS URL from its discovery document."""
    import urllib.request  # noqa: PLC0415 - only a server with sign-in reads discovery

    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"the OpenID issuer must be an http(s) URL, not {issuer!r}")
    try:
        with urllib.request.urlopen(url, timeout=_DISCOVERY_TIMEOUT_S) as found:  # noqa: S310
            document = json.loads(found.read(1_000_000))
        client = OidcClient(issuer=document["issuer"], client_id=client_id,
                            authorization_endpoint=document["authorization_endpoint"],
                            token_endpoint=document["token_endpoint"],
                            end_session_endpoint=document.get("end_session_endpoint"))  # fmt: skip
        jwks_uri = str(document["jwks_uri"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the OpenID configuration at {url}: {exc}") from exc
    if client.issuer != issuer:
        raise ConfigError(f"{url} names issuer {client.issuer!r}, not {issuer!r}")
    return client, jwks_uri


# Set by template.yaml with AuthMode COGNITO (its user pool, app client and hosted domain).
OIDC_ENV = ("IMGPIPE_OIDC_ISSUER", "IMGPIPE_OIDC_CLIENT_ID", "IMGPIPE_OIDC_AUTHORIZE_URL",
            "IMGPIPE_OIDC_TOKEN_URL", "IMGPIPE_OIDC_LOGOUT_URL")  # fmt: skip


def oidc_from_env(environ: Mapping[str, str] | None = None) -> OidcClient | None:
    """The sign-in the template configured for the dashboard, or ``None`` (no sign-in)."""
    env = os.environ if environ is None else environ
    issuer, client_id, authorize, token, logout = (env.get(n, "").strip() for n in OIDC_ENV)
    if not issuer:
        return None
    if not (client_id and authorize and token):
        raise ConfigError(f"with IMGPIPE_OIDC_ISSUER set, {', '.join(OIDC_ENV[1:4])} are needed")
    return OidcClient(issuer=issuer, client_id=client_id, authorization_endpoint=authorize,
                      token_endpoint=token, end_session_endpoint=logout or None)  # fmt: skip


def caller(request: Request) -> str | None:
    """The verified ``sub`` of the request's token: from the local Guard's check, or from API
    Gateway's authorizer in the Lambda event (Mangum keeps the event in the scope)."""
    claims = request.scope.get(CLAIMS)
    if claims is None:
        event = request.scope.get("aws.event") or {}
        authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
        claims = (authorizer.get("jwt") or {}).get("claims")
    subject = (claims or {}).get("sub")
    return str(subject)[:256] if subject else None
