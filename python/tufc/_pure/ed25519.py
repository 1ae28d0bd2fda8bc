"""Ed25519 in pure Python (stub: implemented in a following commit)."""


def ed25519_public_key(seed):
    raise NotImplementedError("ed25519_public_key")


def ed25519_sign(seed, message):
    raise NotImplementedError("ed25519_sign")
