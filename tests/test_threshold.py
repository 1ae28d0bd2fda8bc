"""verify_threshold: counting distinct authorized keys that signed, on both cores.

Oracles: signatures made by `cryptography`; python-tuf's own threshold check
(Root.get_verification_result) on metadata python-tuf signed; a plain-Python
model of the counting rule for hypothesis-generated cases; and Sigstore's
real root chain (each root signed by a threshold of its predecessor's keys),
canonicalized by securesystemslib.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tufc.keys
from tests.conftest import shared_testdata
from tufc.exceptions import FormatError
from tufc.keys import Key, ThresholdResult, verify_threshold

DATA = b"the signed part of some metadata"
N_KEYS = 6


@pytest.fixture(params=["native", "pure"])
def keys_core(request, monkeypatch):
    """tufc.keys running on each core in turn."""
    core = request.getfixturevalue(request.param)
    monkeypatch.setattr(tufc.keys, "PublicKey", core.PublicKey)
    monkeypatch.setattr(tufc.keys, "verify_many", core.verify_many)
    return core


@pytest.fixture(scope="module")
def signers():
    """keyid -> Ed25519 private key."""
    return {f"k{i}": ed25519.Ed25519PrivateKey.generate() for i in range(N_KEYS)}


def ed_key(keyid: str, private) -> Key:
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ).hex()
    return Key(keyid, "ed25519", "ed25519", {"public": public})


@pytest.fixture
def key_table(signers):
    """Fresh Keys for each test: a Key caches the PublicKey of the core it
    first ran on."""
    return {keyid: ed_key(keyid, private) for keyid, private in signers.items()}


def sign(signers, keyids, data=DATA):
    return {keyid: signers[keyid].sign(data).hex() for keyid in keyids}


def test_counts_valid_signatures(keys_core, signers, key_table):
    signatures = sign(signers, ["k0", "k2", "k4"])
    keyids = ["k0", "k1", "k2", "k3", "k4"]
    for threshold, expected in [(1, True), (3, True), (4, False), (5, False)]:
        result = verify_threshold(DATA, signatures, key_table, keyids, threshold)
        assert isinstance(result, ThresholdResult)
        assert result.verified == frozenset({"k0", "k2", "k4"})
        assert result.unsigned == frozenset({"k1", "k3"})
        assert result.threshold == threshold
        assert bool(result) is expected
    assert not verify_threshold(DATA + b"!", signatures, key_table, keyids, 1)


def test_only_authorized_keyids_count(keys_core, signers, key_table):
    signatures = sign(signers, ["k0", "k1", "k5"])
    result = verify_threshold(DATA, signatures, key_table, ["k0", "k2"], 2)
    assert result.verified == {"k0"} and result.unsigned == {"k2"}
    assert not result


def test_duplicate_keyids_count_once(keys_core, signers, key_table):
    signatures = sign(signers, ["k0", "k1"])
    result = verify_threshold(DATA, signatures, key_table, ["k0", "k0", "k0", "k1"], 3)
    assert result.verified == {"k0", "k1"} and not result
    assert verify_threshold(DATA, signatures, key_table, iter(["k0", "k1", "k0"]), 2)


def test_one_key_under_two_keyids_counts_once(keys_core, signers, key_table):
    table = dict(key_table)
    table["alias"] = Key("alias", "ed25519", "ed25519", dict(key_table["k0"].keyval))
    table["ALIAS"] = Key("ALIAS", "ed25519", "ed25519",
                         {"public": key_table["k0"].keyval["public"].upper()})
    signatures = sign(signers, ["k0", "k1"])
    signatures["alias"] = signatures["ALIAS"] = signatures["k0"]
    result = verify_threshold(DATA, signatures, table, ["k0", "alias", "ALIAS", "k1"], 3)
    assert not result
    assert len(result.verified) == 2 and "k1" in result.verified
    assert len(result.verified & {"k0", "alias", "ALIAS"}) == 1
    assert result.verified | result.unsigned == {"k0", "alias", "ALIAS", "k1"}
    assert not result.verified & result.unsigned
    assert verify_threshold(DATA, signatures, table, ["k0", "alias", "ALIAS", "k1"], 2)
    # The alias alone (without k0) still counts.
    assert verify_threshold(DATA, signatures, table, ["alias", "k1"], 2).verified == {"alias", "k1"}


def test_same_ecdsa_key_as_pem_and_point_counts_once(keys_core):
    private = ec.generate_private_key(ec.SECP256R1())
    public_key = private.public_key()
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    point = public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    ).hex()
    keys = {
        "pem": Key("pem", "ecdsa", "ecdsa-sha2-nistp256", {"public": pem}),
        "hex": Key("hex", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", {"public": point}),
    }
    signatures = {
        kid: private.sign(DATA, ec.ECDSA(hashes.SHA256())).hex() for kid in keys
    }
    result = verify_threshold(DATA, signatures, keys, ["pem", "hex"], 2)
    assert not result and len(result.verified) == 1
    assert verify_threshold(DATA, signatures, keys, ["pem", "hex"], 1)


def test_threshold_larger_than_key_count(keys_core, signers, key_table):
    signatures = sign(signers, list(signers))
    result = verify_threshold(DATA, signatures, key_table, list(signers), N_KEYS + 1)
    assert len(result.verified) == N_KEYS and not result


def test_missing_keys_and_signatures_are_unsigned(keys_core, signers, key_table):
    signatures = sign(signers, ["k0", "k1"])
    signatures["ghost"] = signatures["k0"]
    result = verify_threshold(DATA, signatures, key_table, ["k0", "ghost", "k2", "k1"], 2)
    assert result.verified == {"k0", "k1"} and result.unsigned == {"ghost", "k2"}
    assert result
    empty = verify_threshold(DATA, {}, {}, [], 1)
    assert not empty and empty.verified == empty.unsigned == frozenset()


@pytest.mark.parametrize(
    "bad",
    ["", "zz", "abc", " " + "ab" * 64, "ab" * 64 + "\n", "0x" + "ab" * 63, "ab" * 32,
     "ab" * 128, "é" * 128, None, 5, b"", ["ab"]],
)
def test_malformed_signatures_are_unsigned(keys_core, signers, key_table, bad):
    signatures = sign(signers, ["k0", "k1"])
    signatures["k1"] = bad
    result = verify_threshold(DATA, signatures, key_table, ["k0", "k1"], 1)
    assert result.verified == {"k0"} and result.unsigned == {"k1"}
    assert not verify_threshold(DATA, signatures, key_table, ["k0", "k1"], 2)


def test_uppercase_hex_signature(keys_core, signers, key_table):
    signatures = {"k0": signers["k0"].sign(DATA).hex().upper()}
    assert verify_threshold(DATA, signatures, key_table, ["k0"], 1)


def test_wrong_signer_and_unsupported_keys_are_unsigned(keys_core, signers, key_table):
    table = dict(key_table)
    table["oidc"] = Key.from_dict("oidc", {
        "keytype": "sigstore-oidc", "scheme": "Fulcio",
        "keyval": {"public": "", "identity": "a@b", "issuer": "https://x"}})
    table["broken"] = Key("broken", "ed25519", "ed25519", {"public": "not hex"})
    signatures = sign(signers, ["k0"])
    signatures["k1"] = signers["k2"].sign(DATA).hex()  # signed by the wrong key
    signatures["oidc"] = signatures["broken"] = signatures["k0"]
    result = verify_threshold(DATA, signatures, table, ["k0", "k1", "oidc", "broken"], 1)
    assert result.verified == {"k0"}
    assert result.unsigned == {"k1", "oidc", "broken"}


@pytest.mark.parametrize("threshold", [0, -1, -(2**70), True, False, 1.0, "1", None])
def test_threshold_must_be_positive_int(keys_core, signers, key_table, threshold):
    with pytest.raises(FormatError):
        verify_threshold(DATA, sign(signers, ["k0"]), key_table, ["k0"], threshold)


def test_argument_shapes(keys_core, signers, key_table):
    signatures = sign(signers, ["k0"])
    for args in [
        (DATA, signatures, key_table, "k0", 1),  # a str is not a list of key ids
        (DATA, signatures, key_table, [b"k0"], 1),
        (DATA, signatures, key_table, [1], 1),
        (DATA, signatures, key_table, None, 1),
        (DATA, list(signatures.items()), key_table, ["k0"], 1),
        (DATA, signatures, [("k0", key_table["k0"])], ["k0"], 1),
        (DATA, signatures, {"k0": key_table["k0"].to_dict()}, ["k0"], 1),
    ]:
        with pytest.raises(FormatError):
            verify_threshold(*args)
    with pytest.raises(TypeError):
        verify_threshold(DATA.decode(), signatures, key_table, ["k0"], 1)
    # Any bytes-like data.
    assert verify_threshold(bytearray(DATA), signatures, key_table, ["k0"], 1)
    assert verify_threshold(memoryview(DATA), signatures, key_table, ["k0"], 1)


def test_one_verify_many_call(keys_core, monkeypatch, signers, key_table):
    calls = []

    def counting(data, pairs):
        calls.append(len(pairs))
        return keys_core.verify_many(data, pairs)

    monkeypatch.setattr(tufc.keys, "verify_many", counting)
    signatures = sign(signers, list(signers))
    signatures["k5"] = "zz"
    result = verify_threshold(DATA, signatures, key_table, list(signers) + ["k0", "nokey"], 3)
    assert result and len(result.verified) == N_KEYS - 1
    assert calls == [N_KEYS - 1]  # one call; the malformed signature never reaches it


def model(data, signatures, private_keys, aliases, keyids, threshold):
    """The counting rule, written plainly: verify each authorized key id with
    cryptography, then count distinct signing keys."""
    signed_by = set()
    for keyid in set(keyids):
        owner = aliases.get(keyid)
        sig = signatures.get(keyid)
        if owner is None or sig is None:
            continue
        try:
            private_keys[owner].public_key().verify(bytes.fromhex(sig), data)
        except Exception:
            continue
        signed_by.add(owner)
    return len(signed_by), len(signed_by) >= threshold


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # keyid -> index of the private key it names (several ids may share a key)
    aliases=st.dictionaries(st.sampled_from([f"id{i}" for i in range(8)]),
                            st.integers(0, 3), max_size=8),
    signed=st.lists(st.tuples(st.sampled_from([f"id{i}" for i in range(9)]),
                              st.integers(0, 3), st.booleans()), max_size=10),
    extra_ids=st.lists(st.sampled_from([f"id{i}" for i in range(9)]), max_size=4),
    threshold=st.integers(1, 5),
)
def test_matches_model(keys_core, signers, aliases, signed, extra_ids, threshold):
    """Random key tables with aliases, signatures by the right or wrong key,
    over the right or wrong data, and authorized ids with duplicates."""
    private_keys = [signers[f"k{i}"] for i in range(4)]
    keys = {kid: ed_key(kid, private_keys[owner]) for kid, owner in aliases.items()}
    signatures = {}
    for kid, signer, right_data in signed:
        signatures[kid] = private_keys[signer].sign(DATA if right_data else DATA + b"x").hex()
    keyids = list(aliases) + extra_ids + list(aliases)[:2]
    count, met = model(DATA, signatures, private_keys, aliases, keyids, threshold)
    result = verify_threshold(DATA, signatures, keys, keyids, threshold)
    assert len(result.verified) == count
    assert bool(result) is met
    assert result.verified | result.unsigned == set(keyids)
    assert not result.verified & result.unsigned


@pytest.fixture(scope="module")
def tuf_signed_root():
    """A root signed by python-tuf with securesystemslib signers of every key
    type (4 good signatures of 5 keys, one over other bytes), and python-tuf's
    own verdict on it."""
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import Metadata, Root
    from tuf.api.serialization.json import CanonicalJSONSerializer

    signers = [
        CryptoSigner.generate_ed25519(),
        CryptoSigner.generate_ecdsa(),
        CryptoSigner.generate_rsa(scheme="rsassa-pss-sha256", size=2048),
        CryptoSigner.generate_rsa(scheme="rsa-pkcs1v15-sha512", size=2048),
        CryptoSigner.generate_ed25519(),
    ]
    root = Metadata(Root())
    for signer in signers:
        root.signed.add_key(signer.public_key, Root.type)
    root.signed.roles[Root.type].threshold = 3
    for signer in signers[:4]:
        root.sign(signer, append=True)
    stale = Metadata(Root(version=2))
    stale.sign(signers[4])
    last = signers[4].public_key.keyid
    root.signatures[last] = stale.signatures[last]
    data = CanonicalJSONSerializer().serialize(root.signed)
    expected = root.signed.get_verification_result(Root.type, data, root.signatures)
    return root, data, expected


def test_matches_python_tuf(keys_core, tuf_signed_root):
    from tuf.api.metadata import Root

    root, data, expected = tuf_signed_root
    assert len(expected.signed) == 4 and expected.verified
    keys = {kid: Key.from_dict(kid, key.to_dict()) for kid, key in root.signed.keys.items()}
    signatures = {kid: sig.signature for kid, sig in root.signatures.items()}
    role = root.signed.roles[Root.type]
    result = verify_threshold(data, signatures, keys, role.keyids, role.threshold)
    assert result.verified == set(expected.signed)
    assert result.unsigned == set(expected.unsigned)
    assert bool(result) is True
    assert not verify_threshold(data, signatures, keys, role.keyids, 5)


def sigstore_roots():
    history = shared_testdata("sigstore-root-signing", "root_history")
    roots = {}
    for path in history.glob("*.root.json"):
        roots[int(path.name.split(".")[0])] = json.loads(path.read_text())
    return [roots[v] for v in sorted(roots)]


def root_check(root_before, root_after):
    from securesystemslib.formats import encode_canonical

    data = encode_canonical(root_after["signed"]).encode("utf-8")
    signatures = {s["keyid"]: s["sig"] for s in root_after["signatures"]}
    results = []
    for trusted in (root_before, root_after):
        keys = {kid: Key.from_dict(kid, d) for kid, d in trusted["signed"]["keys"].items()}
        role = trusted["signed"]["roles"]["root"]
        results.append(verify_threshold(data, signatures, keys, role["keyids"], role["threshold"]))
    return results


def test_sigstore_root_chain(keys_core):
    """Every Sigstore root (hex-point keys in 1-4, PEM later, empty signature
    entries in 12-14) is signed by a threshold of the previous root's keys
    and of its own."""
    roots = sigstore_roots()
    assert len(roots) >= 15
    for before, after in zip(roots, roots[1:]):
        version = after["signed"]["version"]
        by_old, by_new = root_check(before, after)
        assert by_old, f"root {version} not signed by root {version - 1}'s keys: {by_old}"
        assert by_new, f"root {version} not signed by its own keys: {by_new}"
        # Tampering with the signed bytes breaks every signature.
        tampered = json.loads(json.dumps(after))
        tampered["signed"]["version"] += 1
        assert not root_check(before, tampered)[0].verified


@pytest.mark.filterwarnings("ignore:keytype 'ecdsa-sha2-nistp256' is deprecated")
def test_sigstore_root_matches_python_tuf(keys_core):
    """From root 5 on, python-tuf can read the chain: same verified sets."""
    from tuf.api.metadata import Metadata, Root

    roots = sigstore_roots()
    for before, after in zip(roots[4:], roots[5:]):
        trusted = Metadata.from_bytes(json.dumps(before).encode())
        new = Metadata.from_bytes(json.dumps(after).encode())
        from securesystemslib.formats import encode_canonical

        data = encode_canonical(after["signed"]).encode("utf-8")
        expected = trusted.signed.get_verification_result(Root.type, data, new.signatures)
        by_old, _ = root_check(before, after)
        assert by_old.verified == set(expected.signed)
        assert bool(by_old) is expected.verified


def test_verify_many_releases_the_gil(native):
    """While the native core verifies a long batch, another thread runs."""
    private = ed25519.Ed25519PrivateKey.generate()
    key = native.PublicKey("ed25519", "ed25519", ed_key("k", private).keyval["public"])
    data = b"x" * 4096
    pairs = [(key, private.sign(data))] * 2000  # ~0.1 s of verification
    ticks = []
    started = threading.Event()
    stop = threading.Event()

    def spin():
        started.set()
        while not stop.is_set():
            ticks.append(time.perf_counter())

    thread = threading.Thread(target=spin)
    thread.start()
    started.wait()
    try:
        t0 = time.perf_counter()
        results = native.verify_many(data, pairs)
        t1 = time.perf_counter()
    finally:
        stop.set()
        thread.join()
    assert all(results)
    # Holding the GIL for the whole call, the other thread could not run in
    # the middle of it (a thread switch near either end stays outside).
    margin = (t1 - t0) / 5
    assert any(t0 + margin < t < t1 - margin for t in ticks)


# --- Key.verify_signature: securesystemslib's single-signature check -----------


def _outcome(call) -> str:
    """The name of the exception ``call()`` raises, or "ok"."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - compared by class name
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize(
    "case",
    ["valid", "other data", "flipped bit", "other key id", "bad hex", "empty", "other key's"],
)
def test_verify_signature_matches_securesystemslib(keys_core, signers, case):
    from securesystemslib.signer import Signature as SslibSignature
    from securesystemslib.signer import SSlibKey

    from tufc.metadata import Signature

    key = ed_key("k0", signers["k0"])
    oracle = SSlibKey.from_dict("k0", key.to_dict())
    keyid, sig = "k0", signers["k0"].sign(DATA)
    data = DATA
    if case == "other data":
        data = DATA + b"!"
    elif case == "flipped bit":
        sig = bytes([sig[0] ^ 1]) + sig[1:]
    elif case == "other key id":
        keyid = "k1"
    elif case == "other key's":
        sig = signers["k1"].sign(DATA)
    hex_sig = {"bad hex": "zz" * 64, "empty": ""}.get(case, sig.hex())

    ours = _outcome(lambda: key.verify_signature(Signature(keyid, hex_sig), data))
    theirs = _outcome(lambda: oracle.verify_signature(SslibSignature(keyid, hex_sig), data))
    assert ours == theirs
    # an empty signature is valid hex for no bytes: not this key's signature
    expected = {"valid": "ok", "other key id": "VerificationError", "bad hex": "VerificationError"}
    assert ours == expected.get(case, "UnverifiedSignatureError")
    # python-tuf's Signature objects are accepted as they are
    assert _outcome(lambda: key.verify_signature(SslibSignature(keyid, hex_sig), data)) == ours


def test_verify_signature_hierarchy_and_unusable_keys(keys_core):
    from tufc import exceptions
    from tufc.metadata import Signature

    assert issubclass(exceptions.VerificationError, exceptions.UnverifiedSignatureError)
    assert issubclass(exceptions.UnverifiedSignatureError, exceptions.TufcError)
    for key in (
        Key("k", "ed25519", "ed25519", {"public": "00" * 31}),  # malformed material
        Key("k", "x-unknown", "x-unknown", {"public": "abcd"}),  # unknown type
        Key("k", "sigstore-oidc", "Fulcio", {"identity": "a@b", "issuer": "c"}),
    ):
        with pytest.raises(exceptions.VerificationError):
            key.verify_signature(Signature("k", "00" * 64), DATA)
