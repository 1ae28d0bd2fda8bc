"""Differential test: tufc's Updater against python-tuf's ngclient.

tufc promises python-tuf's behaviour (issue 3: a drop-in for
``tuf.ngclient.Updater``).  Hypothesis generates the history of one
repository (built with python-tuf, tests/repo_builder.py): new versions,
targets (several digest algorithms), expiry and renewal, key rotations
(the new root served or withheld), added keys and thresholds, delegations
(glob patterns, hash prefixes, terminating, a second delegator, succinct
bins), consistent snapshots and meta hashes switched; what an attacker or a
broken mirror serves for one step (wrong keys, too few signatures, replayed
or swapped files, validly signed but odd metadata, missing, truncated,
padded or corrupted files, HTTP errors); what a holder of the snapshot or
timestamp key may sign (dropped or lowered versions, fast-forwarded ones);
and caches changed alike in both clients' folders.  After every change both
clients, each keeping its metadata_dir across steps, run the same actions
against the very same served state: ``refresh()``, ``get_targetinfo()``,
``find_cached_target()``, ``download_target()`` must agree (equal results,
or exceptions of the same class name), and so must the files they leave.
It runs in every pass (native, pure, sanitizers): python-tuf is always the
reference, whichever tufc core is active.

Kept apart from the comparison, because tufc differs on purpose:

* Fast-forward recovery.  When a new root changes the timestamp or snapshot
  keys, the specification (5.3.11) deletes the trusted timestamp and
  snapshot; tufc does, python-tuf keeps them as the rollback baseline
  (test_fast_forward_recovery_follows_the_specification, and
  test_updater_attacks.py::test_fast_forward_recovery_snapshot_key_only).
  The reference client is ngclient with that one step added
  (``SpecStepTufUpdater``), so everything else is still compared.
* Odd metadata forms listed in KNOWN_ODD (wrong JSON types python-tuf
  takes as they are; RFC 3339 dates; a delegation without paths):
  test_odd_metadata_known_differences pins tufc's side; the generator
  leaves them out.
* The differences listed in the brief of issue 3 (one key under two key ids,
  unknown key types or hash algorithms, percent-encoded target URLs,
  duplicate JSON keys, ``bootstrap`` omitted, StorageError being an
  OSError) are never generated: target paths are URL-safe, keys are fresh
  ed25519 keys, digests use algorithms both know, bootstrap is always
  given, root.json in the cache is never touched.
* A delegation to a second delegator (a diamond) only with python-tuf 7 or
  later (python-tuf 6 checks such a role with the first delegator's keys).
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import DelegatedRole, Delegations, Metadata, MetaFile, TargetFile
from tuf.ngclient import Updater as TufUpdater
from tuf.ngclient import UpdaterConfig as TufConfig

from tufc import exceptions as tufc_exceptions
from tufc.updater import Updater as TufcUpdater
from tufc.updater import UpdaterConfig as TufcConfig

from tests.http_repo import HttpRepo
from tests.updater_harness import REFERENCE_MIRRORED
from tests.repo_builder import DEFAULT_EXPIRY, PAST, RepoBuilder

# Target paths the repository may list and clients look up (URL-safe: tufc
# percent-encodes target URLs, python-tuf does not; a known difference).
PATHS = ("a/x.txt", "a/y", "b/x.txt", "c", "bins/p1", "bins/p2.tar.gz", "a/b/x.txt")
DELEGATED_NAMES = ("A", "B", "C", "x y")  # role names are quoted in URLs by both
# Looked up, never listed: how each client matches odd paths to patterns.
ODD_LOOKUPS = ("", "a/", "/a/x.txt", "a//x.txt", "A/X.TXT", "a/x.txt/", "a/./x.txt", "bins/")
PATTERNS = (
    {"paths": ["a/?", "c"]},
    {"paths": ["a/[x-y]*", "b/[!x]*"]},
    {"paths": ["", "*/*/*"]},
    {"paths": ["a/*"]},
    {"paths": ["*"]},
    {"paths": ["b/*", "c"]},
    {"paths": ["*/x.txt"]},
    {"paths": ["a/*/*"]},
    {"path_hash_prefixes": ["0", "1", "2", "3", "4", "5", "6", "7"]},
    {"path_hash_prefixes": ["8", "9", "a", "b", "c", "d", "e", "f"]},
)
# Digests a target lists (python-tuf computes them): the first one names the
# file with consistent snapshots, so each is served (Scenario.serve).
HASH_SETS = (["sha256"], ["sha256"], ["sha512", "sha256"], ["sha384"], ["blake2b-256", "sha256"], ["blake2b"])
# Small limits so "too long" costs little; the same for both clients.
LIMITS = dict(
    root_max_length=64 * 1024,
    timestamp_max_length=4096,
    snapshot_max_length=64 * 1024,
    targets_max_length=64 * 1024,
)
FF_JUMP = 50  # versions an attacker with a role's key skips ahead
# What a step may do, repeated for weight: mostly what repositories do.
CHANGES = (
    ["bump"] * 3 + ["add_target"] * 5 + ["delegate"] * 2 + ["succinct", "expire"] + ["renew"] * 3
    + ["rotate"] * 2 + ["rotate_keytype", "add_key", "threshold", "toggle_consistent", "toggle_meta_hashes"]
    # python-tuf 6 (Python 3.9) checks a role reached through two
    # delegators with the first one's keys only; 7 fixed it
    + (["diamond"] if REFERENCE_MIRRORED else [])
    # an attacker or a broken mirror, this step only
    + ["wrong_key", "below_threshold", "replay", "replay", "swap", "remove", "truncate", "pad"]
    + ["odd_json"] * 3
    # the local caches, changed the same way in both clients' folders
    + ["cache"] * 2
    + ["corrupt_target", "corrupt_target", "http_500"]
    # a misbehaving holder of the snapshot or timestamp key (lasting)
    + ["snapshot_drops", "snapshot_lowers", "timestamp_lowers", "fast_forward"]
)


# --- the two clients ------------------------------------------------------------------------


class SpecStepTufUpdater(TufUpdater):
    """python-tuf's ngclient plus the one step of the specification it
    leaves out (5.3.11): once the root chain changed the timestamp or
    snapshot keys, the cached timestamp and snapshot are deleted, exactly
    when tufc does it (the root trusted before the first root download
    against the final one)."""

    _root_before_download = None  # set by the first root download of a refresh

    def _load_root(self) -> None:
        self._root_before_download = None
        super()._load_root()
        old, new = self._root_before_download, self._trusted_set.root
        if old is not None and any(
            set(old.roles[r].keyids) != set(new.roles[r].keyids)
            for r in ("timestamp", "snapshot")
        ):
            for name in ("timestamp.json", "snapshot.json"):
                try:
                    os.remove(os.path.join(self._dir, name))
                except FileNotFoundError:
                    pass

    def _download_metadata(self, rolename, length, version=None):
        if rolename == "root" and self._root_before_download is None:
            self._root_before_download = self._trusted_set.root
        return super()._download_metadata(rolename, length, version)


@dataclass
class Client:
    """One client's implementation and its folders, kept across steps."""

    name: str
    updater_cls: type
    config_cls: type
    base: pathlib.Path
    started: bool = False

    @property
    def metadata_dir(self) -> pathlib.Path:
        return self.base / "metadata"

    @property
    def target_dir(self) -> pathlib.Path:
        return self.base / "targets"


def outcome(call):
    """What a call did, comparable across the two libraries: ("ok", value)
    or ("error", exception class name)."""
    try:
        return ("ok", call())
    except Exception as exc:  # noqa: BLE001 - every failure is compared
        return ("error", type(exc).__name__)


TUFC_ERRORS = frozenset(
    name for name, cls in vars(tufc_exceptions).items()
    if isinstance(cls, type) and issubclass(cls, tufc_exceptions.TufcError)
)


def error_names(results) -> Iterator[str]:
    """Every exception class name in a client's results: the ("error",
    name) pairs ``outcome`` makes, however deep they sit."""
    if isinstance(results, (list, tuple)):
        if len(results) == 2 and results[0] == "error" and isinstance(results[1], str):
            yield results[1]
        else:
            for part in results:
                yield from error_names(part)


def first_difference(a: str, ra: list, b: str, rb: list) -> str:
    """The first result the clients differ on (for cache contents, the
    file names that differ), short enough to read."""
    for x, y in zip(ra, rb):
        if x == y:
            continue
        if x[0] in ("cache", "targets") and y[0] == x[0]:
            names = sorted(n for n in set(x[1]) | set(y[1]) if x[1].get(n) != y[1].get(n))
            return f"{x[0]} differs in {names}"
        return f"{a}: {x}\n{b}: {y}"
    return f"{a}: {ra[len(rb):]}\n{b}: {rb[len(ra):]}"


def target_summary(info):
    if info is None:
        return None
    return (info.path, info.length, dict(info.hashes))


def cache_state(folder: pathlib.Path) -> dict[str, bytes]:
    """Every metadata file a client left (symlinks followed), by name."""
    state = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = pathlib.Path(dirpath, name)
            if name.endswith(".json"):
                state[str(path.relative_to(folder))] = path.read_bytes()
    return state


# --- one scenario: a repository, a server, two clients --------------------------------------


@dataclass(repr=False)
class Scenario:
    """The repository, what the server serves of it this step, the two
    clients, and what a failure report needs (``log``)."""

    repo: RepoBuilder
    server: HttpRepo
    clients: list[Client]
    config: dict
    history: dict[str, dict[int, bytes]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    pending_reset: list = field(default_factory=list)
    focus: str | None = None  # a target path this step is about
    root_signers: dict = field(default_factory=dict)  # every root key ever

    @property
    def metadata_url(self) -> str:
        return self.server.url + "metadata/"

    # -- the served state --------------------------------------------------------------------

    def serve(self) -> None:
        """Serve the repository as it is (no transient fault left)."""
        files = {
            "metadata/" + urllib.parse.unquote(n): d
            for n, d in self.repo.metadata_files().items()
        }
        files.update({"targets/" + n: d for n, d in self.repo.target_files().items()})
        if self.repo.consistent_snapshot:
            for role in targets_roles(self.repo):
                for path, target in self.repo.md[role].signed.targets.items():
                    data = self.repo.targets_data.get(path)
                    if data is None:
                        continue
                    dirname, sep, basename = path.rpartition("/")
                    for digest in target.hashes.values():
                        files.setdefault(f"targets/{dirname}{sep}{digest}.{basename}", data)
        self.server.files.clear()
        self.server.files.update(files)
        self.server.errors.clear()
        self.root_signers.update(dict.fromkeys(self.repo.signers["root"]))
        for role in self.repo.md:
            versions = self.history.setdefault(role, {})
            data = self.repo.role_bytes(role)
            versions.setdefault(Metadata.from_bytes(data).signed.version, data)

    def publish(self) -> None:
        self.repo.publish()
        self.serve()

    def served_name(self, role: str) -> str:
        if role == "root":
            return f"metadata/{len(self.repo.root_history)}.root.json"
        return "metadata/" + urllib.parse.unquote(self.repo.metadata_name(role))

    def target_name(self, path: str) -> str:
        return "targets/" + self.repo.target_name(path)

    # -- the clients --------------------------------------------------------------------------

    def run_clients(self, action: dict) -> None:
        """Run ``action`` with both clients; fail when they disagree, or
        when tufc fails with anything but its own exception classes (two
        clients both raising a bare KeyError would otherwise agree).  The
        one exception is RuntimeError, python-tuf's answer to a caller's
        bug that tufc mirrors: a second refresh of one Updater, including
        the one ``get_targetinfo`` starts after a failed refresh."""
        results = {c.name: self.run_client(c, action) for c in self.clients}
        tufc_results = results.get("tufc", [])
        foreign = sorted(set(error_names(tufc_results)) - TUFC_ERRORS - {"RuntimeError"})
        if foreign:
            raise AssertionError(
                f"tufc raised {foreign}, not from tufc.exceptions\n" + "\n".join(self.log)
                + f"\ntufc: {[e for e in tufc_results if e[0] not in ('cache', 'targets')]}"
            )
        (a, ra), (b, rb) = results.items()
        if ra != rb:
            raise AssertionError(
                "clients disagree\n" + "\n".join(self.log) + "\n" + first_difference(a, ra, b, rb)
            )

    def run_client(self, client: Client, action: dict) -> list:
        """A new Updater on the client's folders runs ``action``: the list
        of what each call returned or raised, then the files left."""
        seen = []
        kw = dict(
            target_dir=str(client.target_dir),
            target_base_url=self.server.url + "targets/",
            config=client.config_cls(**self.config),
        )
        if not client.started or action["bootstrap"] == "v1":
            kw["bootstrap"] = self.repo.root_bytes(1)
        elif action["bootstrap"] == "newest":  # an application shipping a newer root
            kw["bootstrap"] = self.repo.root_bytes(len(self.repo.root_history))
        else:
            kw["bootstrap"] = None  # the cached root.json
        made = outcome(lambda: client.updater_cls(str(client.metadata_dir), self.metadata_url, **kw))
        client.started = True
        if made[0] == "error":
            return [("init", made)]
        updater = made[1]
        if action["refresh"]:
            seen.append(("refresh", outcome(updater.refresh)))
        for path in action["paths"]:
            found = outcome(lambda: updater.get_targetinfo(path))
            seen.append(("get", path, (found[0], target_summary(found[1]) if found[0] == "ok" else found[1])))
            if found[0] == "ok" and found[1] is not None:
                cached = outcome(lambda: updater.find_cached_target(found[1]))
                seen.append(("cached", path, cached[0], cached[1] is None))
            if found[0] == "ok" and found[1] is not None and action["download"]:
                got = outcome(lambda: updater.download_target(found[1]))
                if got[0] == "ok":
                    got = ("ok", pathlib.Path(got[1]).read_bytes())
                seen.append(("download", path, got))
        if action.get("refresh_again"):
            seen.append(("refresh again", outcome(updater.refresh)))
        seen.append(("cache", cache_state(client.metadata_dir)))
        seen.append(("targets", cache_state_all(client.target_dir)))
        return seen


def cache_state_all(folder: pathlib.Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file()
    }


# --- repository changes and attacks ---------------------------------------------------------


def targets_roles(repo: RepoBuilder) -> list[str]:
    return [r for r in repo.md if r not in ("root", "timestamp", "snapshot")]


def is_bin(repo: RepoBuilder, role: str) -> bool:
    """A succinct hash bin (they share keys: rotated together only)."""
    return role.startswith("bin-") and repo.delegator_of(role) == "bins"


def threshold_of(repo: RepoBuilder, role: str) -> int:
    delegator = repo.delegator_of(role)
    return repo.md[delegator].signed.get_delegated_role(role).threshold


_RSA_SIGNERS: list = []


def rsa_signer() -> CryptoSigner:
    """One RSA signer for the whole run (generating one takes long)."""
    if not _RSA_SIGNERS:
        _RSA_SIGNERS.append(CryptoSigner.generate_rsa())
    return _RSA_SIGNERS[0]


def forge(md_bytes: bytes, signers, mutate=None) -> bytes:
    """``md_bytes`` (optionally changed) signed by ``signers`` only."""
    md = Metadata.from_bytes(md_bytes)
    if mutate is not None:
        mutate(md.signed)
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)
    return md.to_bytes()


def forge_json(data: bytes, signers, mutate) -> bytes:
    """``data`` with its JSON changed by ``mutate(envelope)`` (anything JSON
    can hold, valid TUF or not) and the signed part signed by ``signers``
    over its canonical form, as securesystemslib encodes it."""
    envelope = json.loads(data)
    sign_after = mutate(envelope)
    if not callable(sign_after):
        sign_after = None
    payload = encode_canonical(envelope["signed"]).encode("utf-8")
    envelope["signatures"] = [
        {"keyid": s.public_key.keyid, "sig": s.sign(payload).signature} for s in signers
    ]
    if sign_after is not None:
        replaced = sign_after(envelope["signatures"])
        if isinstance(replaced, dict):
            envelope["signatures"] = replaced
    return json.dumps(envelope).encode("utf-8")


def _set(key, value):
    def mutate(envelope):
        envelope["signed"][key] = value
    return mutate


def _drop(key):
    def mutate(envelope):
        envelope["signed"].pop(key, None)
    return mutate


def _each_entry(container, key, value):
    """Set ``key`` in every entry of signed[container] (meta or targets)."""
    def mutate(envelope):
        for entry in envelope["signed"].get(container, {}).values():
            if value is _DROP:
                entry.pop(key, None)
            else:
                entry[key] = value
    return mutate


def _hashes_upper(container):
    """Every listed digest of signed[container] in upper-case hex."""
    def mutate(envelope):
        for entry in envelope["signed"].get(container, {}).values():
            if "hashes" in entry:
                entry["hashes"] = {k: v.upper() for k, v in entry["hashes"].items()}
    return mutate


def _signatures(change):
    def mutate(envelope):
        return change
    return mutate


_DROP = object()

# Metadata that is validly signed but odd or invalid as TUF: (label, role
# type it applies to or None for all, mutation).  python-tuf's Metadata API
# and tufc's parser must agree on accept/refuse and on the exception.
ODD_JSON = [
    ("version 0", None, _set("version", 0)),
    ("version -1", None, _set("version", -1)),
    ("version as string", None, _set("version", "2")),
    ("version true", None, _set("version", True)),
    ("huge version", None, _set("version", 2**70)),
    ("spec_version 2.0.0", None, _set("spec_version", "2.0.0")),
    ("spec_version 1.0", None, _set("spec_version", "1.0")),
    ("spec_version 1.99.1", None, _set("spec_version", "1.99.1")),
    ("spec_version 1.0.0-rc1", None, _set("spec_version", "1.0.0-rc1")),
    ("spec_version as number", None, _set("spec_version", 1)),
    ("no spec_version", None, _drop("spec_version")),
    ("no expires", None, _drop("expires")),
    ("expires as number", None, _set("expires", 4102444800)),
    ("expires without Z", None, _set("expires", "2099-01-01T00:00:00")),
    ("expires month 13", None, _set("expires", "2099-13-01T00:00:00Z")),
    ("expires 2000 (expired)", None, _set("expires", "2000-01-01T00:00:00Z")),
    ("_type capitalised", None, lambda e: e["signed"].__setitem__("_type", e["signed"]["_type"].capitalize())),
    ("no _type", None, _drop("_type")),
    ("an unknown field", None, _set("x-unknown", {"a": [1, None, True]})),
    ("signed as a list", None, lambda e: e.__setitem__("signed", [e["signed"]])),
    ("an unknown envelope field", None, lambda e: e.__setitem__("x", 1)),
    ("a signature listed twice", None, _signatures(lambda sigs: sigs.append(dict(sigs[0])) if sigs else None)),
    ("signature hex in upper case", None, _signatures(lambda sigs: [s.__setitem__("sig", s["sig"].upper()) for s in sigs])),
    ("signature empty", None, _signatures(lambda sigs: [s.__setitem__("sig", "") for s in sigs])),
    ("signature not hex", None, _signatures(lambda sigs: [s.__setitem__("sig", "zz" * 64) for s in sigs])),
    ("signature keyid unknown", None, _signatures(lambda sigs: [s.__setitem__("keyid", "ab" * 32) for s in sigs])),
    ("signatures not a list", None, _signatures(lambda sigs: {"list": sigs})),
    ("meta version 0", "snapshot", _each_entry("meta", "version", 0)),
    ("meta version as string", "snapshot", _each_entry("meta", "version", "1")),
    ("meta length -1", "snapshot", _each_entry("meta", "length", -1)),
    ("meta hashes empty", "snapshot", _each_entry("meta", "hashes", {})),
    ("meta hash not hex", "snapshot", _each_entry("meta", "hashes", {"sha256": "xyz"})),
    ("meta unknown field", "snapshot", _each_entry("meta", "x", 1)),
    ("timestamp meta version 0", "timestamp", _each_entry("meta", "version", 0)),
    ("timestamp meta hash in upper case", "timestamp", _hashes_upper("meta")),
    ("timestamp meta length -1", "timestamp", _each_entry("meta", "length", -1)),
    ("timestamp meta hashes empty", "timestamp", _each_entry("meta", "hashes", {})),
    ("timestamp meta names another file", "timestamp", lambda e: e["signed"].__setitem__("meta", {"snapshot2.json": {"version": 1}})),
    ("timestamp meta with a second entry", "timestamp", lambda e: e["signed"]["meta"].__setitem__("targets.json", {"version": 1})),
    ("target length -1", "targets", _each_entry("targets", "length", -1)),
    ("target length as string", "targets", _each_entry("targets", "length", "5")),
    ("target hashes empty", "targets", _each_entry("targets", "hashes", {})),
    ("target hash in upper case", "targets", _hashes_upper("targets")),
    ("target without hashes", "targets", _each_entry("targets", "hashes", _DROP)),
    ("target hash not hex", "targets", _each_entry("targets", "hashes", {"sha256": "not hex"})),
    ("target custom field", "targets", _each_entry("targets", "custom", {"k": "v"})),
    ("target custom not an object", "targets", _each_entry("targets", "custom", "v")),
    ("no targets field", "targets", _drop("targets")),
    ("delegations empty object", "targets", _set("delegations", {})),
    ("delegations without roles", "targets", _set("delegations", {"keys": {}})),
    ("delegations with no roles", "targets", _set("delegations", {"keys": {}, "roles": []})),
    ("consistent_snapshot as string", "root", _set("consistent_snapshot", "true")),
    ("no consistent_snapshot", "root", _drop("consistent_snapshot")),
    ("root threshold 0", "root", lambda e: e["signed"]["roles"]["root"].__setitem__("threshold", 0)),
    ("timestamp role missing", "root", lambda e: e["signed"]["roles"].pop("timestamp")),
    ("an extra role", "root", lambda e: e["signed"]["roles"].__setitem__("mirror", {"keyids": [], "threshold": 1})),
    ("a role keyid listed twice", "root", lambda e: e["signed"]["roles"]["snapshot"]["keyids"].extend(e["signed"]["roles"]["snapshot"]["keyids"])),
    ("a role naming an unknown keyid", "root", lambda e: e["signed"]["roles"]["targets"]["keyids"].append("cd" * 32)),
    ("expires in lower case t and z", None, _set("expires", "2099-01-01t00:00:00z")),
    ("expires with a UTC offset", None, _set("expires", "2099-01-01T00:00:00+00:00")),
    ("expires with a fraction", None, _set("expires", "2099-01-01T00:00:00.25Z")),
    ("delegation without terminating", "targets", lambda e: [
        r.pop("terminating", None) for r in (e["signed"].get("delegations") or {}).get("roles", [])]),
    ("expires at a leap second", None, _set("expires", "2098-12-31T23:59:60Z")),
    ("expires on 30 February", None, _set("expires", "2099-02-30T00:00:00Z")),
    ("expires in year 10000", None, _set("expires", "10000-01-01T00:00:00Z")),
    ("signature keyid in upper case", None, _signatures(lambda sigs: [s.__setitem__("keyid", s["keyid"].upper()) for s in sigs])),
    ("delegation with paths and hash prefixes", "targets", lambda e: [
        r.__setitem__("path_hash_prefixes", ["ab"]) for r in (e["signed"].get("delegations") or {}).get("roles", [])]),
    ("delegation terminating as string", "targets", lambda e: [
        r.__setitem__("terminating", "false") for r in (e["signed"].get("delegations") or {}).get("roles", [])]),
    ("delegation threshold 0", "targets", lambda e: [
        r.__setitem__("threshold", 0) for r in (e["signed"].get("delegations") or {}).get("roles", [])]),
    ("delegation without paths", "targets", lambda e: [
        r.pop("paths", None) for r in (e["signed"].get("delegations") or {}).get("roles", [])]),
    ("delegated role listed twice", "targets", lambda e: (e["signed"].get("delegations") or {}).get("roles", []).extend(
        (e["signed"].get("delegations") or {}).get("roles", [])[:1])),
    ("delegated role named targets", "targets", lambda e: [
        r.__setitem__("name", "targets") for r in (e["signed"].get("delegations") or {}).get("roles", [])]),
    ("delegations and succinct roles", "targets", lambda e: e["signed"].get("delegations", {}).__setitem__(
        "succinct_roles", {"keyids": [], "threshold": 1, "bit_length": 2, "name_prefix": "bin"})),
]

# Where tufc and python-tuf differ on purpose, by label (not generated;
# test_odd_metadata_known_differences pins tufc's side):
#   "stricter": a wrongly typed value the specification does not allow;
#     tufc refuses the metadata (DeserializationError) where python-tuf
#     takes it as it is (true as version 1, "true" or "false" as a true
#     boolean, a non-hex digest that fails only later, a second timestamp
#     entry python-tuf drops and then fails the signature on).
#   "lenient": what tufc accepts on purpose: RFC 3339 forms of expires
#     (Sigstore's first roots have offsets and fractions; python-tuf
#     re-serializes the date and fails the signature), and a delegation with
#     neither paths nor path_hash_prefixes, which the specification allows
#     ("OPTIONAL, if used, exactly one of them") and python-tuf refuses.
KNOWN_ODD = {
    "version true": "stricter",
    "meta hash not hex": "stricter",
    "timestamp meta with a second entry": "stricter",
    "target hash not hex": "stricter",
    "consistent_snapshot as string": "stricter",
    "delegation terminating as string": "stricter",
    "expires in lower case t and z": "lenient",
    "expires with a UTC offset": "lenient",
    "expires with a fraction": "lenient",
    "delegation without paths": "lenient",
}


@st.composite
def change(draw, sc: Scenario) -> str:
    """Apply one drawn repository change or attack to ``sc``; describe it."""
    repo = sc.repo
    roles = list(repo.md)
    sc.serve()  # the last step's faults are gone
    kind = draw(st.sampled_from(CHANGES))
    if kind == "bump":
        role = draw(st.sampled_from(roles))
        repo.bump(role)
        sc.publish()
        return f"bump {role}"
    if kind == "add_target":
        role = draw(st.sampled_from(targets_roles(repo)))
        path = draw(st.sampled_from(PATHS))
        if path.startswith("bins/") and "bins" in repo.md and repo.md["bins"].signed.delegations:
            if draw(st.booleans()):
                role = repo.bin_for("bins", path)
        data = draw(st.binary(min_size=0, max_size=40))
        repo.add_target(path, data, role=role)
        algorithms = draw(st.sampled_from(HASH_SETS))
        if algorithms != ["sha256"]:
            repo.md[role].signed.targets[path] = TargetFile.from_data(path, data, algorithms)
        sc.publish()
        return f"add target {path!r} ({len(data)} bytes, {algorithms}) to {role}"
    if kind == "delegate":
        parents = [
            r for r in targets_roles(repo)
            if not is_bin(repo, r)
            and not (repo.md[r].signed.delegations and repo.md[r].signed.delegations.succinct_roles)
        ]
        free = [n for n in DELEGATED_NAMES if n not in repo.md]
        if not free:
            return "no delegation (all names used)"
        parent = draw(st.sampled_from(parents))
        name = draw(st.sampled_from(free))
        pattern = draw(st.sampled_from(PATTERNS))
        terminating = draw(st.booleans())
        keys = draw(st.integers(1, 2))
        threshold = draw(st.integers(1, keys))
        repo.add_delegation(parent, name, terminating=terminating, keys=keys, threshold=threshold, **pattern)
        sc.publish()
        return f"delegate {parent} -> {name} {pattern} terminating={terminating} {threshold}/{keys}"
    if kind == "succinct":
        if "bins" in repo.md:
            return "no succinct delegation (done already)"
        bits = draw(st.integers(1, 3))
        repo.add_delegation("targets", "bins", paths=["bins/*"], terminating=draw(st.booleans()))
        repo.add_succinct_roles("bins", bits, "bin")
        sc.publish()
        return f"delegate targets -> bins (bins/*) -> {2 ** bits} succinct bins"
    if kind == "expire":
        role = draw(st.sampled_from(roles))
        repo.expire(role, PAST)
        sc.publish()
        return f"expire {role}"
    if kind == "renew":
        expired = [r for r in roles if repo.md[r].signed.expires < DEFAULT_EXPIRY]
        if not expired:
            repo.bump("targets")
            sc.publish()
            return "bump targets (nothing expired to renew)"
        role = draw(st.sampled_from(expired))
        repo.expire(role, DEFAULT_EXPIRY)
        sc.publish()
        return f"renew {role}"
    if kind == "rotate":
        role = draw(st.sampled_from(roles))
        count = draw(st.integers(1, 3))
        threshold = draw(st.integers(1, count))
        repo.rotate_keys(role, count=count, threshold=threshold)
        sc.publish()
        hide_root = repo.delegator_of(role) == "root" and draw(st.booleans())
        if hide_root:  # the new root is not published (yet)
            del sc.server.files[sc.served_name("root")]
            sc.server.files["metadata/root.json"] = repo.root_bytes(len(repo.root_history) - 1)
        return f"rotate {role} keys: {threshold}/{count}" + (", new root not served" if hide_root else "")
    if kind == "diamond":
        # a second delegator for an existing role, with the same keys
        children = [r for r in targets_roles(repo) if r != "targets" and not is_bin(repo, r) and r != "bins"]
        if not children:
            return "no second delegation (no delegated role)"
        child = draw(st.sampled_from(children))
        first = repo.md[repo.delegator_of(child)].signed
        parents = [
            r for r in targets_roles(repo)
            if r != child and not is_bin(repo, r)
            and not (repo.md[r].signed.delegations and repo.md[r].signed.delegations.succinct_roles)
            and not (repo.md[r].signed.delegations and child in (repo.md[r].signed.delegations.roles or {}))
        ]
        if not parents:
            return "no second delegation (no other delegator)"
        parent = draw(st.sampled_from(parents))
        role = first.get_delegated_role(child)
        signed = repo.md[parent].signed
        if signed.delegations is None:
            signed.delegations = Delegations({}, roles={})
        for keyid in role.keyids:
            signed.delegations.keys[keyid] = first.delegations.keys[keyid]
        pattern = draw(st.sampled_from(PATTERNS))
        signed.delegations.roles[child] = DelegatedRole(
            child, list(role.keyids), role.threshold, draw(st.booleans()),
            pattern.get("paths"), pattern.get("path_hash_prefixes"),
        )
        repo.bump(parent)
        sc.publish()
        return f"delegate {parent} -> {child} too {pattern}"
    if kind == "toggle_consistent":
        value = not repo.consistent_snapshot
        repo.consistent_snapshot = value
        repo.root.consistent_snapshot = value
        repo.bump("root")
        sc.publish()
        return f"root v{repo.root.version}: consistent_snapshot={value}"
    if kind == "toggle_meta_hashes":
        repo.meta_hashes = not repo.meta_hashes
        repo.bump("targets")
        sc.publish()
        return f"snapshot and timestamp {'list' if repo.meta_hashes else 'omit'} hashes"
    if kind == "rotate_keytype":
        # python-tuf's builder makes ed25519 keys; ECDSA and RSA keys (and
        # so tufc's OpenSSL paths) come in by rotation
        role = draw(st.sampled_from([r for r in roles if not is_bin(repo, r)]))
        keytype = draw(st.sampled_from(["ecdsa", "rsa"]))
        signer = CryptoSigner.generate_ecdsa() if keytype == "ecdsa" else rsa_signer()
        delegator = repo.md[repo.delegator_of(role)].signed
        for keyid in list(delegator.get_delegated_role(role).keyids):
            delegator.revoke_key(keyid, role)
        delegator.add_key(signer.public_key, role)
        delegator.get_delegated_role(role).threshold = 1
        repo.signers[role] = [signer]
        repo.bump(repo.delegator_of(role))
        repo.bump(role)
        sc.publish()
        return f"rotate {role} to one {keytype} key"
    if kind in ("add_key", "threshold"):
        role = draw(st.sampled_from([r for r in roles if not is_bin(repo, r)]))
        if kind == "add_key":
            repo.add_key(role)
        count = len(repo.signers[role])
        threshold = draw(st.integers(1, count))
        repo.set_threshold(role, threshold)
        sc.publish()
        return f"{kind} {role}: now {threshold}/{count}"
    # -- attacks on what is served this step (the repository is unchanged) --
    if kind in ("wrong_key", "below_threshold", "replay", "swap", "remove", "truncate", "pad", "http_500", "odd_json"):
        role = draw(st.sampled_from(roles))
        name = sc.served_name(role)
        if name not in sc.server.files:
            return f"no {kind} ({name} not served)"
        data = sc.server.files[name]
        if kind == "wrong_key":
            sc.server.files[name] = forge(data, [CryptoSigner.generate_ed25519()])
        elif kind == "below_threshold":
            keep = threshold_of(repo, role) - 1
            sc.server.files[name] = forge(data, repo.signers[role][:keep])
        elif kind == "replay":
            if role == "root":
                older = list(range(1, len(repo.root_history)))
                if not older:
                    return "no replay (one root only)"
                version = draw(st.sampled_from(older))
                sc.server.files[name] = repo.root_bytes(version)
            else:
                current = Metadata.from_bytes(data).signed.version
                older = sorted(v for v in sc.history.get(role, {}) if v < current)
                if not older:
                    return f"no replay ({role} has one version)"
                version = draw(st.sampled_from(older))
                sc.server.files[name] = sc.history[role][version]
            return f"serve {role} v{version} as {name}"
        elif kind == "odd_json":
            kind_of = Metadata.from_bytes(data).signed.type
            choices = [m for m in ODD_JSON if m[1] in (None, kind_of) and m[0] not in KNOWN_ODD]
            label, _, mutate = draw(st.sampled_from(choices))
            # a new root is signed by the previous root's keys too
            signers = list(sc.root_signers) if role == "root" else repo.signers[role]
            sc.server.files[name] = forge_json(data, signers, mutate)
            return f"serve {name} signed but {label}"
        elif kind == "swap":
            other = draw(st.sampled_from([r for r in roles if r != role]))
            sc.server.files[name] = repo.role_bytes(other)
            return f"serve {other} as {name}"
        elif kind == "remove":
            del sc.server.files[name]
        elif kind == "truncate":
            cut = draw(st.integers(0, len(data) - 1))
            sc.server.files[name] = data[:cut]
            return f"truncate {name} to {cut} bytes"
        elif kind == "pad":
            big = draw(st.booleans())
            sc.server.files[name] = data + (b" " * (70 * 1024) if big else b"\n")
            return f"pad {name} ({'past the limits' if big else 'one byte'})"
        elif kind == "http_500":
            sc.server.errors[name] = draw(st.sampled_from([500, 403, 404]))
            return f"HTTP {sc.server.errors[name]} for {name}"
        return f"{kind} {name}"
    if kind == "cache":
        role = draw(st.sampled_from(roles))
        file = urllib.parse.quote(role, safe="") + ".json"
        if role == "root":
            # an older root in root_history/ (read again when the client
            # bootstraps from v1); never the one root.json points to
            trusted = [int(p.name.split(".")[0]) for p in (sc.clients[0].metadata_dir / "root_history").glob("*.root.json")]
            older = sorted(v for v in trusted if 1 < v < max(trusted)) if trusted else []
            if not older:
                return "no cache change (no older root cached)"
            file = f"root_history/{draw(st.sampled_from(older))}.root.json"
        versions = sorted(sc.history.get(role, {}))
        how = draw(st.sampled_from(["delete", "another version", "truncate", "garbage"]))
        version = draw(st.sampled_from(versions)) if versions else None
        for client in sc.clients:
            path = client.metadata_dir / file
            if not path.exists():
                continue
            if how == "delete":
                path.unlink()
            elif how == "another version" and version is not None:
                # any version the repository ever published for the role
                path.write_bytes(sc.history[role][version])
            elif how == "truncate":
                path.write_bytes(path.read_bytes()[:40])
            elif how == "garbage":
                path.write_bytes(b"\x00not json")
        return f"cache: {how} {file}" + (f" (v{version})" if how == "another version" else "")
    if kind == "corrupt_target":
        if not repo.targets_data:
            return "no target to corrupt"
        path = draw(st.sampled_from(sorted(repo.targets_data)))
        name = sc.target_name(path)
        data = sc.server.files[name]
        how = draw(st.sampled_from(["remove", "truncate", "longer", "flip"]))
        if how == "remove":
            del sc.server.files[name]
        elif how == "truncate":
            sc.server.files[name] = data[: len(data) // 2] if data else b""
        elif how == "longer":
            sc.server.files[name] = data + b"!"
        elif data:
            sc.server.files[name] = bytes([data[0] ^ 1]) + data[1:]
        sc.focus = path
        return f"target {path}: {how}"
    # -- a repository whose snapshot/timestamp key holder misbehaves (lasting) --
    if kind == "snapshot_drops":
        listed = sorted(repo.md["snapshot"].signed.meta)
        if not listed:
            return "no drop (snapshot lists nothing)"
        entry = draw(st.sampled_from(listed))
        del repo.md["snapshot"].signed.meta[entry]
        repo.bump("snapshot")
        sc.publish()
        return f"snapshot drops {entry}"
    if kind == "snapshot_lowers":
        meta = repo.md["snapshot"].signed.meta
        if not meta:
            return "no lowering (snapshot lists nothing)"
        entry = draw(st.sampled_from(sorted(meta)))
        if meta[entry].version < 2:
            return f"no lowering ({entry} is v1)"
        meta[entry] = MetaFile(meta[entry].version - 1)
        repo.bump("snapshot")
        sc.publish()
        return f"snapshot lowers {entry}"
    if kind == "timestamp_lowers":
        timestamp = repo.md["timestamp"].signed
        if timestamp.snapshot_meta.version < 2:
            return "no lowering (snapshot is v1)"
        timestamp.version += 1
        timestamp.snapshot_meta = MetaFile(timestamp.snapshot_meta.version - 1)
        repo.sign("timestamp")
        sc.serve()
        return "timestamp names an older snapshot"
    if kind == "fast_forward":
        role = draw(st.sampled_from([r for r in roles if r != "root"]))
        signed = repo.md[role].signed
        real = signed.version
        signed.version = real + FF_JUMP - 1
        repo.bump(role)
        sc.publish()
        # after this step the repository goes on from the real version
        sc.pending_reset.append((role, real))
        return f"fast-forward {role} to v{real + FF_JUMP}"
    raise AssertionError(kind)  # pragma: no cover


@st.composite
def client_action(draw, focus: str | None) -> dict:
    paths = draw(st.lists(st.sampled_from(PATHS * 3 + ODD_LOOKUPS), max_size=3, unique=True))
    if focus is not None and focus not in paths:
        paths.append(focus)
    return dict(
        refresh=not paths or draw(st.booleans()),
        paths=paths,
        download=focus is not None or draw(st.booleans()),
        bootstrap=draw(st.sampled_from(["cache"] * 4 + ["v1", "newest"])),
        refresh_again=draw(st.integers(0, 7)) == 0,  # misuse: once is the rule
    )


def make_clients(base: pathlib.Path) -> list[Client]:
    return [
        Client("tufc", TufcUpdater, TufcConfig, base / "tufc"),
        Client("python-tuf", SpecStepTufUpdater, TufConfig, base / "python-tuf"),
    ]


@pytest.fixture(scope="module")
def module_server():
    with HttpRepo() as http:
        yield http


def new_scenario(server: HttpRepo, base: pathlib.Path, config: dict, **builder_kw) -> Scenario:
    """A repository with two targets, served, and two clients without cache."""
    repo = RepoBuilder(**builder_kw)
    repo.add_target("a/x.txt", b"first")
    repo.add_target("c", b"")
    repo.publish()
    sc = Scenario(repo, server, make_clients(base), config)
    sc.log.append(
        f"repository: consistent_snapshot={repo.consistent_snapshot} "
        f"meta_hashes={repo.meta_hashes}; config {config}"
    )
    sc.serve()
    return sc


def run_scenario(data, server: HttpRepo, steps: int) -> None:
    """Draw a repository, then ``steps`` steps of one change and one client
    action each; fail on the first step where the clients disagree."""
    builder_kw = dict(
        consistent_snapshot=data.draw(st.booleans(), label="consistent_snapshot"),
        meta_hashes=data.draw(st.booleans(), label="meta_hashes"),
    )
    config = dict(LIMITS)
    config["max_root_rotations"] = data.draw(st.sampled_from([256, 2]), label="max_root_rotations")
    config["max_delegations"] = data.draw(st.sampled_from([32, 2]), label="max_delegations")
    with tempfile.TemporaryDirectory() as tmp:
        sc = new_scenario(server, pathlib.Path(tmp), config, **builder_kw)
        for step in range(steps):
            what = "initial repository" if step == 0 else data.draw(change(sc))
            action = data.draw(client_action(sc.focus))
            sc.focus = None
            sc.log.append(f"step {step}: {what}; clients: {action}")
            note(sc.log[-1])
            sc.run_clients(action)
            for role, version in sc.pending_reset:
                sc.repo.md[role].signed.version = version
            sc.pending_reset.clear()


@settings(
    max_examples=min(40, settings().max_examples),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(st.data())
def test_clients_agree(module_server, data):
    steps = data.draw(st.integers(2, 14), label="steps")
    run_scenario(data, module_server, steps)


# --- the comparison is not vacuous ---------------------------------------------------------------

REFRESH = dict(refresh=True, paths=[], download=False, bootstrap="cache")


def test_a_planted_difference_is_caught(monkeypatch, module_server, tmp_path):
    """With tufc's snapshot rollback check disabled, a snapshot that lowers
    the targets version is accepted by tufc only: the scenario says so."""
    sc = new_scenario(module_server, tmp_path, dict(LIMITS))
    sc.run_clients(REFRESH)
    sc.repo.bump("targets")
    sc.publish()
    sc.run_clients(REFRESH)
    sc.repo.md["snapshot"].signed.meta["targets.json"] = MetaFile(1)
    sc.repo.bump("snapshot")
    sc.publish()
    monkeypatch.setattr(
        "tufc._trusted.TrustedMetadataSet._check_snapshot_rollback",
        staticmethod(lambda old, new: None),
    )
    with pytest.raises(AssertionError, match="clients disagree"):
        sc.run_clients(REFRESH)


def test_a_bare_exception_is_caught_even_when_both_raise_it(monkeypatch, module_server, tmp_path):
    """Agreement is not enough: tufc failing with a bare KeyError fails the
    scenario even when python-tuf fails the same way."""
    sc = new_scenario(module_server, tmp_path, dict(LIMITS))

    def lookup_fails(self, path):
        raise KeyError(path)

    monkeypatch.setattr(TufcUpdater, "get_targetinfo", lookup_fails)
    monkeypatch.setattr(TufUpdater, "get_targetinfo", lookup_fails)
    with pytest.raises(AssertionError, match=r"tufc raised \['KeyError'\]"):
        sc.run_clients(dict(REFRESH, paths=["a/x.txt"]))


def test_a_planted_difference_is_generated(monkeypatch, module_server):
    """The generator reaches a difference by itself: tufc reporting a
    rollback under another exception class name is found."""
    from tufc import exceptions

    class RollbackError(exceptions.BadVersionNumberError):
        pass

    monkeypatch.setattr("tufc._trusted.BadVersionNumberError", RollbackError)

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],  # no shrinking: finding it is the point
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def search(data):
        run_scenario(data, module_server, data.draw(st.integers(2, 10), label="steps"))

    with pytest.raises(AssertionError, match="RollbackError"):
        search()


# --- disagreements found, reduced -------------------------------------------------------------


def test_fast_forward_recovery_follows_the_specification(module_server, tmp_path):
    """Found by the generator (with plain ngclient as the reference): a
    snapshot dropping targets.json is refused by both (RepositoryError);
    then a new root adds a timestamp key.  The specification (5.3.11)
    deletes the trusted timestamp and snapshot on such a rotation, so tufc
    no longer holds snapshot v2 as the rollback baseline: it accepts
    snapshot v3 and fails later, at targets.json missing from it.  python-tuf
    keeps v2 and refuses v3 itself.  Same exception, different cache: tufc
    keeps its (specified) behaviour, and the comparison adds the step to
    python-tuf (``SpecStepTufUpdater``)."""
    sc = new_scenario(module_server, tmp_path, dict(LIMITS), consistent_snapshot=False)
    plain = Client("plain python-tuf", TufUpdater, TufConfig, tmp_path / "plain")

    def step():
        sc.run_clients(REFRESH)
        return sc.run_client(plain, REFRESH)

    step()
    del sc.repo.md["snapshot"].signed.meta["targets.json"]
    sc.repo.bump("snapshot")
    sc.publish()
    assert step()[0] == ("refresh", ("error", "RepositoryError"))
    sc.repo.add_key("timestamp")
    sc.publish()
    assert step()[0] == ("refresh", ("error", "RepositoryError"))

    def cached_snapshot_version(client: Client) -> int:
        data = (client.metadata_dir / "snapshot.json").read_bytes()
        return Metadata.from_bytes(data).signed.version

    assert cached_snapshot_version(sc.clients[0]) == 3  # tufc
    assert cached_snapshot_version(plain) == 2


# --- every odd metadata form, once --------------------------------------------------------------


def odd_cases(known: bool) -> list:
    """(label, role, mutate) for each ODD_JSON entry and each role it
    applies to ("A", a delegated role, stands for targets roles too)."""
    roles_of = {None: ["root", "timestamp", "snapshot", "A"], "targets": ["targets", "A"]}
    return [
        pytest.param(label, role, mutate, id=f"{label}-{role}")
        for label, role_type, mutate in ODD_JSON
        if (label in KNOWN_ODD) == known
        # "A" delegates nothing: delegation changes apply to targets only
        for role in (["targets"] if label.startswith("delegat") else roles_of.get(role_type, [role_type]))
    ]


def serve_odd(sc: Scenario, role: str, mutate) -> None:
    """A repository delegating a/* to "A"; after a first refresh of both
    clients, the next version of ``role`` is served changed by ``mutate``
    and signed by the right keys."""
    sc.repo.add_delegation("targets", "A", paths=["a/*"])
    sc.repo.add_target("a/y", b"in A", role="A")
    sc.publish()
    sc.run_clients(dict(REFRESH, paths=["a/y"]))
    sc.repo.bump(role)
    if role == "timestamp":
        sc.repo.bump("targets")  # a new snapshot to check against it
    sc.publish()
    name = sc.served_name(role)
    signers = list(sc.root_signers) if role == "root" else sc.repo.signers[role]
    sc.server.files[name] = forge_json(sc.server.files[name], signers, mutate)


def odd_repository(role: str) -> dict:
    """Plain file names, so a changed target digest is checked, not 404;
    meta hashes only when the timestamp is the odd one (a changed snapshot
    or targets role would fail its hash check before anything else)."""
    return dict(consistent_snapshot=False, meta_hashes=role == "timestamp")


ODD_ACTION = dict(REFRESH, paths=["a/y", "a/x.txt"], download=True)


@pytest.mark.parametrize("label,role,mutate", odd_cases(known=False))
def test_odd_metadata_agrees(module_server, tmp_path, label, role, mutate):
    """Each validly signed odd form of ODD_JSON, served once: both clients
    accept it, or refuse it with the same exception, at the same call."""
    sc = new_scenario(module_server, tmp_path, dict(LIMITS), **odd_repository(role))
    serve_odd(sc, role, mutate)
    sc.log.append(f"serve {role} signed but {label}")
    sc.run_clients(ODD_ACTION)


@pytest.mark.parametrize("label,role,mutate", odd_cases(known=True))
def test_odd_metadata_known_differences(module_server, tmp_path, label, role, mutate):
    """Where tufc differs on purpose (KNOWN_ODD): "stricter" forms are
    refused with DeserializationError at the first call that loads them;
    "lenient" ones are accepted like well-formed metadata."""
    sc = new_scenario(module_server, tmp_path, dict(LIMITS), **odd_repository(role))
    serve_odd(sc, role, mutate)
    tufc = sc.clients[0]
    assert tufc.name == "tufc"
    seen = sc.run_client(tufc, ODD_ACTION)
    calls = [item[1] if item[0] == "refresh" else item[2] for item in seen if item[0] in ("refresh", "get")]
    failures = [result for result in calls if result[0] == "error"]
    if KNOWN_ODD[label] == "stricter":
        assert failures and failures[0] == ("error", "DeserializationError"), seen
    else:
        assert failures == [], seen
    if label == "delegation without paths":
        assert ("get", "a/y", ("ok", None)) in seen  # trusted for no path
