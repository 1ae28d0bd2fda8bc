"""Which roles a repository has and which hash bin holds a target path.

Two shapes, both with TAP 15 succinct hash bins (a target's bin is the
leading bits of the SHA-256 of its path, as every TUF client computes it):

* ``pep458``: ``targets`` delegates everything to ``bins``, which delegates
  to ``bin-0000`` ... (PEP 458's hashed bins); ``targets`` and ``bins`` are
  offline roles, the bins are signed by the online key.
* ``rstuf``: ``targets`` delegates straight to ``bins-0000`` ... and is
  itself online (the Repository Service for TUF's shape).
"""

from __future__ import annotations

import hashlib
import struct
from datetime import timedelta

from ..exceptions import FormatError

__all__ = ["Layout", "DEFAULT_EXPIRY"]

# PEP 458 gives the online roles a day and Warehouse later moved the bins
# to a week (re-signing 16,384 bins daily burdens mirrors and signers).
DEFAULT_EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=365),
    "bins": timedelta(days=365),
    "bin-n": timedelta(days=7),
    "snapshot": timedelta(days=1),
    "timestamp": timedelta(days=1),
}

KINDS = ("pep458", "rstuf")
_HEAD = struct.Struct(">I").unpack_from
_sha256 = hashlib.sha256


class Layout:
    """The delegation shape: ``kind`` (``pep458`` or ``rstuf``) and the
    number of hash bins (a power of two, 2 .. 2**24)."""

    __slots__ = ("kind", "bins", "bit_length", "prefix", "_suffix_len", "simple_page")

    def __init__(self, kind: str = "pep458", bins: int = 16384,
                 simple_page: str = "simple/{project}/index.html"):
        if kind not in KINDS:
            raise FormatError(f"layout must be one of {', '.join(KINDS)}, not {kind!r}")
        if type(bins) is not int or bins < 2 or bins > 1 << 24 or bins & (bins - 1):
            raise FormatError(f"the number of bins must be a power of two in 2..2**24, not {bins!r}")
        if "{project}" not in simple_page:
            raise FormatError("the simple page path template must contain {project}")
        self.kind = kind
        self.bins = bins
        self.bit_length = bins.bit_length() - 1
        self.prefix = "bin" if kind == "pep458" else "bins"
        self._suffix_len = len(f"{bins - 1:x}")
        self.simple_page = simple_page

    # --- roles ---------------------------------------------------------------

    @property
    def bins_delegator(self) -> str:
        """The role whose succinct delegation names the bins."""
        return "bins" if self.kind == "pep458" else "targets"

    @property
    def delegating_roles(self) -> tuple:
        """Targets roles above the bins, top first."""
        return ("targets", "bins") if self.kind == "pep458" else ("targets",)

    @property
    def online_roles(self) -> frozenset:
        """Roles the online key signs (timestamp, snapshot, the bins ...)."""
        extra = {"targets"} if self.kind == "rstuf" else set()
        return frozenset({"timestamp", "snapshot", "bin-n"} | extra)

    def expiry_class(self, role: str) -> str:
        """The key of ``DEFAULT_EXPIRY`` that governs ``role``."""
        if role in ("root", "targets", "bins", "snapshot", "timestamp") and not (
            role == "bins" and self.kind == "rstuf"
        ):
            return role
        return "bin-n"

    def bin_name(self, index: int) -> str:
        return f"{self.prefix}-{index:0{self._suffix_len}x}"

    def bin_names(self) -> list:
        """Every bin, in index order (also their sorted order)."""
        return [self.bin_name(i) for i in range(self.bins)]

    def bin_index(self, path: str) -> int:
        """TAP 15: the leading ``bit_length`` bits of SHA-256(path)."""
        return _HEAD(_sha256(path.encode("utf-8")).digest())[0] >> (32 - self.bit_length)

    def bin_for(self, path: str) -> str:
        return self.bin_name(self.bin_index(path))

    def simple_page_path(self, project: str) -> str:
        """The target path of a project's simple-index page."""
        return self.simple_page.format(project=project)

    # --- persistence ---------------------------------------------------------

    def to_dict(self) -> dict:
        return {"kind": self.kind, "bins": self.bins, "simple_page": self.simple_page}

    @classmethod
    def from_dict(cls, obj: dict) -> Layout:
        if not isinstance(obj, dict):
            raise FormatError("layout: expected an object")
        return cls(obj.get("kind", "pep458"), obj.get("bins", 16384),
                   obj.get("simple_page", "simple/{project}/index.html"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Layout({self.kind!r}, bins={self.bins})"
