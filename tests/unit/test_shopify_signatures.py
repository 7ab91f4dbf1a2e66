"""Contract vectors from shared/contracts/shopify.md (§1.2-1.4, §2, §3.2, §4.4, §5.2-5.3)."""

import base64
import hashlib
import hmac
import json

import pytest

from infrastructure.shopify.signatures import (
    ProxyRequest,
    SignatureError,
    decode_host,
    decode_session_token,
    encode_session_token,
    normalize_shop_domain,
    sign_app_proxy_query,
    sign_oauth_query,
    sign_webhook,
    verify_app_proxy_query,
    verify_oauth_query,
    verify_webhook,
)

SECRET = "hush"
OTHER_SECRET = "not-hush"

# --- §1.3 OAuth vectors ------------------------------------------------------------------------

A1_QUERY = (
    "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com"
    "&state=0.6784241404160823&timestamp=1337178173"
)
A1_HMAC = "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
A2_QUERY = "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173"
A2_HMAC = "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"
A4_PARAMS = {
    "code": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc21zLWRlbW8",
    "shop": "sms-demo.myshopify.com",
    "state": "f3c1e2d4a5b6978812345678abcdef00",
    "timestamp": "1717000042",
}
A4_HMAC = "4977e114b74cf15e0b06b95c740b1eacad1042039a2217c6beb28e7a85f31e1a"
A4_NEG_HMAC = "4d0dee9831263ef5902dcfef51fec484583c08d8f20728ba8d82471502a43648"
A4_NOW = 1717000042


def a4_query(hmac_value: str) -> str:
    # Deliberately not in sorted order, with hmac in the middle.
    p = A4_PARAMS
    return (
        f"timestamp={p['timestamp']}&state={p['state']}&hmac={hmac_value}"
        f"&shop={p['shop']}&host={p['host']}&code={p['code']}"
    )


@pytest.mark.parametrize(
    ("query", "expected"), [(A1_QUERY, A1_HMAC), (A2_QUERY, A2_HMAC)], ids=["A1", "A2"]
)
def test_oauth_vectors_verify_and_sign_to_the_documented_hmac(query, expected):
    params = verify_oauth_query(f"{query}&hmac={expected}", [SECRET], now=0, max_age=None)

    assert params["shop"] == "some-shop.myshopify.com"
    assert "hmac" not in params
    assert sign_oauth_query(params, SECRET) == expected


def test_oauth_callback_a4_verifies_with_parameters_in_any_order():
    params = verify_oauth_query(a4_query(A4_HMAC), [SECRET], now=A4_NOW)

    assert params == A4_PARAMS
    assert sign_oauth_query(A4_PARAMS, SECRET) == A4_HMAC


def test_oauth_accepts_an_upper_case_hmac():
    params = verify_oauth_query(a4_query(A4_HMAC.upper()), [SECRET], now=A4_NOW)

    assert params["shop"] == "sms-demo.myshopify.com"


def test_oauth_hmac_made_with_another_secret_is_rejected():
    assert sign_oauth_query(A4_PARAMS, OTHER_SECRET) == A4_NEG_HMAC

    with pytest.raises(SignatureError) as caught:
        verify_oauth_query(a4_query(A4_NEG_HMAC), [SECRET], now=A4_NOW)

    assert caught.value.reason == "bad signature"


def test_oauth_accepts_the_previous_secret_during_rotation():
    params = verify_oauth_query(a4_query(A4_NEG_HMAC), [SECRET, OTHER_SECRET], now=A4_NOW)

    assert params["code"] == A4_PARAMS["code"]


def test_oauth_rejects_a_tampered_parameter():
    tampered = a4_query(A4_HMAC).replace("sms-demo", "sms-evil")

    with pytest.raises(SignatureError, match="bad signature"):
        verify_oauth_query(tampered, [SECRET], now=A4_NOW)


def test_oauth_accepts_percent_encoded_variant_for_values_with_spaces():
    signed = "code=abc&shop=sms-demo.myshopify.com&state=a b&timestamp=1717000042"
    digest = hmac.new(SECRET.encode(), signed.replace(" ", "%20").encode(), hashlib.sha256)
    query = f"{signed.replace(' ', '+')}&hmac={digest.hexdigest()}"

    assert verify_oauth_query(query, [SECRET], now=A4_NOW)["state"] == "a b"


def test_oauth_accepts_decoded_variant_with_escaped_delimiters():
    params = {"code": "abc", "shop": "sms-demo.myshopify.com", "state": "x&y=z%", "timestamp": "1"}
    query = "code=abc&shop=sms-demo.myshopify.com&state=x%26y%3Dz%25&timestamp=1"
    message = b"code=abc&shop=sms-demo.myshopify.com&state=x%26y=z%25&timestamp=1"
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()

    assert sign_oauth_query(params, SECRET) == expected
    assert verify_oauth_query(f"{query}&hmac={expected}", [SECRET], now=1) == params


def test_oauth_rejects_a_duplicate_hmac():
    query = f"{a4_query(A4_HMAC)}&hmac={A4_HMAC}"

    with pytest.raises(SignatureError, match="duplicate parameter"):
        verify_oauth_query(query, [SECRET], now=A4_NOW)


def test_oauth_rejects_a_missing_hmac():
    with pytest.raises(SignatureError, match="missing hmac"):
        verify_oauth_query(A2_QUERY, [SECRET], now=0, max_age=None)


@pytest.mark.parametrize("now", [A4_NOW - 91, A4_NOW + 91, A4_NOW + 86_400])
def test_oauth_rejects_a_stale_timestamp(now):
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify_oauth_query(a4_query(A4_HMAC), [SECRET], now=now, max_age=90)


@pytest.mark.parametrize("now", [A4_NOW - 90, A4_NOW + 90])
def test_oauth_accepts_a_timestamp_exactly_at_the_freshness_limit(now):
    assert verify_oauth_query(a4_query(A4_HMAC), [SECRET], now=now, max_age=90)


def test_oauth_rejects_a_non_integer_timestamp_even_when_signed():
    params = {**A4_PARAMS, "timestamp": "soon"}
    query = "&".join(f"{k}={v}" for k, v in params.items())

    with pytest.raises(SignatureError, match="bad timestamp"):
        verify_oauth_query(f"{query}&hmac={sign_oauth_query(params, SECRET)}", [SECRET], now=0)


def test_oauth_validates_the_shop_only_after_the_hmac():
    params = {**A4_PARAMS, "shop": "evil.com"}
    query = "&".join(f"{k}={v}" for k, v in params.items())

    with pytest.raises(SignatureError, match="bad signature"):
        verify_oauth_query(f"{query}&hmac={A4_HMAC}", [SECRET], now=A4_NOW)
    with pytest.raises(SignatureError, match="bad shop domain"):
        verify_oauth_query(f"{query}&hmac={sign_oauth_query(params, SECRET)}", [SECRET], now=A4_NOW)


def test_verifiers_refuse_a_bare_string_as_the_secret_list():
    with pytest.raises(TypeError):
        verify_oauth_query(a4_query(A4_HMAC), SECRET, now=A4_NOW)


# --- §1.4 shop domains -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "evil.com",
        "shop.myshopify.com.evil.com",
        "-x.myshopify.com",
        "",
        "   ",
        ".myshopify.com",
        "shop.myshopify.com/admin",
        "shop_x.myshopify.com",
        "shopxmyshopify.com",
        "shop.myshopify.com:443",
    ],
)
def test_malformed_shop_domains_are_rejected(value):
    with pytest.raises(SignatureError) as caught:
        normalize_shop_domain(value)

    assert caught.value.reason == "bad shop domain"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://Sms-Demo.myshopify.com/", "sms-demo.myshopify.com"),
        ("  SMS-DEMO.MYSHOPIFY.COM ", "sms-demo.myshopify.com"),
        ("http://sms-demo.myshopify.com", "sms-demo.myshopify.com"),
    ],
)
def test_shop_domains_are_normalized(value, expected):
    assert normalize_shop_domain(value) == expected


def test_dev_configs_can_allow_other_shop_suffixes():
    assert normalize_shop_domain("dev.shop.test", allowed_suffixes=(".shop.test",)) == (
        "dev.shop.test"
    )
    with pytest.raises(SignatureError):
        normalize_shop_domain("devxshop.test", allowed_suffixes=(".shop.test",))


# --- §1.2 host ---------------------------------------------------------------------------------


def test_host_vector_decodes_without_padding():
    assert decode_host("YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc21zLWRlbW8") == (
        "admin.shopify.com/store/sms-demo"
    )


def test_legacy_host_naming_the_myshopify_domain_decodes():
    encoded = base64.b64encode(b"sms-demo.myshopify.com/admin").decode().rstrip("=")

    assert decode_host(encoded) == "sms-demo.myshopify.com/admin"


@pytest.mark.parametrize("raw", [b"evil.com/store/x", b"admin.shopify.com.evil.com/store/x"])
def test_host_pointing_outside_shopify_is_rejected(raw):
    with pytest.raises(SignatureError, match="bad host"):
        decode_host(base64.b64encode(raw).decode().rstrip("="))


@pytest.mark.parametrize("value", ["", "not base64!", "a"])
def test_malformed_host_is_rejected(value):
    with pytest.raises(SignatureError, match="bad host"):
        decode_host(value)


# --- §2 session tokens -------------------------------------------------------------------------

TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJodHRwczovL3Ntcy1kZW1vLm15c2hvcGlmeS5jb20vYWRtaW4iLCJkZXN0IjoiaHR0cHM6Ly9zbXMt"
    "ZGVtby5teXNob3BpZnkuY29tIiwiYXVkIjoiY2xpZW50LWlkLTEyMyIsInN1YiI6IjQyIiwiZXhwIjoxNzE3MDAw"
    "MDYwLCJuYmYiOjE3MTcwMDAwMDAsImlhdCI6MTcxNzAwMDAwMCwianRpIjoiZjg5MTIxMjktMWFmNi00Y2FkLTlj"
    "YTMtNzZiMGY3NjIxMDg3Iiwic2lkIjoiYWFlYTE4MmYyNzMyZDQ0YzIzMDU3YzBmZWE1ODQwMjFhNDQ4NWIyYmQy"
    "NWQzZWI3ZmQzNDkzMTNhZDI0YzY4NSJ9."
    "AVkjRNgGOOdMxEn2SG1ZDnii3bqv6YO4wjIVM0V5e94"
)
API_KEY = "client-id-123"
NBF = 1717000000
EXP = 1717000060


def decode(token=TOKEN, *, secrets=(SECRET,), api_key=API_KEY, now=NBF + 30):
    return decode_session_token(token, list(secrets), api_key=api_key, now=now)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_session_token_vector_decodes_to_its_claims():
    token = decode()

    assert token.shop == "sms-demo.myshopify.com"
    assert token.user_id == "42"
    assert token.session_id == "aaea182f2732d44c23057c0fea584021a4485b2bd25d3eb7fd349313ad24c685"
    assert token.jti == "f8912129-1af6-4cad-9ca3-76b0f7621087"
    assert token.expires_at == EXP
    assert token.raw_claims["iss"] == "https://sms-demo.myshopify.com/admin"


def test_encoding_the_vector_claims_reproduces_the_vector_token():
    assert encode_session_token(decode().raw_claims, SECRET) == TOKEN


@pytest.mark.parametrize("now", [NBF - 10, NBF - 9.999, EXP + 9.999])
def test_session_token_is_accepted_inside_the_leeway(now):
    assert decode(now=now).shop == "sms-demo.myshopify.com"


def test_session_token_is_rejected_just_before_nbf_minus_leeway():
    with pytest.raises(SignatureError, match="not yet valid"):
        decode(now=NBF - 10.001)


def test_session_token_is_rejected_at_exp_plus_leeway():
    with pytest.raises(SignatureError, match="expired"):
        decode(now=EXP + 10)


def test_session_token_signed_with_another_secret_is_rejected():
    with pytest.raises(SignatureError, match="bad signature"):
        decode(secrets=[OTHER_SECRET])


def test_session_token_under_the_previous_secret_is_accepted_during_rotation():
    assert decode(secrets=[OTHER_SECRET, SECRET]).user_id == "42"


def test_session_token_with_tampered_audience_is_rejected():
    header, payload, signature = TOKEN.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = b64url(json.dumps({**claims, "aud": "evil"}, separators=(",", ":")).encode())

    with pytest.raises(SignatureError, match="bad signature"):
        decode(f"{header}.{forged}.{signature}")


def test_session_token_for_another_api_key_is_rejected():
    with pytest.raises(SignatureError, match="wrong audience"):
        decode(api_key="other")


def test_session_token_with_alg_none_is_rejected():
    _, payload, _ = TOKEN.split(".")
    header = b64url(b'{"alg":"none","typ":"JWT"}')

    with pytest.raises(SignatureError, match="bad algorithm"):
        decode(f"{header}.{payload}.")
    with pytest.raises(SignatureError, match="bad algorithm"):
        decode(f"{header}.{payload}.{TOKEN.split('.')[2]}")


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", f"{TOKEN}.x", "é.é.é"])
def test_malformed_session_tokens_are_rejected(token):
    with pytest.raises(SignatureError, match="malformed token"):
        decode(token)


def test_a_session_token_header_nested_too_deeply_is_malformed_not_a_crash():
    # Read before the signature is checked, so anyone can send it (4 kB fits any server's
    # header limit): the JSON decoder's RecursionError must become the guard's 401, not a 500.
    _, payload, signature = TOKEN.split(".")
    header = b64url(b"[" * 3_000)

    with pytest.raises(SignatureError, match="malformed token"):
        decode(f"{header}.{payload}.{signature}")


def test_session_token_without_exp_is_rejected():
    claims = {k: v for k, v in decode().raw_claims.items() if k != "exp"}

    with pytest.raises(SignatureError, match="expired"):
        decode(encode_session_token(claims, SECRET))


def test_session_token_without_nbf_has_no_start_constraint():
    claims = {k: v for k, v in decode().raw_claims.items() if k != "nbf"}

    assert decode(encode_session_token(claims, SECRET), now=0).expires_at == EXP


@pytest.mark.parametrize(
    ("iss", "dest"),
    [
        ("https://other.myshopify.com/admin", "https://sms-demo.myshopify.com"),
        ("https://evil.com/admin", "https://evil.com"),
        ("http://sms-demo.myshopify.com/admin", "http://sms-demo.myshopify.com"),
    ],
)
def test_session_token_with_mismatched_or_foreign_origin_is_rejected(iss, dest):
    claims = {**decode().raw_claims, "iss": iss, "dest": dest}

    with pytest.raises(SignatureError):
        decode(encode_session_token(claims, SECRET))


# --- §3.2 and §4.4 webhooks --------------------------------------------------------------------

W1_BODY = (
    b'{"id":820982911946154508,"email":"jon@example.com","phone":"+16135551212",'
    b'"total_price":"404.95"}'
)
W1_HEADER = "ngUJbV12dtmnXeqJuKRiu7FHFWayfobXqlJKTJqEmzY="
W2_BODY = b'{"shop_id":954889,"shop_domain":"sms-demo.myshopify.com"}'
W2_HEADER = "iH6nqyRlGa11fWkPQ+n/RR/qter1Y35b8VWIuIZ9Xs0="


@pytest.mark.parametrize(
    ("body", "header"), [(W1_BODY, W1_HEADER), (W2_BODY, W2_HEADER)], ids=["W1", "W2"]
)
def test_webhook_vectors_verify_and_sign_to_the_documented_header(body, header):
    verify_webhook(body, header, [SECRET])

    assert sign_webhook(body, SECRET) == header


def test_webhook_with_a_one_byte_tampered_body_fails():
    tampered = W1_BODY.replace(b"404.95", b"404.96")

    with pytest.raises(SignatureError, match="bad signature"):
        verify_webhook(tampered, W1_HEADER, [SECRET])


def test_webhook_signed_with_the_previous_secret_is_accepted_during_rotation():
    verify_webhook(W1_BODY, sign_webhook(W1_BODY, OTHER_SECRET), [SECRET, OTHER_SECRET])

    with pytest.raises(SignatureError):
        verify_webhook(W1_BODY, sign_webhook(W1_BODY, OTHER_SECRET), [SECRET])


def test_shop_redact_vector_verifies_only_with_its_own_header():
    verify_webhook(W2_BODY, W2_HEADER, [SECRET])

    for other in (W1_HEADER, W2_HEADER.lower(), W2_HEADER[:-2] + "1=", "", None, "!!notb64"):
        with pytest.raises(SignatureError):
            verify_webhook(W2_BODY, other, [SECRET])


def test_webhook_with_an_empty_body_fails():
    with pytest.raises(SignatureError, match="empty body"):
        verify_webhook(b"", sign_webhook(b"", SECRET), [SECRET])


def test_webhook_with_a_missing_header_fails():
    with pytest.raises(SignatureError, match="missing hmac"):
        verify_webhook(W2_BODY, None, [SECRET])


# --- §5.2 and §5.3 app proxy -------------------------------------------------------------------

P1_QUERY = (
    "extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1"
    "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555"
)
P1_SIGNATURE = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
P1_NOW = 1317327555

# P3's query is elided in the contract ("logged_in_customer_id=…"), so this is a P3-like one.
P3_PAIRS = [
    ("shop", "sms-demo.myshopify.com"),
    ("logged_in_customer_id", "7012345678"),
    ("path_prefix", "/apps/sms"),
    ("consent", "yes"),
    ("timestamp", "1717000100"),
]
P3_QUERY = (
    "shop=sms-demo.myshopify.com&logged_in_customer_id=7012345678"
    "&path_prefix=%2Fapps%2Fsms&consent=yes&timestamp=1717000100"
)
P3_NOW = 1717000100


def test_app_proxy_p1_vector_verifies():
    request = verify_app_proxy_query(f"{P1_QUERY}&signature={P1_SIGNATURE}", [SECRET], now=P1_NOW)

    assert request == ProxyRequest(
        shop="shop-name.myshopify.com",
        logged_in_customer_id="1",
        path_prefix="/apps/awesome_reviews",
        timestamp=P1_NOW,
        params={
            "extra": "1,2",
            "shop": "shop-name.myshopify.com",
            "logged_in_customer_id": "1",
            "path_prefix": "/apps/awesome_reviews",
            "timestamp": "1317327555",
        },
    )


def test_app_proxy_signing_reproduces_the_p1_signature():
    pairs = [
        ("extra", "1"),
        ("extra", "2"),
        ("shop", "shop-name.myshopify.com"),
        ("logged_in_customer_id", "1"),
        ("path_prefix", "/apps/awesome_reviews"),
        ("timestamp", "1317327555"),
    ]

    assert sign_app_proxy_query(pairs, SECRET) == P1_SIGNATURE


def test_app_proxy_rejects_a_signature_over_ampersand_joined_pairs():
    ampersand_joined = "&".join(f"{k}={v}" for k, v in sorted(P3_PAIRS)).encode()
    wrong = hmac.new(SECRET.encode(), ampersand_joined, hashlib.sha256).hexdigest()
    right = sign_app_proxy_query(P3_PAIRS, SECRET)
    assert wrong != right

    with pytest.raises(SignatureError, match="bad signature"):
        verify_app_proxy_query(f"{P3_QUERY}&signature={wrong}", [SECRET], now=P3_NOW)
    request = verify_app_proxy_query(f"{P3_QUERY}&signature={right}", [SECRET], now=P3_NOW)
    assert request.params["consent"] == "yes"


def test_app_proxy_rejects_the_contract_p3_neg_signature():
    p3_neg = "365049826d35a1e14f56e24c801552181a94a349486e91a0ed62e584b42b7cc6"

    with pytest.raises(SignatureError, match="bad signature"):
        verify_app_proxy_query(f"{P3_QUERY}&signature={p3_neg}", [SECRET], now=P3_NOW)


@pytest.mark.parametrize(
    "extra",
    [
        f"&signature={P1_SIGNATURE}",
        "&shop=other.myshopify.com",
        "&timestamp=1317327555",
        "&hmac=a&hmac=b",
        "&logged_in_customer_id=",  # "1," would read as a logged-in customer
        "&path_prefix=%2Fapps%2Fother",
    ],
)
def test_app_proxy_rejects_a_repeated_security_parameter(extra):
    query = f"{P1_QUERY}&signature={P1_SIGNATURE}{extra}"

    with pytest.raises(SignatureError, match="duplicate parameter"):
        verify_app_proxy_query(query, [SECRET], now=P1_NOW)


def test_app_proxy_rejects_a_stale_timestamp():
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify_app_proxy_query(
            f"{P1_QUERY}&signature={P1_SIGNATURE}", [SECRET], now=P1_NOW + 3600, max_age=90
        )


def test_app_proxy_freshness_can_be_disabled_for_fixed_vectors():
    request = verify_app_proxy_query(
        f"{P1_QUERY}&signature={P1_SIGNATURE}", [SECRET], now=0, max_age=None
    )

    assert request.timestamp == P1_NOW


def test_app_proxy_empty_logged_in_customer_id_becomes_none():
    pairs = [(k, "" if k == "logged_in_customer_id" else v) for k, v in P3_PAIRS]
    query = P3_QUERY.replace("logged_in_customer_id=7012345678", "logged_in_customer_id=")
    signature = sign_app_proxy_query(pairs, SECRET)

    request = verify_app_proxy_query(f"{query}&signature={signature}", [SECRET], now=P3_NOW)

    assert request.logged_in_customer_id is None
    assert request.shop == "sms-demo.myshopify.com"
    assert request.path_prefix == "/apps/sms"


def test_app_proxy_rejects_a_missing_signature():
    with pytest.raises(SignatureError, match="missing signature"):
        verify_app_proxy_query(P1_QUERY, [SECRET], now=P1_NOW)


def test_app_proxy_accepts_the_previous_secret_during_rotation():
    signature = sign_app_proxy_query(P3_PAIRS, OTHER_SECRET)
    query = f"{P3_QUERY}&signature={signature}"

    assert verify_app_proxy_query(query, [SECRET, OTHER_SECRET], now=P3_NOW).shop
    with pytest.raises(SignatureError, match="bad signature"):
        verify_app_proxy_query(query, [SECRET], now=P3_NOW)


def test_app_proxy_rejects_a_signed_but_malformed_shop():
    pairs = [("shop", "evil.com"), *P3_PAIRS[1:]]
    query = P3_QUERY.replace("sms-demo.myshopify.com", "evil.com")
    signature = sign_app_proxy_query(pairs, SECRET)

    with pytest.raises(SignatureError, match="bad shop domain"):
        verify_app_proxy_query(f"{query}&signature={signature}", [SECRET], now=P3_NOW)


def test_app_proxy_plus_in_a_value_is_signed_as_a_space():
    pairs = [*P3_PAIRS, ("phone", " 15550100")]
    signature = sign_app_proxy_query(pairs, SECRET)

    request = verify_app_proxy_query(
        f"{P3_QUERY}&phone=+15550100&signature={signature}", [SECRET], now=P3_NOW
    )

    assert request.params["phone"] == " 15550100"
