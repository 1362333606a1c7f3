"""A seeded, reproducible generator of synthetic customers and their messages across channels.

Why: identity resolution can only be measured against a known truth. Every generated message
carries the index of the person who sent it, so tests and benchmarks can compare the clusters
the platform builds with the true persons (pairwise precision and recall). The data is shaped
like the trouble real brands see: overlapping identifiers across channels, Chinese and Latin
names, +86 and foreign phones written in several ways, e-mail typos, anonymous web visits that
later log in, and devices shared inside households.

Same (customers, seed) -> same messages, byte for byte; message ids are deterministic, so
ingesting twice is idempotent.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from math import comb

import phonenumbers

SURNAMES_ZH = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN_ZH = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
]
PINYIN = ["wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu", "hu"]
FIRST_LATIN = ["Anna", "Lukas", "Marie", "Paul", "Sophie", "Jonas", "Emma", "Louis", "Lea", "Hugo", "Mia", "Noah"]
LAST_LATIN = ["Schmidt", "Muller", "Martin", "Bernard", "Dubois", "Weber", "Fischer", "Moreau", "Laurent", "Wagner"]
DOMAINS_CN = ["qq.com", "163.com", "126.com", "sina.com", "example.cn"]
DOMAINS_EU = ["gmail.com", "web.de", "orange.fr", "example.com", "gmx.de"]
CITIES_CN = [
    ("Shanghai", "1"),
    ("Beijing", "1"),
    ("Shenzhen", "1"),
    ("Guangzhou", "1"),
    ("Chengdu", "2"),
    ("Hangzhou", "2"),
]
CITIES_EU = [("Berlin", "1"), ("Paris", "1"), ("Other", "3")]
CATEGORIES = ["apparel", "beauty", "electronics", "home", "food"]
# (source name, channel) as in cdp.demo.DEMO_SOURCES.
SOURCES = {
    "web": "web-shop",
    "app": "mobile-app",
    "mini_program": "wechat-mini",
    "pos": "store-pos",
    "crm": "crm",
    "call_center": "call-center",
}


@dataclass
class Person:
    index: int
    chinese: bool
    name: str
    email: str | None
    phone: str | None
    external_id: str | None
    loyalty_id: str | None
    openid: str | None
    unionid: str | None
    devices: list[str]
    cookies: list[str]
    city: str
    city_tier: str
    gender: str
    birth_date: str


@dataclass
class Record:
    """One generated message, the source it is sent from, and the true person behind it."""

    person: int
    source: str
    message: dict

    @property
    def timestamp(self) -> str:
        return self.message["timestamp"]


@dataclass
class Dataset:
    customers: int
    seed: int
    people: list[Person] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)


def _phone(rng: random.Random, chinese: bool) -> tuple[str, str]:
    """Return (canonical E.164, as written in a message); always a valid number."""
    while True:
        e164, written = _phone_candidate(rng, chinese)
        if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            return e164, written


def _phone_candidate(rng: random.Random, chinese: bool) -> tuple[str, str]:
    if chinese or rng.random() < 0.3:
        prefix = rng.choice(["135", "136", "137", "138", "139", "150", "151", "158", "159", "186", "187", "188"])
        national = f"{prefix}{rng.randrange(10**8):08d}"
        e164 = f"+86{national}"
        written = rng.choice([national, e164, f"+86 {national[:3]} {national[3:7]} {national[7:]}", f"0086{national}"])
    else:
        kind = rng.choice(["de", "fr", "us"])
        if kind == "de":
            e164 = f"+49151{rng.randrange(10**8):08d}"
        elif kind == "fr":
            e164 = f"+336{rng.randrange(10**8):08d}"
        else:
            e164 = f"+1415{rng.randrange(2, 10)}{rng.randrange(10**6):06d}"
        written = rng.choice([e164, e164[:3] + " " + e164[3:]])
    return e164, written


def _typo(rng: random.Random, email: str) -> str:
    """A plausible typo that is still a valid address (a transposed pair of letters)."""
    local, domain = email.split("@", 1)
    letters = [i for i in range(len(local) - 1) if local[i].isalpha() and local[i + 1].isalpha()]
    if not letters:
        return local + "x@" + domain
    i = rng.choice(letters)
    swapped = local[:i] + local[i + 1] + local[i] + local[i + 2 :]
    return (swapped if swapped != local else local + "x") + "@" + domain


def _person(rng: random.Random, index: int, seed: int, households: list[str]) -> Person:
    chinese = rng.random() < 0.65
    if chinese:
        surname = rng.randrange(len(SURNAMES_ZH))
        name = SURNAMES_ZH[surname] + rng.choice(GIVEN_ZH)
        handle = f"{PINYIN[surname % len(PINYIN)]}{rng.randrange(10**5)}"
        city, tier = rng.choice(CITIES_CN)
        domain = rng.choice(DOMAINS_CN)
    else:
        first, last = rng.choice(FIRST_LATIN), rng.choice(LAST_LATIN)
        name = f"{first} {last}"
        handle = f"{first.lower()}.{last.lower()}{rng.randrange(10**4)}"
        city, tier = rng.choice(CITIES_EU)
        domain = rng.choice(DOMAINS_EU)
    tag = f"{seed}-{index}"
    devices = [f"dev-{tag}-{k}" for k in range(rng.choice([1, 1, 2]))]
    if households and rng.random() < 0.08:
        devices.append(rng.choice(households))  # a shared family tablet or smart TV
    elif rng.random() < 0.05:
        households.append(devices[0])
    phone = _phone(rng, chinese)[0] if rng.random() < 0.8 else None
    return Person(
        index=index,
        chinese=chinese,
        name=name,
        email=f"{handle}.{index}@{domain}" if rng.random() < 0.85 else None,
        phone=phone,
        external_id=f"C{seed % 1000:03d}{index:07d}" if rng.random() < 0.5 else None,
        loyalty_id=f"L{index:08d}" if rng.random() < 0.3 else None,
        openid=f"o{tag}" if chinese and rng.random() < 0.5 else None,
        unionid=f"u{tag}" if chinese and rng.random() < 0.25 else None,
        devices=devices,
        cookies=[f"ck-{tag}-{k}" for k in range(rng.choice([1, 2, 3]))],
        city=city,
        city_tier=tier,
        gender=rng.choice(["female", "male", "female", "male", "other", "unknown"]),
        birth_date=f"{rng.randrange(1950, 2008)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
    )


def _written_phone(rng: random.Random, e164: str) -> str:
    if e164.startswith("+86") and rng.random() < 0.6:
        national = e164[3:]
        return rng.choice([national, f"{national[:3]}-{national[3:7]}-{national[7:]}", f"0086{national}"])
    return e164


def _messages(rng: random.Random, person: Person, seed: int, start: datetime) -> Iterator[Record]:
    t = start + timedelta(minutes=rng.randrange(60 * 24 * 300))
    k = 0

    def emit(channel: str, mtype: str, ids: dict, **extra) -> Record:
        nonlocal t, k
        t += timedelta(minutes=rng.randrange(5, 60 * 24 * 10))
        k += 1
        message = {
            "message_id": f"syn-{seed}-{person.index}-{k}",
            "type": mtype,
            "timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "channel": channel,
            "identifiers": {key: value for key, value in ids.items() if value},
            **extra,
        }
        return Record(person=person.index, source=SOURCES[channel], message=message)

    def email() -> str | None:
        if person.email and rng.random() < 0.03:
            return _typo(rng, person.email)
        return person.email

    def phone() -> str | None:
        return _written_phone(rng, person.phone) if person.phone else None

    cookie = rng.choice(person.cookies)
    # An anonymous visit first, then more browsing; sometimes the visitor logs in.
    yield emit("web", "track", {"cookie_id": cookie}, event=rng.choice(["page_view", "ad_click"]))
    yield emit("web", "track", {"cookie_id": cookie}, event="product_view")
    if person.email and rng.random() < 0.7:
        yield emit("web", "identify", {"cookie_id": cookie, "email": email()}, traits={"city": person.city})
    if person.external_id or person.email or person.phone:
        yield emit(
            "crm",
            "identify",
            {"external_id": person.external_id, "email": email(), "phone": phone()},
            traits={
                "name": person.name,
                "birth_date": person.birth_date,
                "gender": person.gender,
                "city": person.city,
                "city_tier": person.city_tier,
            },
        )
    if person.phone or person.loyalty_id:
        for _ in range(rng.choice([1, 1, 2, 3])):
            yield emit(
                "pos",
                "track",
                {"phone": phone(), "loyalty_id": person.loyalty_id},
                event="purchase",
                properties={
                    "amount": round(rng.uniform(5, 800), 2),
                    "product_category": rng.choice(CATEGORIES),
                    "store_id": f"S{rng.randrange(1, 40):03d}",
                },
            )
    if rng.random() < 0.6:
        ids = {"device_id": rng.choice(person.devices)}
        if rng.random() < 0.7:
            if person.phone and (rng.random() < 0.5 or not person.email):
                ids["phone"] = phone()
            elif person.email:
                ids["email"] = email()
        yield emit("app", "track", ids, event=rng.choice(["app_open", "product_use"]))
    if person.openid:
        yield emit(
            "mini_program",
            "identify",
            {"wechat_openid": person.openid, "wechat_unionid": person.unionid, "phone": phone()},
            traits={"membership_level": rng.choice(["none", "silver", "gold", "platinum"])},
        )
        if person.loyalty_id and rng.random() < 0.5:
            yield emit("mini_program", "track", {"wechat_openid": person.openid}, event="loyalty_join")
    if person.phone and rng.random() < 0.3:
        yield emit(
            "call_center",
            "track",
            {"phone": phone()},
            event="survey_response",
            properties={"score": rng.randrange(0, 11), "csat": rng.randrange(1, 6)},
        )


def generate(*, customers: int, seed: int = 20261123, start: datetime | None = None) -> Dataset:
    """Generate `customers` people and their messages, sorted by time. Deterministic."""
    rng = random.Random(seed)
    start = start or datetime(2025, 1, 1, tzinfo=UTC)
    data = Dataset(customers=customers, seed=seed)
    households: list[str] = []
    for index in range(customers):
        person = _person(rng, index, seed, households)
        data.people.append(person)
        data.records.extend(_messages(rng, person, seed, start))
    data.records.sort(key=lambda r: (r.timestamp, r.message["message_id"]))
    return data


def batches(records: Iterable[Record], size: int = 500) -> Iterator[tuple[str, list[dict]]]:
    """(source name, messages) chunks in time order: ingest them one after another."""
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield from _by_source(chunk)
            chunk = []
    if chunk:
        yield from _by_source(chunk)


def _by_source(chunk: list[Record]) -> Iterator[tuple[str, list[dict]]]:
    groups: dict[str, list[dict]] = {}
    for record in chunk:
        groups.setdefault(record.source, []).append(record.message)
    yield from groups.items()


def pairwise_quality(truth: dict[str, int], predicted: dict[str, str]) -> dict[str, float]:
    """Pairwise precision and recall of predicted clusters against true persons.

    `truth` and `predicted` map record keys to a person / a cluster; only keys in both count.
    Precision: of record pairs put in one profile, the share that are one person. Recall: of
    record pairs of one person, the share put in one profile.
    """
    keys = truth.keys() & predicted.keys()
    both = Counter((predicted[k], truth[k]) for k in keys)
    pred = Counter(predicted[k] for k in keys)
    true = Counter(truth[k] for k in keys)
    tp = sum(comb(n, 2) for n in both.values())
    pred_pairs = sum(comb(n, 2) for n in pred.values())
    true_pairs = sum(comb(n, 2) for n in true.values())
    return {
        "records": len(keys),
        "precision": tp / pred_pairs if pred_pairs else 1.0,
        "recall": tp / true_pairs if true_pairs else 1.0,
        "profiles": len(pred),
        "persons": len(true),
    }


def ingest_records(records: list[Record], *, batch_size: int = 500, progress: bool = False) -> Counter:
    """Send records through the real pipeline (ingest_batch) as the system, per source.

    Sources are created with their demo channels when missing. Returns the result counts.
    """
    from tqdm import tqdm

    from cdp.actor import Actor
    from cdp.demo import DEMO_SOURCES
    from cdp.models import Source
    from cdp.services.ingest import ingest_batch

    channels = dict(DEMO_SOURCES)
    sources = {
        name: Source.objects.get_or_create(name=name, defaults={"channel": channels.get(name, "other")})[0]
        for name in set(SOURCES.values())
    }
    actor = Actor.system("synthetic_ingest")
    totals: Counter = Counter()
    with tqdm(total=len(records), desc="ingest", unit="msg", disable=not progress) as bar:
        for source_name, messages in batches(records, batch_size):
            result = ingest_batch(actor=actor, messages=messages, source=sources[source_name])
            totals.update(result.counts)
            bar.update(len(messages))
    return totals


def resolution_quality(data: Dataset) -> dict[str, float]:
    """Compare stored events' profiles with the generator's truth (pairwise precision/recall)."""
    from cdp.models import Event

    truth = {(r.source, r.message["message_id"]): r.person for r in data.records}
    ids = [r.message["message_id"] for r in data.records]
    predicted = {}
    for start in range(0, len(ids), 5000):
        rows = Event.objects.filter(message_id__in=ids[start : start + 5000]).values_list(
            "source__name", "message_id", "profile_id"
        )
        predicted.update({(s, m): str(p) for s, m, p in rows})
    return pairwise_quality(truth, predicted)


def seed_customers(*, customers: int = 10_000, seed: int = 20261123, progress: bool = False, **_: object) -> str:
    """seed_demo step: ~`customers` synthetic people through the real ingestion pipeline.

    Idempotent: message ids are deterministic, so a second run answers "duplicate" for all.
    """
    if customers <= 0:
        return "no customers asked for"
    data = generate(customers=customers, seed=seed)
    counts = ingest_records(data.records, progress=progress)
    return f"{len(data.records)} messages for {customers} people: " + ", ".join(
        f"{count} {status}" for status, count in sorted(counts.items())
    )
