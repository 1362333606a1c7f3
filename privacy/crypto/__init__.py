"""Envelope encryption of personal data, blind indexes and crypto-shredding.

Public API (import from here):
- seal(subject_id=, field=, value=) -> bytes and open_sealed(subject_id=, field=, blob=) -> value
- blind_index(id_type=, value=) -> str (hex HMAC-SHA256 under the pepper, per-type domain)
- keyed_hash(domain=, value=) -> str (for evidence such as IP address and user agent)
- shred_subject(subject_id=) destroys a subject's data key; nothing of theirs opens afterwards
- errors: CryptoError, DecryptionError, KeyShreddedError
"""

from privacy.crypto.blind import blind_index, keyed_hash
from privacy.crypto.datakeys import clear_data_key_cache, shred_subject
from privacy.crypto.errors import CryptoError, DecryptionError, KeyShreddedError, UnknownKeyVersion
from privacy.crypto.vault import open_sealed, seal

__all__ = [
    "CryptoError",
    "DecryptionError",
    "KeyShreddedError",
    "UnknownKeyVersion",
    "blind_index",
    "clear_data_key_cache",
    "keyed_hash",
    "open_sealed",
    "seal",
    "shred_subject",
]
