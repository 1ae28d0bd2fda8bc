"""Key ceremonies: what needs the offline keys.

* ``rotate_online_key``: a new online key.  Every file the old key signed
  must be signed again, and clients holding the old root and clients
  holding the new one must both accept the repository at every moment.
  So the bins' delegator (re-signed by its offline key), every bin, the
  snapshot and the timestamp are first published signed by the old *and*
  the new key, and only then the new root that names the new key; from
  then on the new key alone signs.  repository.json records the rotation
  until the new root is durable, and publishing refuses to run meanwhile:
  a rotation that died is finished with ``resume=True``.
* ``renew``: a new version of root, targets or PEP 458's bins with a new
  expiry, signed by their offline signers.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from .. import _backend
from ..exceptions import FormatError, PublishError, SigningError
from . import metadata_io as mio
from .engine import PublishResult, Repository, write_config
from .signing import keyid_of, sign_all, signature_of, signer_entry

__all__ = ["rotate_online_key", "renew"]


def _newest_root(repo: Repository) -> tuple:
    root = repo._root()
    return root["version"], copy.deepcopy(root)


def _check_threshold(signers: Sequence[Any], role: dict, what: str) -> None:
    have = {keyid_of(s) for s in signers} & set(role["keyids"])
    if len(have) < role["threshold"]:
        raise SigningError(f"{what}: {len(have)} of the given signers hold {what} keys; "
                           f"the threshold is {role['threshold']}")


def _sign_file(signed: dict, signers: Sequence[Any]) -> bytes:
    data = _backend.canonical_json(signed)
    return mio.envelope_bytes([signature_of(s, data) for s in signers], data)


def _write_root(repo: Repository, root: dict, signers: Sequence[Any]) -> None:
    mio.write(repo.metadata_dir, mio.role_file("root", root["version"]), _sign_file(root, signers))
    mio.sync_folder(repo.metadata_dir)


def rotate_online_key(repo: Repository, new_signer: Any, new_uri: str | None = None, *,
                      root_signers: Sequence[Any] | None = None,
                      targets_signers: Sequence[Any] | None = None,
                      resume: bool = False, lock_timeout: float | None = None) -> PublishResult:
    """Replace the online key by ``new_signer`` (loadable again from
    ``new_uri``); root (and, in PEP 458, the bins role) are signed by
    ``root_signers`` / ``targets_signers``, default the configured ones."""
    root_signers = list(root_signers or repo.signers("root"))
    layout = repo.layout
    if layout.kind == "pep458":
        targets_signers = list(targets_signers or repo.signers("targets"))
    started = time.perf_counter()
    with repo.publishing(lock_timeout, during_rotation=True) as state:
        config = repo.config
        new_id = keyid_of(new_signer)
        if config.get("rotating") not in (None, new_id):
            raise PublishError("another online key rotation did not finish: resume that one first")
        if config.get("rotating") is None and resume:
            raise PublishError("no online key rotation to resume")
        root_version, root = _newest_root(repo)
        if root["roles"]["timestamp"]["keyids"] == [new_id]:
            # the new root is out already: only the record is left to clear
            config.pop("rotating", None)
            write_config(repo.folder, config)
            return PublishResult(state.snapshot_version, state.timestamp_version, 0, 0,
                                 time.perf_counter() - started)
        old_signers = repo.online_signers()
        _check_threshold(root_signers, root["roles"]["root"], "root")

        # 1. record the rotation (and the new signer) before anything changes
        entries = [e for e in config["signers"].get("online", []) if e.get("keyid") != new_id]
        config["signers"]["online"] = entries + [signer_entry(new_signer, new_uri)]
        config["rotating"] = new_id
        write_config(repo.folder, config)
        repo._loaded.clear()
        if repo._online is not None:  # signers passed in as objects
            repo._online = [s for s in repo._online if keyid_of(s) != new_id] + [new_signer]

        # 2. the delegator names the new key; it, every bin, the snapshot and
        #    the timestamp are signed by both keys
        now = repo.clock().replace(microsecond=0)
        both = list(old_signers) + [new_signer]
        old_ids = {keyid_of(s) for s in old_signers}
        new_key = new_signer.public_key.to_dict()
        delegator = layout.bins_delegator
        envelope, _, _ = mio.load(repo._path(mio.role_file(delegator, state.meta.version(f"{delegator}.json"))))
        signed = json.loads(json.dumps(envelope["signed"], default=dict))
        delegations = signed["delegations"]
        for keyid in old_ids:
            delegations["keys"].pop(keyid, None)
        delegations["keys"][new_id] = new_key
        delegations["succinct_roles"]["keyids"] = [new_id]
        signed["version"] += 1
        delegator_signers = targets_signers if layout.kind == "pep458" else both
        mio.write(repo.metadata_dir, mio.role_file(delegator, signed["version"]),
                  _sign_file(signed, delegator_signers), durable=False)
        versions = {delegator: signed["version"]}

        names = layout.bin_names()
        lifetime = repo.expiry["bin-n"]
        payloads = []
        for i, name in enumerate(names):  # new expiries spread again, as at creation
            bin_envelope, version = repo._read_bin(state, name)
            bin_signed = dict(bin_envelope["signed"])
            bin_signed["targets"] = dict(bin_signed.get("targets", {}).items())
            bin_signed["version"] = version + 1
            bin_signed["expires"] = mio.format_time(now + lifetime * (0.5 + 0.5 * (i + 1) / len(names)))
            payloads.append((name, bin_signed["version"], _backend.canonical_json(bin_signed)))
        signatures = sign_all(both, [p[2] for p in payloads], workers=repo.workers)
        for (name, version, data), sigs in zip(payloads, signatures):
            mio.write(repo.metadata_dir, mio.role_file(name, version), mio.envelope_bytes(sigs, data),
                      durable=False)
            versions[name] = version
        result = repo._commit_versions(state, versions, [], now, started, 0, signers=both)

        # 3. the new root: signed by the root keys (unchanged: the old
        #    root's threshold and the new one's are met by the same keys)
        root["version"] = root_version + 1
        root["expires"] = mio.format_time(now + repo.expiry["root"])
        online_roles = ("timestamp", "snapshot") + (("targets",) if layout.kind == "rstuf" else ())
        for role in online_roles:
            root["roles"][role]["keyids"] = [new_id]
        used = {k for role in root["roles"].values() for k in role["keyids"]}
        for keyid in old_ids - used:
            root["keys"].pop(keyid, None)
        root["keys"][new_id] = new_key
        _write_root(repo, root, root_signers)

        # 4. done: the retired key's entry goes, the record is cleared
        config["signers"]["online"] = [e for e in config["signers"]["online"]
                                       if e.get("keyid") not in old_ids]
        config.pop("rotating", None)
        write_config(repo.folder, config)
        repo._loaded.clear()
        return result


def renew(repo: Repository, role: str, signers: Sequence[Any] | None = None,
          expires_in: timedelta | None = None, lock_timeout: float | None = None):
    """A new version of an offline role with a new expiry: ``root``,
    ``targets`` or (PEP 458) ``bins``, signed by ``signers`` (default the
    configured root or targets signers).  Returns the PublishResult of the
    snapshot naming it, or None for root."""
    layout = repo.layout
    offline = ("root", "targets", "bins") if layout.kind == "pep458" else ("root",)
    if role not in offline:
        raise FormatError(f"{role} is not an offline role of this {layout.kind} repository "
                          f"(offline: {', '.join(offline)})")
    signers = list(signers or repo.signers("root" if role == "root" else "targets"))
    lifetime = expires_in or repo.expiry[layout.expiry_class(role)]
    started = time.perf_counter()
    with repo.publishing(lock_timeout) as state:
        now = repo.clock().replace(microsecond=0)
        if role == "root":
            version, root = _newest_root(repo)
            _check_threshold(signers, root["roles"]["root"], "root")
            root["version"] = version + 1
            root["expires"] = mio.format_time(now + lifetime)
            _write_root(repo, root, signers)
            return None
        if role == "targets":
            _check_threshold(signers, repo._root()["roles"]["targets"], "targets")
        else:
            targets, _, _ = mio.load(repo._path(mio.role_file("targets", state.meta.version("targets.json"))))
            delegation = [r for r in targets["signed"]["delegations"]["roles"] if r["name"] == "bins"]
            if not delegation:
                raise PublishError("targets does not delegate to bins")
            _check_threshold(signers, delegation[0], "bins")
        envelope, _, _ = mio.load(repo._path(mio.role_file(role, state.meta.version(f"{role}.json"))))
        signed = json.loads(json.dumps(envelope["signed"], default=dict))
        signed["version"] += 1
        signed["expires"] = mio.format_time(now + lifetime)
        mio.write(repo.metadata_dir, mio.role_file(role, signed["version"]), _sign_file(signed, signers),
                  durable=False)
        return repo._commit_versions(state, {role: signed["version"]}, [], now, started, 0)
