"""Signed commands (docs/security.md): the `outpost-signature` header a worker with
`security.commands: require` needs, made with PyJWT (Debian's python3-jwt and
python3-cryptography).

The token binds the record's exact value (its SHA-256), the topic, the pools it may run in
(`aud`), what it is (`kind`, `jti`, `cty`) and a short lifetime (`iat`, `exp`).
"""

import base64
import hashlib
import time

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key

SIGNATURE_HEADER = "outpost-signature"
TOKEN_TYPE = "outpost-command+jwt"


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """Signs commands with one private key: Ed25519 (EdDSA) or P-256 (ES256), as PKCS#8 PEM
    (what `outpost keygen` writes).

    private_key: the PEM (bytes or text) or a path to it; kid: the key's id in the workers'
    trusted keys; lifetime: seconds a token is valid (at most the workers'
    security.max_command_lifetime); pools: the pools a command may run in when it names none;
    issuer: the signer's name (the token's iss).
    """

    def __init__(self, private_key, kid, lifetime=300, pools=None, issuer=None):
        if isinstance(private_key, str) and not private_key.lstrip().startswith("-----BEGIN"):
            with open(private_key, "rb") as f:
                private_key = f.read()
        if isinstance(private_key, str):
            private_key = private_key.encode()
        self._key = load_pem_private_key(private_key, password=None)
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            self.algorithm = "EdDSA"
        elif isinstance(self._key, ec.EllipticCurvePrivateKey) and \
                isinstance(self._key.curve, ec.SECP256R1):
            self.algorithm = "ES256"
        else:
            raise ValueError("a command signing key is Ed25519 or P-256")
        self.kid = kid
        self.lifetime = int(lifetime)
        self.pools = list(pools or [])
        self.issuer = issuer

    def token(self, value, topic, kind, jti, pools=None, cty="protobuf", now=None):
        """The compact JWS for a record whose value is `value` (bytes, exactly as written)."""
        pools = list(pools or self.pools)
        if not pools:
            raise ValueError("a signed command names the pools it may run in: give the command "
                             "a pool, or Signer(pools=[...])")
        iat = int(time.time() if now is None else now)
        claims = {
            "sha256": _b64url(hashlib.sha256(value).digest()),
            "topic": topic,
            "aud": [f"outpost:{p}" for p in pools],
            "kind": kind,
            "jti": jti,
            "cty": cty,
            "iat": iat,
            "exp": iat + self.lifetime,
        }
        if self.issuer:
            claims["iss"] = self.issuer
        return jwt.encode(claims, self._key, algorithm=self.algorithm,
                          headers={"kid": self.kid, "typ": TOKEN_TYPE})

    def headers(self, value, topic, kind, jti, pools=None):
        """The record headers (a list for confluent_kafka's produce) carrying the token."""
        return [(SIGNATURE_HEADER, self.token(value, topic, kind, jti, pools).encode())]
