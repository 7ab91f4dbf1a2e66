import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infrastructure.crypto.blind_index import HmacBlindIndex
from infrastructure.crypto.cipher import AesGcmCipher, DecryptionError, parse_key_ring
from infrastructure.crypto.signed_tokens import HmacTokens, TokenError

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
FIXED_NONCE = bytes(range(12))
PHONE = "+14155550132"
CONTEXT = "customer.phone"
PINNED_TOKEN = "v1:k1:AAECAwQFBgcICQoLbDPiKvDQ9y69cKS5MFVkiWJ4KODbBG9PDBT6Ww"
BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def fixed_nonce() -> bytes:
    return FIXED_NONCE


def test_round_trip_returns_the_plaintext():
    cipher = AesGcmCipher({"k1": K1})

    token = cipher.encrypt("jane@example.com", context="customer.email")

    assert token.startswith("v1:k1:")
    assert cipher.decrypt(token, context="customer.email") == "jane@example.com"


def test_round_trip_handles_empty_and_non_ascii_plaintext():
    cipher = AesGcmCipher({"k1": K1})

    assert cipher.decrypt(cipher.encrypt("")) == ""
    assert cipher.decrypt(cipher.encrypt("Zoë 🌸")) == "Zoë 🌸"


def test_encrypting_twice_uses_fresh_nonces():
    cipher = AesGcmCipher({"k1": K1})

    assert cipher.encrypt(PHONE) != cipher.encrypt(PHONE)


def test_token_matches_aes_gcm_primitive_and_pinned_vector():
    cipher = AesGcmCipher({"k1": K1}, nonce_factory=fixed_nonce)
    sealed = AESGCM(K1).encrypt(FIXED_NONCE, PHONE.encode(), CONTEXT.encode())
    expected = "v1:k1:" + base64.urlsafe_b64encode(FIXED_NONCE + sealed).decode().rstrip("=")

    token = cipher.encrypt(PHONE, context=CONTEXT)

    assert token == expected
    assert token == PINNED_TOKEN
    assert cipher.decrypt(PINNED_TOKEN, context=CONTEXT) == PHONE


def test_nonce_factory_of_wrong_length_is_rejected():
    cipher = AesGcmCipher({"k1": K1}, nonce_factory=lambda: b"short")

    with pytest.raises(ValueError, match="need 12"):
        cipher.encrypt(PHONE)


@pytest.mark.parametrize("position", range(len(PINNED_TOKEN)))
def test_changing_any_character_of_a_token_fails_decryption(position):
    cipher = AesGcmCipher({"k1": K1})
    original = PINNED_TOKEN[position]
    replacement = next(c for c in BASE64URL_ALPHABET if c != original)
    tampered = PINNED_TOKEN[:position] + replacement + PINNED_TOKEN[position + 1 :]

    with pytest.raises(DecryptionError):
        cipher.decrypt(tampered, context=CONTEXT)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1:k1",
        "v2:k1:AAAA",
        PINNED_TOKEN[:-1],
        PINNED_TOKEN + "A",
        PINNED_TOKEN + ":extra",
        "v1:k1:AAECAwQFBgcICQoL",
        PINNED_TOKEN.replace("Ww", "W="),
        PINNED_TOKEN[:10] + "+" + PINNED_TOKEN[11:],
    ],
)
def test_malformed_tokens_fail_decryption(token):
    cipher = AesGcmCipher({"k1": K1})

    with pytest.raises(DecryptionError):
        cipher.decrypt(token, context=CONTEXT)


def test_decrypting_under_another_context_fails():
    cipher = AesGcmCipher({"k1": K1})
    token = cipher.encrypt(PHONE, context="customer.phone")

    with pytest.raises(DecryptionError) as caught:
        cipher.decrypt(token, context="customer.email")

    assert PHONE not in str(caught.value)


def test_token_naming_a_key_outside_the_ring_fails_decryption():
    token = AesGcmCipher({"old": K1}).encrypt(PHONE)

    with pytest.raises(DecryptionError, match="not in the key ring"):
        AesGcmCipher({"k1": K1}).decrypt(token)


def test_rotation_keeps_old_tokens_readable_and_reencrypts_under_the_newest_key():
    old_token = AesGcmCipher({"k1": K1}).encrypt(PHONE, context=CONTEXT)
    rotating = AesGcmCipher({"k1": K1, "k2": K2})

    assert rotating.decrypt(old_token, context=CONTEXT) == PHONE
    assert rotating.needs_rotation(old_token)

    new_token = rotating.reencrypt(old_token, context=CONTEXT)

    assert new_token.startswith("v1:k2:")
    assert not rotating.needs_rotation(new_token)
    assert AesGcmCipher({"k2": K2}).decrypt(new_token, context=CONTEXT) == PHONE


def test_new_tokens_are_sealed_under_the_last_key_of_the_ring():
    cipher = AesGcmCipher({"k1": K1, "k2": K2})

    assert cipher.encrypt(PHONE).startswith("v1:k2:")


def test_reencrypt_refuses_a_token_sealed_for_another_context():
    cipher = AesGcmCipher({"k1": K1, "k2": K2})
    old_token = AesGcmCipher({"k1": K1}).encrypt(PHONE, context=CONTEXT)

    with pytest.raises(DecryptionError):
        cipher.reencrypt(old_token, context="customer.email")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, "empty"),
        ({"k1": bytes(16)}, "16 bytes"),
        ({"k1": bytes(33)}, "33 bytes"),
        ({"bad id": K1}, "invalid key id"),
        ({"x" * 33: K1}, "invalid key id"),
    ],
)
def test_cipher_rejects_invalid_key_rings(keys, message):
    with pytest.raises(ValueError, match=message):
        AesGcmCipher(keys)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_parse_key_ring_accepts_standard_and_urlsafe_base64_in_order():
    spec = f" k1:{_b64(K1)} , k2:{base64.urlsafe_b64encode(K2).decode().rstrip('=')}"

    ring = parse_key_ring(spec)

    assert ring == {"k1": K1, "k2": K2}
    assert list(ring) == ["k1", "k2"]


@pytest.mark.parametrize(
    ("spec", "material", "message"),
    [
        ("k1:not*base64!!", "not*base64!!", "'k1' is not valid base64"),
        (f"k1:{_b64(bytes(range(16)))}", _b64(bytes(range(16))), "'k1' is 16 bytes"),
        (f"k1:{_b64(K1)},k1:{_b64(K2)}", _b64(K2), "'k1' appears more than once"),
        (f"{_b64(K1)}", _b64(K1), "entry 1 is not in <id>:<base64 key> form"),
        (f"k1:{_b64(K1)},{_b64(K2)}:k2", _b64(K2), "entry 2 has an invalid key id"),
        ("", "", "empty"),
    ],
)
def test_parse_key_ring_errors_name_the_problem_without_echoing_key_material(
    spec, material, message
):
    with pytest.raises(ValueError, match=message) as caught:
        parse_key_ring(spec)

    if material:
        assert material not in str(caught.value)
        assert material.rstrip("=")[:12] not in str(caught.value)


def test_blind_index_matches_pinned_hmac_sha256_vector():
    index = HmacBlindIndex(bytes(range(32)))
    expected = hmac.new(
        bytes(range(32)), b"customer.phone\x00+14155550132", hashlib.sha256
    ).hexdigest()

    digest = index.digest(PHONE, purpose="customer.phone")

    assert digest == expected
    assert digest == "afccc98490947210024c8c64346b6103a9c7f71a838a128ef4b8142120a0dca0"


def test_blind_index_differs_by_purpose():
    index = HmacBlindIndex(K1)

    assert index.digest(PHONE, purpose="customer.phone") != index.digest(
        PHONE, purpose="opt_out.phone"
    )


def test_blind_index_differs_by_key():
    assert HmacBlindIndex(K1).digest(PHONE, purpose="p") != HmacBlindIndex(K2).digest(
        PHONE, purpose="p"
    )


def test_blind_index_matches_only_its_own_digest():
    index = HmacBlindIndex(K1)
    digest = index.digest(PHONE, purpose="customer.phone")

    assert index.matches(PHONE, "customer.phone", digest)
    assert not index.matches(PHONE, "opt_out.phone", digest)
    assert not index.matches("+14155550133", "customer.phone", digest)
    assert not index.matches(PHONE, "customer.phone", "not-a-digest")


def test_blind_index_rejects_keys_shorter_than_32_bytes():
    with pytest.raises(ValueError, match="at least 32"):
        HmacBlindIndex(bytes(31))


def test_blind_index_rejects_nul_in_purpose():
    with pytest.raises(ValueError, match="NUL"):
        HmacBlindIndex(K1).digest("x", purpose="a\x00b")


@pytest.mark.parametrize("token", ["a.1.é", "a.1", "", "é.é.é", "a.9999999999.x"])
def test_signed_tokens_refuse_any_malformed_token_as_a_token_error(token):
    with pytest.raises(TokenError):
        HmacTokens(b"k" * 32).verify("unsubscribe", token)
