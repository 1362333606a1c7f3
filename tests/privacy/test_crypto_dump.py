"""A dump of the whole database reveals none of the personal data stored through the vault.

Generated people (Latin and Chinese names, e-mails, phones, addresses) are stored the way the
platform stores them: traits sealed in Profile.vault, identifiers sealed in
Event.sealed_properties plus their blind indexes, one person crypto-shredded (audited). Then
the whole test database is dumped (pg_dump on PostgreSQL, iterdump on SQLite) and searched for
every value in any case and in the encodings a value could leak in: UTF-8, JSON \\u escapes,
percent-encoding, hex, base64 at every byte alignment, GB18030 and UTF-16.

Positive controls keep the test honest: a canary person stored in plain form (JSON attributes
and a raw binary column) must be found by the same search, and the sealed blobs and blind
indexes must be in the dump, so an empty or unreadable dump cannot pass.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.parse

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.actor import Actor
from cdp.models import Event
from privacy.crypto import blind_index, properties_seal, traits_seal
from privacy.crypto.services import subject_shred
from tests.factories import EventFactory, ProfileFactory
from tests.privacy.test_crypto_vault import persons


def dump_database() -> bytes:
    """The whole test database as SQL text: pg_dump on PostgreSQL, iterdump on SQLite."""
    if connection.vendor == "postgresql":
        pg_dump = shutil.which("pg_dump")
        assert pg_dump, "pg_dump is needed for the dump test on PostgreSQL"
        conf = connection.settings_dict
        env = dict(os.environ)
        if conf.get("PASSWORD"):
            env["PGPASSWORD"] = conf["PASSWORD"]
        args = [pg_dump, "--no-owner", "--dbname", conf["NAME"]]
        if conf.get("HOST"):
            args += ["--host", conf["HOST"]]
        if conf.get("PORT"):
            args += ["--port", str(conf["PORT"])]
        if conf.get("USER"):
            args += ["--username", conf["USER"]]
        return subprocess.run(args, env=env, check=True, capture_output=True, timeout=120).stdout
    connection.ensure_connection()
    return "\n".join(connection.connection.iterdump()).encode("utf-8")


def _base64_alignments(raw: bytes) -> list[str]:
    """The base64 characters that depend only on `raw`, for each of the 3 byte alignments."""
    found = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw + b"\0\0").decode()
        start = -(-shift * 8 // 6)  # characters still touched by the prefix bits
        end = (shift + len(raw)) * 8 // 6  # characters wholly inside the value
        if end - start >= 6:
            found.append(encoded[start:end])
    return found


def revealed(value: str, dump: bytes, dump_text: str, dump_folded: str) -> list[str]:
    """Names of the encodings in which `value` occurs in the dump (empty: it does not)."""
    hits = []
    raw = value.encode("utf-8")
    folded_forms = {
        "text (any case)": value.casefold(),
        "JSON \\u escaped": json.dumps(value)[1:-1].casefold(),
        "percent-encoded": urllib.parse.quote(value).casefold(),
        "hex of UTF-8": raw.hex(),
        "hex of GB18030": value.encode("gb18030").hex(),
        "hex of UTF-16LE": value.encode("utf-16-le").hex(),
        "hex of UTF-16BE": value.encode("utf-16-be").hex(),
        "upper-case text as hex": value.upper().encode().hex(),
    }
    for name, form in folded_forms.items():
        if form and form in dump_folded:
            hits.append(name)
    for i, form in enumerate(_base64_alignments(raw) + _base64_alignments(value.upper().encode())):
        if form in dump_text:
            hits.append(f"base64 (alignment {i % 3})")
    for name, encoded in (("GB18030", value.encode("gb18030")), ("UTF-16", value.encode("utf-16-le"))):
        if encoded != raw and encoded in dump:
            hits.append(name)
    return hits


def _tokens(person: dict[str, str]) -> list[str]:
    values = list(person.values())
    values += [word for v in person.values() for word in v.replace(",", " ").split() if len(word) >= 6]
    return values


class Dump(bytes):
    def __repr__(self) -> str:  # keep hypothesis' report of a failing example readable
        return f"<database dump of {len(self)} bytes>"


@pytest.fixture
def baseline_dump(transactional_db) -> Dump:
    return Dump(dump_database())


# Canary values come from an alphabet and format no generated person uses, so no person's
# value can be a substring of a canary (which is stored in plain form on purpose).
canaries = st.fixed_dictionaries(
    {
        "name_zh": st.text("甲乙丙丁戊己庚辛壬癸", min_size=4, max_size=6),
        "address": st.builds(lambda n: f"金丝雀市试验路{n}号", st.integers(1, 9999)),
        "email": st.builds(lambda n: f"canary.{n}@canary.invalid", st.integers(1, 10**6)),
    }
)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=st.lists(persons, min_size=3, max_size=10), canary=canaries)
def test_database_dump_reveals_no_personal_data(baseline_dump, people, canary):
    actor = Actor.system("dump-test")
    sealed_blobs, indexes = [], []
    for i, person in enumerate(people):
        profile = ProfileFactory(attributes={"city_tier": "1"})
        profile.vault = traits_seal(profile_id=profile.id, traits={"name": person["name_latin"], **person})
        profile.save(update_fields=["vault"])
        bis = {
            "email_bi": blind_index(id_type="email", value=person["email"]),
            "phone_bi": blind_index(id_type="phone", value=person["phone"]),
        }
        event = EventFactory(
            profile=profile,
            type=Event.Type.IDENTIFY,
            name="identify",
            properties=bis,
            sealed_properties=properties_seal(
                profile_id=profile.id, properties={"email": person["email"], "phone": person["phone"]}
            ),
        )
        sealed_blobs += [bytes(profile.vault), bytes(event.sealed_properties)]
        indexes += bis.values()
        if i == 0:
            subject_shred(actor=actor, subject_id=profile.id)

    # The canary is stored in plain form on purpose: the search must find it.
    EventFactory(
        properties={"note": canary["name_zh"], "where": canary["address"]},
        sealed_properties=canary["email"].encode("utf-8"),
    )

    dump = dump_database()
    dump_text = dump.decode("utf-8", "replace")
    dump_folded = dump_text.casefold()
    base_text = baseline_dump.decode("utf-8", "replace").casefold()

    # Positive controls: the data is in the dump, and a plain value would be caught.
    for blob in sealed_blobs:
        assert blob.hex() in dump_folded
    for index in indexes:
        assert index in dump_text
    for value in (canary["name_zh"], canary["address"], canary["email"]):
        assert revealed(value, dump, dump_text, dump_folded), "the search must find a plainly stored value"

    leaks = {}
    for person in people:
        for value in _tokens(person):
            if value.casefold() in base_text:
                continue  # present before anything was stored (e.g. a word in the schema)
            hits = revealed(value, dump, dump_text, dump_folded)
            if hits:
                leaks[value] = hits
    assert not leaks, f"personal data found in the database dump: {leaks}"
