"""Canonical JSON in pure Python (stub: implemented in a following commit)."""

MAX_DEPTH = 512


def canonical_json(obj):
    raise NotImplementedError("canonical_json")
