"""Succinct hash bins in pure Python: the twin of ``_tufc.misplaced_targets``."""

from __future__ import annotations

import hashlib
from typing import Iterable

from ..exceptions import FormatError


def misplaced_targets(entries: Iterable[str], bit_length: int, index: int) -> list:
    """The paths of ``entries`` (in its order) whose TAP 15 bin is not ``index``.

    A path's bin is the first ``bit_length`` bits of its UTF-8 SHA-256, as
    ``SuccinctRoles.get_role_for_target`` computes it.
    """
    if not isinstance(bit_length, int) or not isinstance(index, int):
        raise TypeError("bit_length and index must be int")
    if not 1 <= bit_length <= 32:
        raise ValueError("bit_length must be 1 to 32")
    if not 0 <= index < 1 << bit_length:
        raise ValueError("index must be 0 <= index < 2 ** bit_length")
    shift = 32 - bit_length
    sha256 = hashlib.sha256
    out = []
    for path in entries:
        if not isinstance(path, str):
            raise TypeError(f"target paths must be str, not {type(path).__name__}")
        try:
            raw = path.encode("utf-8")
        except UnicodeEncodeError:
            raise FormatError(f"target path {path!r} is not valid UTF-8") from None
        if int.from_bytes(sha256(raw).digest()[:4], "big") >> shift != index:
            out.append(path)
    return out
