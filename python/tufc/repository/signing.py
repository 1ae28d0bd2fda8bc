"""Signers for the repository engine: tufc's Ed25519 signer or any
securesystemslib ``Signer`` (KMS, HSM, Sigstore ...), loaded from a URI.

``file:PATH`` is tufc's own key file (an Ed25519 seed, kept 0600); any other
URI goes to securesystemslib's ``Signer.from_priv_key_uri``, so every signer
it supports works unchanged.  ``sign_all`` signs many payloads at once: in
threads, since libsodium signs with the GIL released and a remote signer
spends its time waiting on the network.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from collections.abc import Sequence
from typing import Any

from ..exceptions import FormatError, SigningError, StorageError
from ..keys import Key
from ..signer import Ed25519Signer
from . import metadata_io as mio

__all__ = ["load_signer", "write_key_file", "read_key_file", "signature_of", "sign_all",
           "keyid_of", "signer_entry"]

KEY_FILE_FORMAT = "tufc-ed25519-private-key"


def write_key_file(path: str, signer: Ed25519Signer) -> None:
    """Store ``signer``'s seed in a new file readable by its owner only."""
    data = json.dumps({
        "format": KEY_FILE_FORMAT,
        "keyid": signer.public_key.keyid,
        "public": signer.public_key.keyval["public"],
        "seed": signer.private_bytes.hex(),
    }, indent=1).encode() + b"\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot create key file {path}: {exc}") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def read_key_file(path: str) -> Ed25519Signer:
    obj = mio.read_json_object(path, 1 << 16, "tufc key file", KEY_FILE_FORMAT)
    try:
        signer = Ed25519Signer(bytes.fromhex(obj["seed"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"key file {path}: bad seed") from exc
    if signer.public_key.keyval["public"] != obj.get("public"):
        raise FormatError(f"key file {path}: the seed does not match its public key")
    return signer


def load_signer(uri: str, public_key: Key | None = None, base: str = ".") -> Any:
    """The signer a URI names (``file:`` paths are relative to ``base``).

    For a securesystemslib URI, ``public_key`` (the key as root lists it)
    is required; securesystemslib is imported only then.
    """
    if not isinstance(uri, str):
        raise TypeError("a signer URI is a str")
    if uri.startswith("file:"):
        path = os.path.join(base, uri[len("file:"):])
        signer = read_key_file(path)
        if public_key is not None and signer.public_key.keyid != public_key.keyid:
            raise SigningError(f"{uri} holds key {signer.public_key.keyid[:12]}..., "
                               f"not the expected {public_key.keyid[:12]}...")
        return signer
    if public_key is None:
        raise SigningError(f"{uri}: a securesystemslib signer needs its public key")
    try:
        from securesystemslib.signer import Signer, SSlibKey
    except ImportError as exc:
        raise SigningError(f"{uri}: securesystemslib is not installed ({exc})") from exc
    try:
        return Signer.from_priv_key_uri(uri, SSlibKey.from_dict(public_key.keyid, public_key.to_dict()))
    except Exception as exc:  # a third-party signer may raise anything
        raise SigningError(f"cannot load signer {uri}: {exc}") from exc


def signer_entry(signer: Any, uri: str | None) -> dict:
    """How repository.json records a signer: its URI and public key."""
    key = signer.public_key
    return {"uri": uri, "keyid": key.keyid, "public": key.to_dict()}


def keyid_of(signer: Any) -> str:
    try:
        return signer.public_key.keyid
    except AttributeError:
        raise SigningError(f"{signer!r} is not a signer (no public_key.keyid)") from None


def signature_of(signer: Any, data: bytes) -> dict:
    """``{"keyid", "sig"}`` of ``data``; every failure is a SigningError."""
    try:
        result = signer.sign(data)
    except SigningError:
        raise
    except Exception as exc:  # a third-party signer may raise anything
        raise SigningError(f"signer {keyid_of(signer)[:12]}... failed: {exc}") from exc
    if isinstance(result, str):
        keyid, sig = keyid_of(signer), result
    else:
        keyid, sig = getattr(result, "keyid", None), getattr(result, "signature", None)
    if not isinstance(keyid, str) or not isinstance(sig, str) or not sig:
        raise SigningError(f"signer {keyid_of(signer)[:12]}... returned no usable signature")
    return {"keyid": keyid, "sig": sig}


def sign_all(signers: Sequence[Any], payloads: Sequence[bytes], workers: int = 2,
             timeout: float | None = 60.0) -> list:
    """The signature list of every payload (each signed by every signer),
    made by ``workers`` threads; a signer that fails, or a batch that takes
    longer than ``timeout`` seconds, raises SigningError."""
    if not signers:
        raise SigningError("no signer for this role")

    def sign_range(start: int, stop: int) -> list:
        return [[signature_of(s, payloads[i]) for s in signers] for i in range(start, stop)]

    if workers <= 1 or len(payloads) < 4:
        return sign_range(0, len(payloads))
    step = max(1, -(-len(payloads) // (workers * 4)))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                 thread_name_prefix="tufc-sign")
    try:
        futures = [pool.submit(sign_range, k, min(k + step, len(payloads)))
                   for k in range(0, len(payloads), step)]
        done, not_done = concurrent.futures.wait(futures, timeout=timeout)
        if not_done:
            raise SigningError(f"signing did not finish within {timeout} s")
        return [sigs for future in futures for sigs in future.result()]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
