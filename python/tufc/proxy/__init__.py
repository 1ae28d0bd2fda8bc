"""``tufc proxy``: a package index on 127.0.0.1 that serves only what TUF
verified, so pip, uv and other installers get TUF unchanged.

``index`` verifies pages and files; ``pages`` parses the verified pages
and writes them again pointing at the proxy; ``server`` serves them over
HTTP; ``tools`` runs pip or uv through a proxy.
"""

from __future__ import annotations

from .index import LAYOUTS, Index, Names
from .server import ProxyServer

__all__ = ["Index", "Names", "LAYOUTS", "ProxyServer"]
