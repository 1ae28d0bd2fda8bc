"""Canonical JSON in pure Python: the twin of ``_tufc.canonical_json``.

The format is securesystemslib's: no whitespace, object keys sorted by code
point, strings quoted with only backslash and double quote escaped (every
other character is written raw, as UTF-8), integers in decimal.  Anything
else is refused with ``FormatError``.
"""

from __future__ import annotations

from ..exceptions import FormatError

MAX_DEPTH = 512

_int_repr = int.__repr__


def _quote(s: str) -> str:
    if "\\" in s:
        s = s.replace("\\", "\\\\")
    if '"' in s:
        s = s.replace('"', '\\"')
    return '"' + s + '"'


def _encode(obj, out: list, depth: int, active: set) -> None:
    # One frame per nesting level, so MAX_DEPTH fits Python's recursion limit.
    t = type(obj)
    if t is str:
        out.append(_quote(obj))
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif obj is None:
        out.append("null")
    elif t is int:
        out.append(_int_repr(obj))
    elif isinstance(obj, (dict, list, tuple)):
        if depth >= MAX_DEPTH:
            raise FormatError(f"nesting deeper than {MAX_DEPTH} containers")
        ident = id(obj)
        if ident in active:
            raise FormatError("cannot encode a container that contains itself")
        active.add(ident)
        if isinstance(obj, dict):
            keys = list(obj.keys())
            for key in keys:
                if not isinstance(key, str):
                    raise FormatError(
                        f"cannot encode a {type(key).__name__} object key "
                        "in canonical JSON"
                    )
            keys.sort()
            out.append("{")
            sep = ""
            for key in keys:
                out.append(sep)
                out.append(_quote(str.__str__(key)))
                out.append(":")
                _encode(obj[key], out, depth + 1, active)
                sep = ","
            out.append("}")
        else:
            out.append("[")
            sep = ""
            for item in obj:
                out.append(sep)
                _encode(item, out, depth + 1, active)
                sep = ","
            out.append("]")
        active.discard(ident)
    elif isinstance(obj, str):
        out.append(_quote(str.__str__(obj)))
    elif isinstance(obj, int):
        out.append(_int_repr(obj))
    else:
        raise FormatError(f"cannot encode {type(obj).__name__} in canonical JSON")


def canonical_json(obj) -> bytes:
    """Return the canonical JSON encoding of ``obj`` as UTF-8 bytes."""
    out: list = []
    try:
        _encode(obj, out, 0, set())
    except ValueError as exc:
        if isinstance(exc, FormatError):
            raise
        # int.__repr__ beyond sys.get_int_max_str_digits()
        raise FormatError(f"integer too large to encode: {exc}") from None
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"string is not valid Unicode text: {exc.reason}") from None
