#!/usr/bin/python3
"""Command tokens through PyJWT, an implementation independent of Outpost's; run by
tests/security/interop_test.cc under /usr/bin/python3 with Debian's python3-jwt and
python3-cryptography. Everything comes and goes through files, so no shell quoting is involved.

  pyjwt_interop.py verify ALG JWK_FILE TOKEN_FILE AUDIENCE
      Verifies the token with the public JWK (algorithms=[ALG], exp and iat required, the
      audience checked) and prints {"header": ..., "claims": ...} as one line of JSON.
  pyjwt_interop.py sign ALG PEM_FILE KID CLAIMS_FILE VALUE_FILE
      Signs the claims (a JSON object) with the PKCS#8 private key, with the header
      {"alg": ALG, "kid": KID, "typ": "outpost-command+jwt"}, and prints the compact token. The
      sha256 claim is computed here from the value's bytes (base64url without padding).
  pyjwt_interop.py keygen-p256
      Prints a new P-256 private key as PKCS#8 PEM, made by the cryptography package.

Exits 1, with PyJWT's reason on stderr, when PyJWT refuses.
"""
import base64
import hashlib
import json
import sys

import jwt

TOKEN_TYPE = "outpost-command+jwt"


def verify(alg, jwk_file, token_file, audience):
    with open(jwk_file, encoding="utf-8") as f:
        key = jwt.PyJWK(json.load(f))
    with open(token_file, encoding="utf-8") as f:
        token = f.read().strip()
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[alg],
        audience=audience,
        options={"require": ["exp", "iat"]},
    )
    header = jwt.get_unverified_header(token)
    print(json.dumps({"header": header, "claims": claims}))


def sign(alg, pem_file, kid, claims_file, value_file):
    with open(pem_file, "rb") as f:
        pem = f.read()
    with open(claims_file, encoding="utf-8") as f:
        claims = json.load(f)
    with open(value_file, "rb") as f:
        digest = hashlib.sha256(f.read()).digest()
    claims["sha256"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    print(jwt.encode(claims, pem, algorithm=alg, headers={"kid": kid, "typ": TOKEN_TYPE}))


def keygen_p256():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    print(pem.decode(), end="")


def main(argv):
    try:
        if len(argv) == 6 and argv[1] == "verify":
            verify(*argv[2:])
        elif len(argv) == 7 and argv[1] == "sign":
            sign(*argv[2:])
        elif len(argv) == 2 and argv[1] == "keygen-p256":
            keygen_p256()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except jwt.PyJWTError as e:
        print(f"PyJWT refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
