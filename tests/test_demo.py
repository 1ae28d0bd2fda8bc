"""``tufc demo`` and the repository writer it is built on.

The writer (tufc._repository) is checked by an independent client:
python-tuf's ngclient must accept what it publishes.  The demo itself must
exit 0 with every attack refused, and must NOT pass when an attack gets
through (its verdict is not vacuous).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from tests.http_repo import HttpRepo

tuf_ngclient = pytest.importorskip("tuf.ngclient")


def test_demo_command_exits_0_with_every_attack_refused():
    result = subprocess.run(
        [sys.executable, "-m", "tufc", "demo"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OK: 8 of 8 attacks refused" in out
    assert out.count("[REFUSED]") == 8
    assert "NOT REFUSED" not in out and "[FAIL]" not in out
    for attack in ("Rollback", "Freeze", "Mix-and-match", "Endless data",
                   "tampered", "ONE of the three root keys", "delegation path check"):
        assert attack in out
    assert "Traceback" not in result.stderr


def _served(repo) -> dict:
    """The writer's published files keyed as HttpRepo expects."""
    return dict(repo.published)


@pytest.fixture
def written(tmp_path):
    from tufc._repository import Repository

    repo = Repository(str(tmp_path / "repo"))
    repo.delegate("projects", ["projects/*"])
    repo.add_target("README.txt", b"readme\n", custom={"kind": "doc"})
    repo.add_target("projects/app.tar.gz", b"\x00app" * 1000, role="projects")
    repo.publish()
    return repo


def _python_tuf_updater(tmp_path, http, root: bytes):
    return tuf_ngclient.Updater(
        str(tmp_path / "client"),
        http.url + "metadata/",
        str(tmp_path / "downloads"),
        http.url + "targets/",
        bootstrap=root,
    )


def test_writer_output_is_accepted_by_python_tuf(tmp_path, written):
    with HttpRepo(_served(written)) as http:
        updater = _python_tuf_updater(tmp_path, http, written.current("metadata/1.root.json"))
        updater.refresh()
        for path, data in (("README.txt", b"readme\n"),
                           ("projects/app.tar.gz", b"\x00app" * 1000)):
            info = updater.get_targetinfo(path)
            assert info is not None
            with open(updater.download_target(info), "rb") as f:
                assert f.read() == data
        assert updater.get_targetinfo("README.txt").custom == {"kind": "doc"}
        assert "/metadata/1.projects.json" in http.paths_requested()


def test_writer_updates_and_root_rotation_accepted_by_python_tuf(tmp_path, written):
    with HttpRepo(_served(written)) as http:
        updater = _python_tuf_updater(tmp_path, http, written.current("metadata/1.root.json"))
        updater.refresh()
        # a new release and a renewed timestamp
        written.add_target("projects/app-2.tar.gz", b"two", role="projects")
        written.publish()
        written.renew_timestamp()
        # a root key rotation, signed by the old and the new keys
        from tufc.signer import Ed25519Signer

        old = list(written.signers["root"])
        new = Ed25519Signer.generate()
        written.root.revoke_key(old[0].public_key.keyid, "root")
        written.root.add_key(new.public_key, "root")
        written.signers["root"] = [new, *old[1:]]
        written.root.version += 1
        written.publish_root(extra_signers=[old[0]])
        http.files = _served(written)

        updater = _python_tuf_updater(tmp_path, http, written.current("metadata/1.root.json"))
        updater.refresh()
        info = updater.get_targetinfo("projects/app-2.tar.gz")
        assert info is not None and info.length == 3
        assert os.path.exists(tmp_path / "client" / "root_history" / "2.root.json")


def test_writer_timestamp_renewal_refused_as_rollback_by_python_tuf(tmp_path, written):
    """An independent client sees the writer's versions the demo relies on."""
    from tuf.api.exceptions import BadVersionNumberError

    old = written.current("metadata/timestamp.json")
    written.renew_timestamp()
    with HttpRepo(_served(written)) as http:
        updater = _python_tuf_updater(tmp_path, http, written.current("metadata/1.root.json"))
        updater.refresh()
        http.files["metadata/timestamp.json"] = old
        with pytest.raises(BadVersionNumberError):
            _python_tuf_updater(tmp_path, http, written.current("metadata/1.root.json")).refresh()


def test_demo_fails_when_an_attack_gets_through(monkeypatch, tmp_path):
    """A forged root that really meets the threshold must make the demo fail."""
    from tufc import demo as demo_module

    def legit_rotation(self):
        from tufc.metadata import Metadata

        md = Metadata.from_bytes(self.repo.current("metadata/1.root.json"))
        md.signed.version = 2
        md.signatures.clear()
        for signer in self.repo.signers["root"][:2]:
            md.sign(signer, append=True)
        return md.to_bytes()

    monkeypatch.setattr(demo_module.Demo, "_forged_root", legit_rotation)
    out = io.StringIO()
    status = demo_module.Demo(str(tmp_path), out=out).run()
    text = " ".join(out.getvalue().split())
    assert status == 1
    assert "NOT REFUSED AS EXPECTED" in text
    assert "FAILED: 7 of 8 attacks refused" in text


def test_demo_fails_when_an_honest_step_fails(monkeypatch, tmp_path):
    from tufc import demo as demo_module

    def broken(self):
        raise OSError("disk full")

    monkeypatch.setattr(demo_module.Demo, "_trust_root", broken)
    out = io.StringIO()
    assert demo_module.Demo(str(tmp_path), out=out).run() == 1
    text = " ".join(out.getvalue().split())
    assert "[FAIL]" in text and "disk full" in text
