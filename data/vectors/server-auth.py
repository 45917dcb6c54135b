#!/usr/bin/env python3
"""FORMAT.md's server sign-in vector, computed without Umer Chat's code: Argon2id from
argon2-cffi (`pip install argon2-cffi`) and HKDF-SHA256 written out from RFC 5869.
`crypto::tests::the_server_sign_in_key_comes_from_the_one_stretch_and_opens_nothing`
asserts the same two values."""
import hashlib
import hmac

from argon2.low_level import Type, hash_secret_raw


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


stretch = hash_secret_raw(
    "correct horse battery staple".encode("utf-8"),
    bytes([0x0A]) * 16,
    time_cost=2,
    memory_cost=19456,
    parallelism=1,
    hash_len=32,
    type=Type.ID,
    version=0x13,
)
print("k   ", stretch.hex())
print("auth", hkdf_sha256(b"umer-chat/server-auth/v1", stretch, b"alice").hex())
