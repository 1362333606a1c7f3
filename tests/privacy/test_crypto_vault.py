"""Sealing, opening, tampering, the data-key cache, blind indexes and the traits API."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.models import Event, Profile
from privacy.crypto import (
    CryptoError,
    DecryptionError,
    KeyShreddedError,
    UnknownKeyVersion,
    blind_index,
    clear_data_key_cache,
    keyed_hash,
    open_sealed,
    properties_open,
    properties_seal,
    seal,
    shred_subject,
    traits_open,
    traits_seal,
    traits_update,
)
from privacy.crypto.keyring import LocalKms, get_kms
from privacy.crypto.models import SubjectKey
from tests.factories import EventFactory, ProfileFactory

# --- strategies of personal data (also used by the database dump test) -----------------------

SURNAMES_ZH = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
GIVEN_ZH = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬子涵浩宇欣怡梓轩"
CITIES_ZH = ["上海市浦东新区", "北京市朝阳区", "深圳市南山区", "广州市天河区", "成都市武侯区", "杭州市西湖区"]
STREETS_ZH = ["世纪大道", "建国路", "科技园南路", "天河路", "人民南路", "文三路"]
SYLLABLES = ["an", "bel", "cor", "dra", "eli", "fen", "gus", "hal", "ivo", "jor", "kat", "lou", "mar", "nel", "oz"]

latin_names = st.builds(
    lambda a, b, c, d: f"{(a + b).capitalize()} {(c + d).capitalize()}son",
    *(st.sampled_from(SYLLABLES) for _ in range(4)),
)
chinese_names = st.builds(
    lambda s, g: s + "".join(g),
    st.sampled_from(SURNAMES_ZH),
    st.lists(st.sampled_from(GIVEN_ZH), min_size=2, max_size=3),
)
emails = st.builds(
    lambda user, n, domain: f"{user}.{n}@{domain}",
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=5, max_size=12),
    st.integers(100, 99999),
    st.sampled_from(["example.com", "mail.example.cn", "163.example.com", "qq.example.com"]),
)
phones = st.one_of(
    st.builds(lambda p, n: f"+86{p}{n:08d}", st.sampled_from(["138", "139", "186", "152"]), st.integers(0, 99999999)),
    st.builds(lambda n: f"+4930{n:08d}", st.integers(10000000, 99999999)),
)
addresses = st.one_of(
    st.builds(
        lambda city, street, no, room: f"{city}{street}{no}号{room}室",
        st.sampled_from(CITIES_ZH),
        st.sampled_from(STREETS_ZH),
        st.integers(1, 999),
        st.integers(101, 3999),
    ),
    st.builds(
        lambda no, a, b, plz: f"{(a + b).capitalize()}straße {no}, {plz} Berlin",
        st.integers(1, 250),
        st.sampled_from(SYLLABLES),
        st.sampled_from(SYLLABLES),
        st.integers(10115, 14199),
    ),
)
persons = st.fixed_dictionaries(
    {
        "name_latin": latin_names,
        "name_zh": chinese_names,
        "email": emails,
        "phone": phones,
        "address": addresses,
    }
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | chinese_names
    | addresses,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)

DB_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


# --- round trip ----------------------------------------------------------------------------


@pytest.mark.django_db
@DB_SETTINGS
@given(value=json_values, field=st.sampled_from(["traits", "properties", "email", "名字"]))
def test_every_json_value_round_trips(value, field):
    subject = uuid.uuid4()
    blob = seal(subject_id=subject, field=field, value=value)
    assert open_sealed(subject_id=subject, field=field, blob=blob) == value
    # Also from the wrapped key in the database, not only from the cache.
    clear_data_key_cache()
    assert open_sealed(subject_id=str(subject), field=field, blob=memoryview(blob)) == value


@pytest.mark.django_db
@DB_SETTINGS
@given(person=persons)
def test_personal_data_round_trips_through_the_profile_vault(person):
    profile = ProfileFactory()
    profile.vault = traits_seal(profile_id=profile.id, traits=person)
    profile.save()
    clear_data_key_cache()
    stored = Profile.objects.get(pk=profile.pk)
    assert traits_open(profile_id=stored.id, blob=stored.vault) == person
    for value in person.values():
        assert value.encode() not in bytes(stored.vault)


@pytest.mark.django_db
def test_sealing_is_randomised_and_hides_the_length_of_nothing_else():
    subject = uuid.uuid4()
    a = seal(subject_id=subject, field="name", value="王小明")
    b = seal(subject_id=subject, field="name", value="王小明")
    assert a != b  # fresh nonce each time: equal values are not linkable
    assert a[:4] == b[:4] == bytes([1, 1, 0, 1])  # header: format 1, AES-256-GCM, data key v1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "error"),
    [(float("nan"), ValueError), (float("inf"), ValueError), (dt.date(2020, 1, 1), TypeError), (b"raw", TypeError)],
)
def test_values_that_are_not_json_are_refused_without_minting_a_key(value, error):
    subject = uuid.uuid4()
    with pytest.raises(error):
        seal(subject_id=subject, field="x", value=value)
    assert not SubjectKey.objects.filter(subject_id=subject).exists()


@pytest.mark.django_db
def test_data_keys_are_stored_only_wrapped():
    subject = uuid.uuid4()
    seal(subject_id=subject, field="x", value=1)
    row = SubjectKey.objects.get(subject_id=subject)
    assert row.kek_version == get_kms().active_version
    assert len(bytes(row.wrapped)) == 12 + 32 + 16  # nonce + AES-256 key + tag: wrapped, not raw


# --- tampering: each a clear error, never garbage ---------------------------------------------


def _flip(blob: bytes, index: int, bit: int = 0) -> bytes:
    data = bytearray(blob)
    data[index] ^= 1 << bit
    return bytes(data)


TAMPERS = [
    ("bit flipped in the ciphertext", lambda b: _flip(b, 20), DecryptionError, "does not open"),
    ("bit flipped in the tag", lambda b: _flip(b, len(b) - 1, 7), DecryptionError, "does not open"),
    ("bit flipped in the nonce", lambda b: _flip(b, 6, 3), DecryptionError, "does not open"),
    ("unknown format byte", lambda b: bytes([9]) + b[1:], DecryptionError, "unknown ciphertext format"),
    ("unknown algorithm byte", lambda b: b[:1] + bytes([7]) + b[2:], DecryptionError, "unknown ciphertext format"),
    ("header names another data key", lambda b: b[:2] + (2).to_bytes(2, "big") + b[4:], UnknownKeyVersion, "version"),
    ("truncated by one byte", lambda b: b[:-1], DecryptionError, "does not open"),
    ("truncated below the minimum", lambda b: b[:20], DecryptionError, "truncated"),
    ("empty", lambda b: b"", DecryptionError, "truncated"),
    ("extra byte appended", lambda b: b + b"\x00", DecryptionError, "does not open"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("case", "tamper", "error", "message"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampered_ciphertext_is_a_clear_error(case, tamper, error, message):
    subject = uuid.uuid4()
    secret = "王小明 Shanghai 13800138000"
    blob = seal(subject_id=subject, field="name", value=secret)
    with pytest.raises(error, match=message) as caught:
        open_sealed(subject_id=subject, field="name", blob=tamper(blob))
    assert secret not in str(caught.value) and secret not in repr(caught.value)


@pytest.mark.django_db
@DB_SETTINGS
@given(data=st.data())
def test_any_single_bit_flip_anywhere_is_refused(data):
    subject = uuid.uuid4()
    blob = seal(subject_id=subject, field="traits", value={"name": "欧阳子涵", "email": "z@example.com"})
    position = data.draw(st.integers(0, len(blob) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(CryptoError):
        open_sealed(subject_id=subject, field="traits", blob=_flip(blob, position, bit))


@pytest.mark.django_db
def test_ciphertext_moved_to_another_field_or_subject_does_not_open():
    alice, bob, stranger = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    blob = seal(subject_id=alice, field="email", value="alice@example.com")
    seal(subject_id=bob, field="email", value="bob@example.com")
    with pytest.raises(DecryptionError, match="tampered, moved or foreign"):
        open_sealed(subject_id=alice, field="phone", blob=blob)
    with pytest.raises(DecryptionError, match="tampered, moved or foreign"):
        open_sealed(subject_id=bob, field="email", blob=blob)
    with pytest.raises(DecryptionError, match="no data key"):
        open_sealed(subject_id=stranger, field="email", blob=blob)
    # A wrapped data key moved to another subject does not open either.
    SubjectKey.objects.filter(subject_id=bob).update(wrapped=SubjectKey.objects.get(subject_id=alice).wrapped)
    clear_data_key_cache()
    with pytest.raises(DecryptionError, match="wrapped key does not open"):
        open_sealed(subject_id=bob, field="email", blob=blob)


@pytest.mark.django_db
def test_wrong_kek_is_a_clear_error(kek_ring):
    subject = uuid.uuid4()
    blob = seal(subject_id=subject, field="name", value="Anna")
    version = get_kms().active_version
    kek_ring({version: os.urandom(32)}, active=version)  # same version number, other key
    with pytest.raises(DecryptionError, match="wrapped key does not open under its KEK"):
        open_sealed(subject_id=subject, field="name", blob=blob)


@pytest.mark.django_db
def test_retired_kek_is_a_clear_error(kek_ring):
    k1, k2 = os.urandom(32), os.urandom(32)
    kek_ring({1: k1}, active=1)
    subject = uuid.uuid4()
    blob = seal(subject_id=subject, field="name", value="Anna")
    kek_ring({2: k2}, active=2)  # v1 retired before its keys were re-wrapped
    with pytest.raises(UnknownKeyVersion, match="KEK version 1 is not in the key ring"):
        open_sealed(subject_id=subject, field="name", blob=blob)
    kek_ring({1: k1, 2: k2}, active=2)
    assert open_sealed(subject_id=subject, field="name", blob=blob) == "Anna"


@pytest.mark.django_db
def test_shredded_subject_is_a_clear_error_and_gets_no_new_key():
    subject = uuid.uuid4()
    blob = seal(subject_id=subject, field="name", value="Anna")
    assert shred_subject(subject_id=subject) is True
    with pytest.raises(KeyShreddedError):
        open_sealed(subject_id=subject, field="name", blob=blob)
    with pytest.raises(KeyShreddedError):
        seal(subject_id=subject, field="name", value="Anna again")
    assert shred_subject(subject_id=subject) is False  # idempotent


def test_every_error_is_a_crypto_error():
    for error in (DecryptionError, KeyShreddedError, UnknownKeyVersion):
        assert issubclass(error, CryptoError)


# --- the per-request cache of unwrapped data keys -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_key_minted_in_a_rolled_back_savepoint_is_not_reused():
    """A batch that rolls back one message must not leave the next sealing under a lost key."""
    subject = uuid.uuid4()
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            seal(subject_id=subject, field="traits", value={"name": "first try"})
            raise RuntimeError("this message failed")
        blob = seal(subject_id=subject, field="traits", value={"name": "王小明"})
    clear_data_key_cache()
    assert open_sealed(subject_id=subject, field="traits", blob=blob) == {"name": "王小明"}


@pytest.mark.django_db(transaction=True)
def test_key_minted_in_a_rolled_back_transaction_is_not_reused():
    subject = uuid.uuid4()
    with pytest.raises(RuntimeError), transaction.atomic():
        seal(subject_id=subject, field="traits", value={"name": "lost"})
        raise RuntimeError("the request failed")
    blob = seal(subject_id=subject, field="traits", value={"name": "kept"})
    clear_data_key_cache()
    assert open_sealed(subject_id=subject, field="traits", blob=blob) == {"name": "kept"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_seals_of_one_subject_share_one_key():
    """Two workers sealing for a new subject at once: the loser of the insert race uses the
    winner's key, so both values open."""
    import threading

    from django.db import connection

    subject, barrier, blobs, errors = uuid.uuid4(), threading.Barrier(4), {}, []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                blobs[n] = seal(subject_id=subject, field="traits", value={"n": n})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    clear_data_key_cache()
    assert SubjectKey.objects.filter(subject_id=subject).count() == 1
    for n, blob in blobs.items():
        assert open_sealed(subject_id=subject, field="traits", blob=blob) == {"n": n}


@pytest.mark.django_db(transaction=True)
def test_key_minted_and_shredded_in_one_transaction_is_not_cached_on_commit():
    subject = uuid.uuid4()
    with transaction.atomic():
        blob = seal(subject_id=subject, field="traits", value={"name": "short-lived"})
        shred_subject(subject_id=subject)
    with pytest.raises(KeyShreddedError):
        open_sealed(subject_id=subject, field="traits", blob=blob)
    with pytest.raises(KeyShreddedError):
        seal(subject_id=subject, field="traits", value={"name": "resurrected?"})


@pytest.mark.django_db(transaction=True)
def test_committed_keys_are_cached_within_the_bound(settings, django_assert_num_queries):
    settings.CDP_DATA_KEY_CACHE_SIZE = 2
    clear_data_key_cache()
    subjects = [uuid.uuid4() for _ in range(3)]
    with transaction.atomic():
        blobs = [seal(subject_id=s, field="x", value=i) for i, s in enumerate(subjects)]
    with django_assert_num_queries(0):  # the two most recent keys: no query, no unwrap
        assert open_sealed(subject_id=subjects[2], field="x", blob=blobs[2]) == 2
        assert open_sealed(subject_id=subjects[1], field="x", blob=blobs[1]) == 1
    with django_assert_num_queries(1):  # the first was evicted by the bound
        assert open_sealed(subject_id=subjects[0], field="x", blob=blobs[0]) == 0
    clear_data_key_cache()
    with django_assert_num_queries(1):
        assert open_sealed(subject_id=subjects[2], field="x", blob=blobs[2]) == 2


# --- blind indexes and keyed hashes --------------------------------------------------------------


def test_blind_index_is_deterministic_and_separated_per_type(settings):
    a = blind_index(id_type="email", value="anna@example.com")
    assert a == blind_index(id_type="email", value="anna@example.com")
    assert len(a) == 64 and int(a, 16) >= 0
    assert a != blind_index(id_type="external_id", value="anna@example.com")
    assert a != keyed_hash(domain="email", value="anna@example.com")
    import dataclasses

    settings.KEYS = dataclasses.replace(settings.KEYS, blind_index_pepper=os.urandom(32))
    assert a != blind_index(id_type="email", value="anna@example.com")  # useless without the pepper


@pytest.mark.parametrize(
    ("id_type", "value"), [("email", ""), ("email", "   "), ("", "x"), ("email|v2", "x"), ("phone", None)]
)
def test_blind_index_refuses_empty_values_and_ambiguous_types(id_type, value):
    with pytest.raises(ValueError):
        blind_index(id_type=id_type, value=value)


def test_keyed_hash_refuses_an_ambiguous_domain():
    with pytest.raises(ValueError):
        keyed_hash(domain="a|b", value="c")
    assert keyed_hash(domain="client_addr", value="") != keyed_hash(domain="user_agent", value="")


# --- the service API for encrypted JSON traits -------------------------------------------------


@pytest.mark.django_db
def test_traits_api_follows_the_storage_contract():
    profile = ProfileFactory()
    assert traits_open(profile_id=profile.id, blob=None) == {}
    profile.vault = traits_seal(
        profile_id=profile.id, traits={"name": "李娜", "birth_date": dt.date(2012, 5, 1), "tags": ("a", "b")}
    )
    profile.save()
    profile.refresh_from_db()
    assert traits_open(profile_id=profile.id, blob=profile.vault) == {
        "name": "李娜",
        "birth_date": "2012-05-01",
        "tags": ["a", "b"],
    }
    # The storage contract: field "traits" under the profile id.
    assert open_sealed(subject_id=profile.id, field="traits", blob=profile.vault)["name"] == "李娜"
    updated = traits_update(profile_id=profile.id, blob=profile.vault, changes={"city": "上海"}, remove=["tags"])
    assert traits_open(profile_id=profile.id, blob=updated) == {
        "name": "李娜",
        "birth_date": "2012-05-01",
        "city": "上海",
    }


@pytest.mark.django_db
def test_event_properties_are_sealed_for_the_profile_and_cannot_pass_as_traits():
    event = EventFactory()
    event.sealed_properties = properties_seal(
        profile_id=event.profile_id, properties={"address": "北京市朝阳区建国路1号"}
    )
    event.save()
    stored = Event.objects.get(pk=event.pk)
    assert properties_open(profile_id=stored.profile_id, blob=stored.sealed_properties) == {
        "address": "北京市朝阳区建国路1号"
    }
    with pytest.raises(DecryptionError):
        traits_open(profile_id=stored.profile_id, blob=stored.sealed_properties)


@pytest.mark.django_db
def test_traits_api_refuses_what_is_not_a_dict():
    subject = uuid.uuid4()
    with pytest.raises(TypeError):
        traits_seal(profile_id=subject, traits=["not", "a", "dict"])
    with pytest.raises(TypeError):
        traits_seal(profile_id=subject, traits={1: "int key"})
    with pytest.raises(DecryptionError, match="not a JSON object"):
        traits_open(profile_id=subject, blob=seal(subject_id=subject, field="traits", value=[1, 2]))


# --- how a cloud KMS or HSM plugs in ---------------------------------------------------------


class MeteredKms(LocalKms):
    """A stand-in for a cloud KMS adapter: same protocol, counts the calls a KMS would bill."""

    calls = 0

    def wrap(self, plaintext, *, aad, version=None):
        MeteredKms.calls += 1
        return super().wrap(plaintext, aad=aad, version=version)

    def unwrap(self, blob, *, version, aad):
        MeteredKms.calls += 1
        return super().unwrap(blob, version=version, aad=aad)


def metered_kms(keys) -> MeteredKms:
    return MeteredKms(keys.keks, keys.kek_active)


@pytest.mark.django_db
def test_a_kms_plugs_in_through_the_factory_setting(settings):
    settings.CDP_KMS_FACTORY = "tests.privacy.test_crypto_vault.metered_kms"
    from privacy.crypto.keyring import reset_kms

    reset_kms()
    try:
        assert isinstance(get_kms(), MeteredKms)
        before = MeteredKms.calls
        subject = uuid.uuid4()
        blob = seal(subject_id=subject, field="x", value="y")
        clear_data_key_cache()
        assert open_sealed(subject_id=subject, field="x", blob=blob) == "y"
        assert MeteredKms.calls - before == 2  # one wrap when the key was made, one unwrap to open
    finally:
        reset_kms()
