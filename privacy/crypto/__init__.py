"""Envelope encryption of personal data, blind indexes and crypto-shredding.

Public API (import from here):
- seal(subject_id=, field=, value=) -> bytes and open_sealed(subject_id=, field=, blob=) -> value
- traits_seal / traits_open / traits_update (Profile.vault, field "traits") and
  properties_seal / properties_open (Event.sealed_properties, field "properties"): the
  service API for encrypted JSON that the rest of the code uses without touching keys
- blind_index(id_type=, value=) -> str (hex HMAC-SHA256 under the pepper, per-type domain)
- keyed_hash(domain=, value=) -> str (for evidence such as IP address and user agent)
- shred_subject(subject_id=) destroys a subject's data key; nothing of theirs opens afterwards
- data_key, clear_data_key_cache (per request/task cache of unwrapped data keys)
- errors: CryptoError, DecryptionError, KeyShreddedError, UnknownKeyVersion

Audited services (role checks, audit entries) live in privacy.crypto.services:
subject_shred(*, actor, subject_id), kek_rotate(*, actor, ...), and the selector
crypto_status(). They are not imported here so that privacy.audit may import this package.
"""

from privacy.crypto.blind import blind_index, keyed_hash
from privacy.crypto.datakeys import clear_data_key_cache, data_key, shred_subject
from privacy.crypto.errors import CryptoError, DecryptionError, KeyShreddedError, UnknownKeyVersion
from privacy.crypto.traits import properties_open, properties_seal, traits_open, traits_seal, traits_update
from privacy.crypto.vault import open_sealed, seal

__all__ = [
    "CryptoError",
    "DecryptionError",
    "KeyShreddedError",
    "UnknownKeyVersion",
    "blind_index",
    "clear_data_key_cache",
    "data_key",
    "keyed_hash",
    "open_sealed",
    "properties_open",
    "properties_seal",
    "seal",
    "shred_subject",
    "traits_open",
    "traits_seal",
    "traits_update",
]
