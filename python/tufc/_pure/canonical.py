"""Canonical JSON in pure Python: the twin of ``_tufc.canonical_json``.

The format is securesystemslib's: no whitespace, object keys sorted by code
point, strings quoted with only backslash and double quote escaped (every
other character is written raw, as UTF-8), integers in decimal.  Anything
else is refused with ``FormatError``.

Speed matters here too (pip verifies without the native core): scalars are
written inline by the container that holds them, so only containers cost a
function call, and exact types are tested before the ``isinstance`` fallbacks
that give subclasses securesystemslib's treatment.  Subclasses are read
through their base type (``int.__repr__``, the ``str`` value, the dict's own
items), as the native core does, so no user code shapes the output.
"""

from __future__ import annotations

from operator import itemgetter

from ..exceptions import FormatError

MAX_DEPTH = 512

_int_repr = int.__repr__
_str_value = str.__str__
_dict_items = dict.items
_dict_keys = dict.keys
_first = itemgetter(0)


def _quote(s: str) -> str:
    if "\\" in s:
        s = s.replace("\\", "\\\\")
    if '"' in s:
        s = s.replace('"', '\\"')
    return '"' + s + '"'


def _scalar(obj):
    """The encoding of a non-container, or None for a container."""
    t = type(obj)
    if t is str:
        if "\\" in obj or '"' in obj:
            return _quote(obj)
        return '"' + obj + '"'
    if t is int:
        return _int_repr(obj)
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if obj is None:
        return "null"
    if t is dict or t is list or t is tuple:
        return None
    if isinstance(obj, str):
        return _quote(_str_value(obj))
    if isinstance(obj, int):
        return _int_repr(obj)
    if isinstance(obj, (tuple, list, dict)):
        return None
    raise FormatError(f"cannot encode {t.__name__} in canonical JSON")


def _sorted_items(obj: dict):
    """(key, value) pairs of a dict, keys sorted by code point."""
    if type(obj) is not dict:
        obj = dict(_dict_items(obj))  # its storage, not its own methods
    for key in obj:
        if type(key) is not str:
            break
    else:
        if len(obj) < 2:
            return _dict_items(obj)
        keys = sorted(obj)
        return zip(keys, map(obj.__getitem__, keys))
    # str subclasses: sort their plain values, never their own __lt__
    items = []
    for key, value in _dict_items(obj):
        if not isinstance(key, str):
            raise FormatError(
                f"cannot encode a {type(key).__name__} object key "
                "in canonical JSON"
            )
        items.append((_str_value(key), value))
    items.sort(key=_first)
    for i in range(1, len(items)):
        if items[i - 1][0] == items[i][0]:
            raise FormatError("duplicate object key in canonical JSON")
    return items


def _too_deep():
    # A cycle is found here too: it nests without end.
    return FormatError(
        f"nesting deeper than {MAX_DEPTH} containers "
        "(or a container that contains itself)"
    )


def _encode_dict(obj, append, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise _too_deep()
    sep = "{"
    for key, value in _sorted_items(obj):
        if "\\" in key or '"' in key:
            key = _quote(key)[1:-1]
        t = type(value)
        if t is str:
            if "\\" in value or '"' in value:
                value = _quote(value)[1:-1]
            append(f'{sep}"{key}":"{value}"')
        elif t is int:
            append(f'{sep}"{key}":{_int_repr(value)}')
        elif t is dict:
            append(f'{sep}"{key}":')
            _encode_dict(value, append, depth + 1)
        else:
            text = _scalar(value)
            if text is not None:
                append(f'{sep}"{key}":{text}')
            else:
                append(f'{sep}"{key}":')
                if isinstance(value, dict):
                    _encode_dict(value, append, depth + 1)
                else:
                    _encode_list(value, append, depth + 1)
        sep = ","
    append("{}" if sep == "{" else "}")


def _encode_list(obj, append, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise _too_deep()
    t = type(obj)
    if t is not list and t is not tuple:
        # a subclass: its storage, not its own __iter__
        obj = list(list.__iter__(obj) if isinstance(obj, list) else tuple.__iter__(obj))
    sep = "["
    for item in obj:
        text = _scalar(item)
        if text is not None:
            append(sep + text)
        else:
            append(sep)
            if isinstance(item, dict):
                _encode_dict(item, append, depth + 1)
            else:
                _encode_list(item, append, depth + 1)
        sep = ","
    append("[]" if sep == "[" else "]")


def canonical_json(obj) -> bytes:
    """Return the canonical JSON encoding of ``obj`` as UTF-8 bytes."""
    out: list = []
    try:
        text = _scalar(obj)
        if text is not None:
            out.append(text)
        elif isinstance(obj, dict):
            _encode_dict(obj, out.append, 0)
        else:
            _encode_list(obj, out.append, 0)
    except ValueError as exc:
        if isinstance(exc, FormatError):
            raise
        # int.__repr__ beyond sys.get_int_max_str_digits()
        raise FormatError(f"integer too large to encode: {exc}") from None
    except RecursionError:
        # one frame per level: a caller already deep in the stack may leave
        # too little room for MAX_DEPTH levels; refuse rather than escape
        raise FormatError("nesting too deep for the remaining Python stack") from None
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"string is not valid Unicode text: {exc.reason}") from None
