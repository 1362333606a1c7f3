"""Crypto errors. Messages name the failure, never a key, a plaintext or a ciphertext."""


class CryptoError(Exception):
    """Base class: something could not be sealed or opened."""


class DecryptionError(CryptoError):
    """The ciphertext is tampered, truncated, moved to another field or subject, or foreign."""


class KeyShreddedError(CryptoError):
    """The subject's data key was destroyed (erasure); their data is gone for good."""


class UnknownKeyVersion(CryptoError):
    """A wrapped key or ciphertext names a key version this process does not hold."""
