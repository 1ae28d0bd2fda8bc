"""Roots a person is asked to trust: parse, check self-signature and pinned
keys, print fingerprints (``tufc init``)."""

from __future__ import annotations

import base64
import hashlib
import logging

from ._common import CliError
from ._location import Location

logger = logging.getLogger("tufc.cli")

# 1.root.json fetched for trust on first use / pinned keys: python-tuf's
# default root_max_length.
ROOT_MAX_LENGTH = 512000


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


def fetch_first_root(location: Location) -> bytes:
    from ..fetcher import Urllib3Fetcher

    url = location.require_url() + "1.root.json"
    logger.info("fetching %s", url)
    return Urllib3Fetcher().download_bytes(url, ROOT_MAX_LENGTH)
