"""Tiny packages signed into a local TUF repository, for the proxy's tests.

Wheels are written by hand (a zip with a module and its .dist-info), and
sdists carry their own tiny build backend, so building them takes
milliseconds and installing needs no index but the proxy; tufc's repository
engine signs each wheel, its PEP 658 metadata file and its project's
simple page as targets (``packages/<file>``, ``simple/<project>/index.html``,
the layout ``tufc proxy`` expects by default), and ``files()`` gives what
an upstream server serves: the metadata and the consistent-snapshot names
of the targets (``DIR/SHA256.NAME``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import re
import zipfile

from tufc.repository import Layout, Repository


def wheel(name: str, version: str, requires=(), body: str = "") -> tuple[bytes, bytes]:
    """A pure-Python wheel of module ``name`` and its METADATA."""
    dist = f"{name}-{version}.dist-info"
    metadata = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode()
    files = {
        f"{name}/__init__.py": (f"VERSION = {version!r}\n" + body).encode(),
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return out.getvalue(), metadata


# An sdist's in-tree PEP 517 backend: builds the wheel with nothing to
# install first, so installing the sdist needs no index but the proxy.
_BACKEND = """
import base64, hashlib, os, zipfile

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name, version = NAME, VERSION
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": open(os.path.join(name, "__init__.py"), "rb").read(),
             f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n".encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = ("\\n".join(record + [f"{dist}/RECORD,,"]) + "\\n").encode()
    filename = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return filename
"""


def sdist(name: str, version: str) -> bytes:
    """A source distribution of module ``name`` built by its own backend."""
    import tarfile

    base = f"{name}-{version}"
    files = {
        "pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        "backend.py": f"NAME, VERSION = {name!r}, {version!r}\n{_BACKEND}".encode(),
        f"{name}/__init__.py": f"VERSION = {version!r}\nFROM_SDIST = True\n".encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for path, data in files.items():
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size, info.mtime = len(data), 1577836800
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def page(project: str, links) -> bytes:
    """A PEP 503 page; ``links`` are (href, extra attributes) pairs."""
    rows = "".join(f'<a href="{href}"{attrs}>{href.rpartition("/")[2].partition("#")[0]}</a><br/>\n'
                   for href, attrs in links)
    return (f"<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n{rows}"
            "</body></html>\n").encode()


class ProxyRepo:
    """A repository folder with projects; ``targets`` holds every target's
    bytes by path."""

    def __init__(self, folder, clock=None):
        self.folder = str(folder)
        self.repo = Repository.create(self.folder, Layout("pep458", 16), clock=clock)
        self.targets: dict[str, bytes] = {}

    def add_project(self, name: str, versions=("1.0",), requires=(), metadata=True,
                    extra_links=(), body: str = "") -> None:
        links = []
        for version in versions:
            data, meta = wheel(name, version, requires, body)
            filename = f"{name}-{version}-py3-none-any.whl"
            self.targets[f"packages/{filename}"] = data
            attrs = ' data-requires-python="&gt;=3.8"'
            if metadata:
                self.targets[f"packages/{filename}.metadata"] = meta
                attrs += f' data-dist-info-metadata="sha256={sha256(meta)}"'
                attrs += f' data-core-metadata="sha256={sha256(meta)}"'
            links.append((f"../../packages/{filename}#sha256={sha256(data)}", attrs))
        links.extend(extra_links)
        self.targets[f"simple/{name}/index.html"] = page(name, links)

    def add_sdist_project(self, name: str, version: str = "1.0") -> None:
        """A project whose only file is an sdist."""
        data = sdist(name, version)
        self.targets[f"packages/{name}-{version}.tar.gz"] = data
        self.targets[f"simple/{name}/index.html"] = page(
            name, [(f"../../packages/{name}-{version}.tar.gz#sha256={sha256(data)}", "")])

    def add_distributions(self, paths) -> None:
        """Real distribution files (wheels, sdists), each under
        ``packages/<file>``, a wheel's PEP 658 metadata (its METADATA, as
        PyPI serves it) beside it, and one page per project."""
        projects: dict[str, list] = {}
        for path in sorted(paths):
            filename = os.path.basename(path)
            with open(path, "rb") as f:
                data = f.read()
            self.targets[f"packages/{filename}"] = data
            attrs = ""
            if filename.endswith(".whl"):
                name = filename.split("-")[0]
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    (member,) = [n for n in zf.namelist()
                                 if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
                    meta = zf.read(member)
                self.targets[f"packages/{filename}.metadata"] = meta
                attrs += f' data-dist-info-metadata="sha256={sha256(meta)}"'
                attrs += f' data-core-metadata="sha256={sha256(meta)}"'
                requires_python = re.search(rb"^Requires-Python: *(.+?)\r?$", meta.split(b"\n\n")[0], re.M)
                if requires_python:
                    attrs += f' data-requires-python="{html.escape(requires_python.group(1).decode())}"'
            else:
                name = filename[:-len(".tar.gz")].rpartition("-")[0] if filename.endswith(".tar.gz") \
                    else filename.rpartition(".")[0].rpartition("-")[0]
            project = re.sub(r"[-_.]+", "-", name).lower()
            projects.setdefault(project, []).append(
                (f"../../packages/{filename}#sha256={sha256(data)}", attrs))
        for project, links in projects.items():
            self.targets[f"simple/{project}/index.html"] = page(project, links)

    def publish(self, paths=None) -> None:
        paths = list(self.targets) if paths is None else paths
        self.repo.add_targets([{"path": p, "length": len(self.targets[p]),
                                "hashes": {"sha256": sha256(self.targets[p])}} for p in paths])
        self.repo.publish()

    def metadata(self) -> dict:
        folder = os.path.join(self.folder, "metadata")
        out = {}
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), "rb") as f:
                out[f"metadata/{name}"] = f.read()
        return out

    def files(self) -> dict:
        """What the upstream serves: metadata/... and targets/DIR/HASH.NAME."""
        out = self.metadata()
        for path, data in self.targets.items():
            folder, _, name = path.rpartition("/")
            out[f"targets/{folder}/{sha256(data)}.{name}"] = data
        return out

    def root(self) -> bytes:
        return self.metadata()["metadata/1.root.json"]
