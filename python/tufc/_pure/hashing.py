"""Streaming hashes in pure Python (stub: implemented in a following commit)."""


class Hasher:
    def __init__(self, algorithms, max_length=None):
        raise NotImplementedError("Hasher")


def hash_file(path_or_file, algorithms):
    raise NotImplementedError("hash_file")
