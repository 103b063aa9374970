"""Service-account tokens (TokenRequest) as RS256 JWTs, their review, and the OIDC discovery documents."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pytest_aksai.sim.contract import RESTRICTED_USER

DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenIssuer:
    """Signs service-account tokens for `issuer`; the admin token (kubeconfig user) is an opaque random string."""

    def __init__(self, issuer: str, clock: Any) -> None:
        self.issuer = issuer
        self.clock = clock
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = base64.urlsafe_b64encode(hashlib.sha256(public_der).digest()).rstrip(b"=").decode()
        self.admin_token = secrets.token_urlsafe(32)
        self.restricted_token = secrets.token_urlsafe(32)
        """The kubeconfig's second user: no group beyond system:authenticated, authorized by RBAC alone."""
        self.restricted_user = RESTRICTED_USER

    def issue(
        self,
        namespace: str,
        name: str,
        sa_uid: str,
        audiences: list[str],
        expiration_seconds: int,
        bound: dict[str, Any] | None = None,
    ) -> tuple[str, int]:
        now = self.clock.epoch_seconds()
        exp = now + expiration_seconds
        claims: dict[str, Any] = {
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": sa_uid}},
        }
        if bound:
            claims["kubernetes.io"][bound["kind"].lower()] = {
                "name": bound["name"],
                "uid": bound.get("uid", ""),
            }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})
        return token, exp

    def verify(self, token: str, audiences: list[str] | None = None) -> dict[str, Any]:
        """Claims of a valid token; raises jwt.PyJWTError otherwise. Expiry is checked against cluster time."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key.public_key(),
            algorithms=["RS256"],
            issuer=self.issuer,
            options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
        if int(claims.get("exp", 0)) < self.clock.epoch_seconds():
            raise jwt.ExpiredSignatureError("token has expired")
        if audiences and not set(audiences) & set(claims.get("aud") or []):
            raise jwt.InvalidAudienceError("token audiences do not match")
        return claims

    def review(self, token: str, audiences: list[str]) -> dict[str, Any]:
        if token == self.restricted_token:
            return {
                "authenticated": True,
                "user": {"username": self.restricted_user, "groups": ["system:authenticated"]},
                "audiences": audiences or [self.issuer],
            }
        if token == self.admin_token:
            return {
                "authenticated": True,
                "user": {"username": "aksai-sim-admin", "groups": ["system:masters", "system:authenticated"]},
                "audiences": audiences or [self.issuer],
            }
        try:
            claims = self.verify(token, audiences)
        except jwt.PyJWTError as exc:
            return {"authenticated": False, "error": f"[invalid bearer token, {exc}]", "user": {}}
        info = claims["kubernetes.io"]
        return {
            "authenticated": True,
            "audiences": audiences or claims.get("aud"),
            "user": {
                "username": claims["sub"],
                "uid": info["serviceaccount"]["uid"],
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{info['namespace']}",
                    "system:authenticated",
                ],
            },
        }

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer.rstrip('/')}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "use": "sig",
                    "kty": "RSA",
                    "kid": self.key_id,
                    "alg": "RS256",
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }
