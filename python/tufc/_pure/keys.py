"""Public keys in pure Python (stub: implemented in a following commit)."""


class PublicKey:
    def __init__(self, keytype, scheme, public):
        raise NotImplementedError("PublicKey")


def verify_many(data, pairs):
    raise NotImplementedError("verify_many")
