"""JWT minting and verification: claims, expiry, leeway, algorithms and keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_broadcasting.auth.jwt import decode_token, encode_token, token_for_user, validate_jwt_settings
from django_broadcasting.exceptions import AuthenticationFailed, TokenExpired

SECRET = "test-secret-that-is-long-enough-for-hs256-and-hs512-0123456789-0123456789"
HS = {"JWT_SECRET": SECRET}


def raw_token(claims=None, *, key=SECRET, algorithm="HS256", **overrides):
    now = int(time.time())
    payload = {"sub": "7", "aud": "websocket", "iat": now, "exp": now + 60}
    payload.update(claims or {})
    for name, value in overrides.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return pyjwt.encode(payload, key, algorithm=algorithm)


def pem_pair(private_key):
    private = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def rsa_keys():
    return pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ec_keys():
    return pem_pair(ec.generate_private_key(ec.SECP256R1()))


@override_settings(BROADCASTING=HS)
def test_round_trip_carries_the_documented_claims():
    token = encode_token(
        42, roles=["user", "admin"], permissions=["read_notifications"], name="Ada", teams=["7"]
    )
    identity = decode_token(token)
    assert identity.user_id == "42"
    assert identity.roles == {"user", "admin"}
    assert identity.permissions == {"read_notifications"}
    assert identity.name == "Ada"
    assert identity.claims["teams"] == ["7"]
    assert identity.claims["aud"] == "websocket"
    assert identity.is_authenticated
    claims = pyjwt.decode(token, SECRET, algorithms=["HS256"], audience="websocket")
    assert claims["exp"] - claims["iat"] == 3600
    assert identity.expires_at == claims["exp"]


@override_settings(BROADCASTING={**HS, "JWT_TTL": 120})
def test_ttl_from_settings_and_argument():
    claims = pyjwt.decode(encode_token("u"), SECRET, algorithms=["HS256"], audience="websocket")
    assert claims["exp"] - claims["iat"] == 120
    claims = pyjwt.decode(encode_token("u", ttl=5), SECRET, algorithms=["HS256"], audience="websocket")
    assert claims["exp"] - claims["iat"] == 5


@override_settings(BROADCASTING=HS)
@pytest.mark.parametrize(
    "bad", [{"user_id": None}, {"user_id": ""}, {"user_id": 1, "ttl": 0}, {"user_id": 1, "ttl": "x"}]
)
def test_encode_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        encode_token(**bad)


@override_settings(BROADCASTING=HS)
def test_expired_token_raises_token_expired():
    token = raw_token(exp=int(time.time()) - 5, iat=int(time.time()) - 65)
    with pytest.raises(TokenExpired) as info:
        decode_token(token)
    assert info.value.code == 4011


@override_settings(BROADCASTING={**HS, "JWT_LEEWAY": 30})
def test_leeway_accepts_a_recently_expired_token():
    token = raw_token(exp=int(time.time()) - 5, iat=int(time.time()) - 65)
    assert decode_token(token).user_id == "7"
    with pytest.raises(TokenExpired):
        decode_token(raw_token(exp=int(time.time()) - 60, iat=int(time.time()) - 120))


@override_settings(BROADCASTING=HS)
def test_wrong_secret_is_authentication_failed_not_expired():
    with pytest.raises(AuthenticationFailed, match="signature") as info:
        decode_token(raw_token(key="another-secret-that-is-long-enough-0123456789"))
    assert not isinstance(info.value, TokenExpired)
    assert info.value.code == 4010


@override_settings(BROADCASTING=HS)
def test_audience_must_be_websocket_string_or_list():
    assert decode_token(raw_token(aud=["websocket"])).user_id == "7"
    assert decode_token(raw_token(aud=["api", "websocket"])).user_id == "7"
    with pytest.raises(AuthenticationFailed, match="audience"):
        decode_token(raw_token(aud="api"))
    with pytest.raises(AuthenticationFailed, match="aud"):
        decode_token(raw_token(aud=None))


@override_settings(BROADCASTING={**HS, "JWT_AUDIENCE": "realtime"})
def test_audience_setting():
    assert decode_token(encode_token(1)).claims["aud"] == "realtime"
    with pytest.raises(AuthenticationFailed):
        decode_token(raw_token(aud="websocket"))


@override_settings(BROADCASTING=HS)
@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_required_claims(missing):
    with pytest.raises(AuthenticationFailed, match=missing):
        decode_token(raw_token(**{missing: None}))


@override_settings(BROADCASTING=HS)
def test_integer_subject_is_accepted_as_string_and_bad_subjects_refused():
    assert decode_token(raw_token(sub=12)).user_id == "12"
    for bad in ("", True, ["1"], {"id": 1}):
        with pytest.raises(AuthenticationFailed):
            decode_token(raw_token(sub=bad))


@override_settings(BROADCASTING=HS)
def test_token_issued_in_the_future_is_refused():
    with pytest.raises(AuthenticationFailed):
        decode_token(raw_token(iat=int(time.time()) + 600, exp=int(time.time()) + 1200))


@override_settings(BROADCASTING=HS)
def test_roles_and_permissions_shapes():
    identity = decode_token(raw_token({"roles": "admin user", "permissions": ["a", "b"]}))
    assert identity.roles == {"admin", "user"} and identity.permissions == {"a", "b"}
    assert decode_token(raw_token()).roles == frozenset()
    with pytest.raises(AuthenticationFailed, match="roles"):
        decode_token(raw_token({"roles": [1, 2]}))
    with pytest.raises(AuthenticationFailed, match="permissions"):
        decode_token(raw_token({"permissions": {"a": 1}}))


@override_settings(BROADCASTING=HS)
@pytest.mark.parametrize("bad", [None, "", "abc", "a.b.c", "x" * 9000, 123, b"bytes"])
def test_malformed_tokens(bad):
    with pytest.raises(AuthenticationFailed):
        decode_token(bad)


def _b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_made_token(header, payload, key: bytes = b"") -> str:
    """Build a token without PyJWT, which refuses to make the malicious ones tested here."""
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


@override_settings(BROADCASTING=HS)
@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(alg):
    payload = {"sub": "1", "aud": "websocket", "exp": int(time.time()) + 60}
    with pytest.raises(AuthenticationFailed, match="not allowed"):
        decode_token(hand_made_token({"alg": alg, "typ": "JWT"}, payload))


@pytest.mark.parametrize("algorithms", [["HS256", "none"], ["NONE"], [], ["HS999"]])
def test_unsafe_or_unknown_algorithm_settings_are_improperly_configured(algorithms):
    with override_settings(BROADCASTING={**HS, "JWT_ALGORITHMS": algorithms}):
        with pytest.raises(ImproperlyConfigured, match="JWT_ALGORITHMS"):
            decode_token(raw_token())
        with pytest.raises(ImproperlyConfigured):
            encode_token(1)


@override_settings(BROADCASTING=HS)
def test_algorithm_outside_the_allow_list_is_refused():
    with pytest.raises(AuthenticationFailed, match="HS384"):
        decode_token(raw_token(algorithm="HS384"))


@override_settings(BROADCASTING={"JWT_ALGORITHMS": ["HS256", "HS512"], **HS})
def test_allow_list_with_several_algorithms_mints_with_the_first():
    assert pyjwt.get_unverified_header(encode_token(1))["alg"] == "HS256"
    assert decode_token(raw_token(algorithm="HS512")).user_id == "7"


@override_settings(BROADCASTING={}, SECRET_KEY="django-secret-key-used-as-fallback-0123456789")
def test_secret_key_fallback_when_jwt_secret_unset(monkeypatch):
    monkeypatch.delenv("JWT_SECRET", raising=False)
    from django_broadcasting.conf import reload_broadcasting_settings

    reload_broadcasting_settings()
    token = encode_token(3)
    pyjwt.decode(
        token, "django-secret-key-used-as-fallback-0123456789", algorithms=["HS256"], audience="websocket"
    )
    assert decode_token(token).user_id == "3"


def test_jwt_secret_environment_variable(monkeypatch):
    from django_broadcasting.conf import reload_broadcasting_settings

    monkeypatch.setenv("JWT_SECRET", "from-the-environment-0123456789-0123456789")
    with override_settings(BROADCASTING={}):
        reload_broadcasting_settings()
        decode_token(raw_token(key="from-the-environment-0123456789-0123456789"))
    reload_broadcasting_settings()


def test_rs256_with_generated_keys(rsa_keys, tmp_path):
    private, public = rsa_keys
    with override_settings(
        BROADCASTING={"JWT_ALGORITHMS": ["RS256"], "JWT_PUBLIC_KEY": public, "JWT_PRIVATE_KEY": private}
    ):
        token = encode_token(9, roles=["admin"])
        assert pyjwt.get_unverified_header(token)["alg"] == "RS256"
        assert decode_token(token).roles == {"admin"}
        # A token signed by someone else's key is refused.
        other, _ = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        with pytest.raises(AuthenticationFailed):
            decode_token(raw_token(key=other, algorithm="RS256"))
        # So is an HS256 token, even signed with the public key as the HMAC secret (algorithm confusion).
        with pytest.raises(AuthenticationFailed):
            decode_token(raw_token(key=SECRET, algorithm="HS256"))

    key_file = tmp_path / "public.pem"
    key_file.write_text(public)
    with override_settings(BROADCASTING={"JWT_ALGORITHMS": ["RS256"], "JWT_PUBLIC_KEY": str(key_file)}):
        assert decode_token(raw_token(key=private, algorithm="RS256")).user_id == "7"
        with pytest.raises(ImproperlyConfigured, match="JWT_PRIVATE_KEY"):
            encode_token(1)

    escaped = public.replace("\n", "\\n")  # as a one-line environment variable carries it
    with override_settings(BROADCASTING={"JWT_ALGORITHMS": ["RS256"], "JWT_PUBLIC_KEY": escaped}):
        assert decode_token(raw_token(key=private, algorithm="RS256")).user_id == "7"


def test_mixed_allow_list_picks_the_key_by_algorithm_family(rsa_keys):
    private, public = rsa_keys
    with override_settings(
        BROADCASTING={**HS, "JWT_ALGORITHMS": ["RS256", "HS256"], "JWT_PUBLIC_KEY": public}
    ):
        assert decode_token(raw_token(key=private, algorithm="RS256")).user_id == "7"
        assert decode_token(raw_token(key=SECRET, algorithm="HS256")).user_id == "7"
        # The classic confusion attack: HS256 keyed with the RSA public key.
        now = int(time.time())
        forged = hand_made_token(
            {"alg": "HS256", "typ": "JWT"}, {"sub": "1", "aud": "websocket", "exp": now + 60}, public.encode()
        )
        with pytest.raises(AuthenticationFailed, match="signature"):
            decode_token(forged)
        # (the hand-made token is otherwise valid: signed with the real secret it passes)
        genuine = hand_made_token(
            {"alg": "HS256", "typ": "JWT"}, {"sub": "1", "aud": "websocket", "exp": now + 60}, SECRET.encode()
        )
        assert decode_token(genuine).user_id == "1"


def test_es256(ec_keys):
    private, public = ec_keys
    with override_settings(
        BROADCASTING={"JWT_ALGORITHMS": ["ES256"], "JWT_PUBLIC_KEY": public, "JWT_PRIVATE_KEY": private}
    ):
        assert decode_token(encode_token("e")).user_id == "e"


def test_asymmetric_algorithm_without_public_key_is_improperly_configured():
    with override_settings(BROADCASTING={"JWT_ALGORITHMS": ["RS256"]}):
        with pytest.raises(ImproperlyConfigured, match="JWT_PUBLIC_KEY"):
            validate_jwt_settings()
    with override_settings(BROADCASTING={"JWT_ALGORITHMS": ["RS256"], "JWT_PUBLIC_KEY": "/no/such/file.pem"}):
        with pytest.raises(ImproperlyConfigured, match="readable"):
            validate_jwt_settings()


@pytest.mark.django_db
@override_settings(BROADCASTING=HS)
def test_token_for_user():
    superuser = User.objects.create_superuser("root", first_name="Grace", last_name="Hopper")
    superuser.groups.add(Group.objects.create(name="ops"))
    identity = decode_token(token_for_user(superuser, ttl=30))
    assert identity.user_id == str(superuser.pk)
    assert identity.roles == {"admin", "staff", "superuser", "ops"}
    assert identity.name == "Grace Hopper"
    plain = User.objects.create_user("bob")
    identity = decode_token(token_for_user(plain, teams=["3"]))
    assert identity.roles == frozenset() and identity.name == "bob" and identity.claims["teams"] == ["3"]
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(ValueError):
        token_for_user(AnonymousUser())


def test_unparseable_pem_is_improperly_configured():
    bad = "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----"
    with override_settings(BROADCASTING={"JWT_ALGORITHMS": ["RS256"], "JWT_PUBLIC_KEY": bad}):
        with pytest.raises(ImproperlyConfigured, match="cannot be loaded"):
            validate_jwt_settings()
