"""Roots: the ones a person is asked to trust (parse, check self-signature
and pinned keys, print fingerprints: ``tufc init``), and the chain from the
pinned root to the current one (``tufc verify``)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re

from ._common import CliError, explain, step
from ._location import Location

logger = logging.getLogger("tufc.cli")

# 1.root.json fetched for trust on first use / pinned keys: python-tuf's
# default root_max_length.
ROOT_MAX_LENGTH = 512000
# The Updater's folder of every root version it trusted (python-tuf's name).
ROOT_HISTORY = "root_history"
_HISTORY_NAME = re.compile(r"([1-9][0-9]*)\.root\.json\Z")


class RootInfo:
    """A parsed root and the key ids whose signatures over it verified."""

    def __init__(self, data: bytes):
        from ..metadata import Metadata, Root

        self.data = data
        self.metadata = Metadata.from_bytes(data)
        self.root = self.metadata.signed
        if not isinstance(self.root, Root):
            raise CliError("not root metadata (its _type is not 'root')")

    def signed_by(self, keyids, threshold: int):
        """The threshold result of ``keyids`` over this root's signed part."""
        from ..keys import verify_threshold

        signatures = {
            keyid: sig.signature for keyid, sig in self.metadata.signatures.items()
        }
        return verify_threshold(
            self.metadata.signed_bytes, signatures, self.root.keys,
            list(keyids), threshold,
        )

    def check_self_signed(self) -> None:
        role = self.root.roles["root"]
        result = self.signed_by(role.keyids, role.threshold)
        if not result:
            raise CliError(
                "root: signature check failed: signed by "
                f"{len(result.verified)} of its {len(role.keyids)} root keys, "
                f"threshold {role.threshold}"
            )

    def resolve_pins(self, pins: list[str]) -> list[str]:
        """Key ids for pinned key ids or ``SHA256:`` fingerprints.

        A fingerprint names key material, so it pins every key id under
        which that material appears (the threshold counts it once).
        """
        keyids = []
        for pin in pins:
            if pin.startswith("SHA256:"):
                keyids.extend(
                    keyid for keyid, key in self.root.keys.items()
                    if fingerprint(key) == pin
                )
            else:
                keyids.append(pin)
        return keyids

    def describe_keys(self) -> list[str]:
        role = self.root.roles["root"]
        lines = []
        for keyid in role.keyids:
            key = self.root.keys.get(keyid)
            if key is None:
                lines.append(f"  {keyid}  (missing from the key table)")
                continue
            lines.append(f"  {keyid}  {key.keytype}  {fingerprint(key)}")
        return lines


def fingerprint(key) -> str:
    """SSH-style SHA256 fingerprint of the key material (or of its keyval)."""
    from .._backend import canonical_json

    material = getattr(key, "fingerprint", None)
    if not isinstance(material, bytes):
        material = canonical_json(key.keyval)
    digest = hashlib.sha256(material).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def fetch_first_root(location: Location, fetcher) -> bytes:
    url = location.require_url() + "1.root.json"
    logger.info("fetching %s", url)
    return fetcher.download_bytes(url, ROOT_MAX_LENGTH)


def pinned_chain(folder: str, root_file: str | None, as_of):
    """A TrustedMetadataSet at ``folder``'s current root, reached through
    the signed root chain from the pinned root, and which root that was.

    The pin is ``root_file`` if given, else the oldest root in the folder's
    root_history/ (the one ``init`` stored, kept by the first refresh), else
    root.json itself (a folder never refreshed).  ``folder/root.json`` must be the end of
    that chain: a root.json swapped for another one is refused.
    """
    from .._trusted import TrustedMetadataSet

    history = os.path.join(folder, ROOT_HISTORY)
    versions = set()
    if os.path.isdir(history):
        for entry in os.listdir(history):
            match = _HISTORY_NAME.match(entry)
            if match:
                versions.add(int(match.group(1)))
    current_path = os.path.join(folder, "root.json")
    if root_file is not None:
        anchor_path, anchor = root_file, f"{root_file} (--root)"
    elif versions:
        anchor_path = os.path.join(history, f"{min(versions)}.root.json")
        anchor = f"the pinned root {anchor_path}"
    else:
        anchor_path = current_path
        anchor = f"{current_path} itself (no older root kept: --root FILE pins one)"
    data = _read(anchor_path)
    trusted = step("root", TrustedMetadataSet, data, as_of)
    anchor = f"{anchor}, version {trusted.root.version}"
    while trusted.root.version + 1 in versions:
        path = os.path.join(history, f"{trusted.root.version + 1}.root.json")
        data = _read(path)
        step(f"root chain: {path}", trusted.update_root, data)
    current = _read(current_path)
    if current != data:
        try:
            trusted.update_root(current)
        except Exception as exc:  # noqa: BLE001 - reported as one line
            raise CliError(
                f"root: {current_path} is not reached from {anchor} through "
                f"signed roots ({explain(exc)}): not the trusted root"
            ) from exc
    return trusted, anchor


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
