"""Benchmark of tufc's core against its references (issue 2, "Speed").

    python bench/core.py            # full sizes (1 GiB of hashing)
    python bench/core.py --quick    # smoke run, smaller sizes

Each figure is measured side by side in the same run (alternating, best of
N after a warm-up) and printed with its unit and as a ratio to the
reference: securesystemslib for canonical JSON and signatures, libsodium's
raw cost for ed25519, hashlib for hashes.  Parts of tufc that are not built
yet print "n/a"; a wrong answer is reported instead of a figure.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime
import hashlib
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _shape  # noqa: E402
import _timing  # noqa: E402
import _tufc_loader  # noqa: E402
from _timing import Unavailable, compare, format_table, ratio_text  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30

TARGETS = []  # (description, met: bool | None) collected for the summary


def check_target(description: str, value, limit, higher_is_better: bool) -> None:
    if value is None:
        TARGETS.append((description, None))
    else:
        TARGETS.append((description, value >= limit if higher_is_better else value <= limit))


# --- environment -------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load_libsodium():
    name = ctypes.util.find_library("sodium") or "libsodium.so.23"
    lib = ctypes.CDLL(name)
    if lib.sodium_init() < 0:
        raise OSError("sodium_init failed")
    lib.sodium_version_string.restype = ctypes.c_char_p
    return lib


def print_environment(tufc) -> None:
    import cryptography
    import securesystemslib
    from cryptography.hazmat.backends.openssl.backend import backend

    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {platform.platform()}")
    print(f"python {platform.python_version()}; securesystemslib "
          f"{securesystemslib.__version__}; cryptography {cryptography.__version__} "
          f"({backend.openssl_version_text()}); hashlib: {hashlib.sha256.__module__}")
    try:
        print(f"libsodium {load_libsodium().sodium_version_string().decode()}")
    except OSError as exc:
        print(f"libsodium: not loadable ({exc})")
    where = os.path.dirname(tufc.package.__file__) if tufc.package else "?"
    print(f"tufc backend: {tufc.backend} ({where})")
    for part, error in tufc.errors.items():
        print(f"  tufc {part}: {error}")
    print()


# --- canonical JSON -------------------------------------------------------


def bench_canonical(tufc, repeat: int, min_time: float) -> list[list[str]]:
    from securesystemslib.formats import encode_canonical

    rows = []
    # A client canonicalizes what it parsed from a file written with sorted
    # keys; a producer canonicalizes dicts in the order it built them.  Both
    # are measured: sorting the keys is a large part of the work.
    documents = []
    for label, doc in (("snapshot, 16,384 bins", _shape.sample_snapshot()),
                       (f"bin, {_shape.TARGETS_PER_BIN} targets", _shape.sample_bin())):
        parsed = json.loads(json.dumps(doc, sort_keys=True, separators=(",", ":")))
        documents.append((f"{label}, as parsed", parsed))
        documents.append((f"{label}, as built", doc))
    for label, doc in documents:
        expected = encode_canonical(doc).encode("utf-8")

        def checked(fn):
            def factory():
                if fn is None:
                    raise Unavailable(_timing.NA)
                if fn(doc) != expected:
                    raise Unavailable("WRONG RESULT (differs from securesystemslib)")
                return lambda: fn(doc)
            return factory

        native = getattr(tufc.native, "canonical_json", None)
        pure = getattr(tufc.pure, "canonical_json", None)
        candidates = [
            ("tufc native", checked(native)),
            ("tufc pure", checked(pure)),
            ("securesystemslib", checked(lambda d: encode_canonical(d).encode("utf-8"))),
            ("json.dumps(sort_keys)", lambda: lambda: json.dumps(
                doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")),
        ]
        results = compare(candidates, repeat, min_time)
        ref = results[2].seconds
        for r in results:
            mbps = f"{len(expected) / r.seconds / 1e6:.1f}" if r.ok else r.note
            rows.append([f"canonical_json: {label} ({len(expected) / 1e3:.0f} KB)",
                         r.name, mbps, "MB/s" if r.ok else "",
                         ratio_text(ref, r.seconds)])
        native_ratio = ref / results[0].seconds if results[0].ok and ref else None
        pure_ratio = ref / results[1].seconds if results[1].ok and ref else None
        check_target(f"canonical_json {label}: native >= 25x securesystemslib", native_ratio, 25, True)
        check_target(f"canonical_json {label}: pure >= 1x securesystemslib", pure_ratio, 1, True)
    return rows


# --- parsing ----------------------------------------------------------------


def bench_parse(tufc, repeat: int, min_time: float) -> list[list[str]]:
    """load_metadata: file bytes -> envelope + canonical signed bytes.

    The reference is what python-tuf does for the same result: json.loads,
    then securesystemslib's encode_canonical of the "signed" part.
    """
    from securesystemslib.formats import encode_canonical

    rows = []
    signature = {"keyid": "ab" * 32, "sig": "cd" * 64}
    for label, doc in (("snapshot, 16,384 bins", _shape.sample_snapshot()),
                       (f"bin, {_shape.TARGETS_PER_BIN} targets", _shape.sample_bin())):
        data = json.dumps({"signatures": [signature], "signed": doc},
                          separators=(",", ":"), sort_keys=True).encode("utf-8")
        expected = encode_canonical(doc).encode("utf-8")

        def reference():
            envelope = json.loads(data)
            return envelope, encode_canonical(envelope["signed"]).encode("utf-8")

        def checked(core):
            def factory():
                fn = getattr(core, "load_metadata", None)
                if fn is None:
                    raise Unavailable(_timing.NA)
                if bytes(fn(data)[1]) != expected:
                    raise Unavailable("WRONG RESULT (signed bytes differ)")
                return lambda: fn(data)
            return factory

        results = compare([
            ("tufc native load_metadata", checked(tufc.native)),
            ("tufc pure load_metadata", checked(tufc.pure)),
            ("json.loads + securesystemslib", lambda: reference),
            ("json.loads alone", lambda: lambda: json.loads(data)),
        ], repeat, min_time)
        ref = results[2].seconds
        for r in results:
            rows.append([f"parse: {label} ({len(data) / 1e3:.0f} KB file)", r.name,
                         f"{len(data) / r.seconds / 1e6:.1f}" if r.ok else r.note,
                         "MB/s" if r.ok else "", ratio_text(ref, r.seconds)])
    return rows


# --- signatures ---------------------------------------------------------------


def make_keys():
    """(label, keytype, scheme, public, signature, crypto_verify) per algorithm."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    data = b'{"_type":"timestamp","expires":"2026-11-26T13:00:00Z","meta":' \
           b'{"snapshot.json":{"version":123456}},"spec_version":"1.0.31","version":123456}'
    pem = dict(encoding=serialization.Encoding.PEM,
               format=serialization.PublicFormat.SubjectPublicKeyInfo)
    out = []

    ed = ed25519.Ed25519PrivateKey.generate()
    ed_pub = ed.public_key()
    raw = ed_pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sig = ed.sign(data)
    out.append(("ed25519", "ed25519", "ed25519", raw.hex(), sig,
                lambda s, d, k=ed_pub: k.verify(s, d), raw))

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pub = ec_key.public_key()
    sig = ec_key.sign(data, ec.ECDSA(hashes.SHA256()))
    out.append(("ecdsa P-256", "ecdsa", "ecdsa-sha2-nistp256",
                ec_pub.public_bytes(**pem).decode(), sig,
                lambda s, d, k=ec_pub: k.verify(s, d, ec.ECDSA(hashes.SHA256())), None))

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pub = rsa_key.public_key()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    sig = rsa_key.sign(data, pss, hashes.SHA256())
    out.append(("rsa-pss-2048 sha256", "rsa", "rsassa-pss-sha256",
                rsa_pub.public_bytes(**pem).decode(), sig,
                lambda s, d, k=rsa_pub: k.verify(
                    s, d, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                      salt_length=padding.PSS.AUTO), hashes.SHA256()), None))
    return data, out


def _tampered(sig: bytes) -> bytes:
    return sig[:-1] + bytes([sig[-1] ^ 1])


def _tufc_key(tufc, keyid, keytype, scheme, public):
    keys = _tufc_loader.submodule(tufc, "keys")
    keydict = {"keytype": keytype, "scheme": scheme, "keyval": {"public": public}}
    if hasattr(keys.Key, "from_dict"):
        return keys.Key.from_dict(keyid, keydict)
    return keys.Key(keyid, keytype, scheme, {"public": public})


def bench_signatures(tufc, repeat: int, min_time: float) -> list[list[str]]:
    from cryptography.exceptions import InvalidSignature
    from securesystemslib.exceptions import UnverifiedSignatureError
    from securesystemslib.signer import Signature, SSlibKey

    data, keys = make_keys()
    bad_data = data + b" "
    rows = []
    for label, keytype, scheme, public, sig, crypto_verify, raw_pub in keys:
        keyid = hashlib.sha256(public.encode()).hexdigest()

        def verifier(make_verify):
            """Factory timing ``verify(sig, data)`` after checking it is right."""
            def factory():
                verify = make_verify()
                if verify(sig, data) is not True:
                    raise Unavailable("WRONG RESULT (rejects a valid signature)")
                if verify(_tampered(sig), data) or verify(sig, bad_data):
                    raise Unavailable("WRONG RESULT (accepts a bad signature)")
                return lambda: verify(sig, data)
            return factory

        def tufc_key():
            key = _tufc_key(tufc, keyid, keytype, scheme, public)
            return key.verify

        def core_key(core):
            def make():
                if core is None:
                    raise Unavailable(_timing.NA)
                return core.PublicKey(keytype, scheme, public).verify
            return make

        def sslib():
            key = SSlibKey(keyid, keytype, scheme, {"public": public})

            def verify(s, d):
                try:
                    key.verify_signature(Signature(keyid, s.hex()), d)
                    return True
                except UnverifiedSignatureError:
                    return False
            return verify

        def crypto():
            def verify(s, d):
                try:
                    crypto_verify(s, d)
                    return True
                except InvalidSignature:
                    return False
            return verify

        backend = tufc.backend if tufc.package is not None else "?"
        candidates = [
            (f"tufc.keys.Key.verify ({backend})", verifier(tufc_key)),
            ("tufc native PublicKey.verify", verifier(core_key(tufc.native))),
            ("tufc pure PublicKey.verify", verifier(core_key(tufc.pure))),
            ("securesystemslib SSlibKey.verify_signature", verifier(sslib)),
            ("cryptography, key loaded once", verifier(crypto)),
        ]
        raw_index = None
        if raw_pub is not None:
            def libsodium():
                lib = load_libsodium()
                fn = lib.crypto_sign_verify_detached
                fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_ulonglong, ctypes.c_char_p]
                fn.restype = ctypes.c_int
                return lambda s, d: fn(s, d, len(d), raw_pub) == 0

            def ctypes_overhead():
                # The same ctypes call path on a function that does nothing
                # (memcmp of 0 bytes): what the libsodium row pays on top.
                libc = ctypes.CDLL(ctypes.util.find_library("c"))
                fn = libc.memcmp
                fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
                fn.restype = ctypes.c_int
                return lambda: fn(sig, data, 0)

            raw_index = len(candidates)
            candidates.append(("libsodium raw (ctypes)", verifier(libsodium)))
            candidates.append(("  ctypes call overhead (memcmp 0 bytes)", ctypes_overhead))
        results = compare(candidates, repeat, min_time)
        ref = results[3].seconds
        raw = results[raw_index].seconds if raw_index is not None else None
        for r in results:
            is_overhead = r.name.strip().startswith("ctypes")
            rows.append([
                f"verify {label}", r.name,
                f"{r.seconds * 1e6:.1f}" if r.ok else r.note,
                "us/op" if r.ok else "",
                "-" if is_overhead else ratio_text(ref, r.seconds),
                ratio_text(r.seconds, raw) if raw and not is_overhead else "-",
            ])
        tufc_key_s = results[0].seconds if tufc.backend == "native" else None
        native_s = results[1].seconds
        if raw_index is not None:
            check_target("ed25519 verify: tufc.keys.Key (native) <= 1.15x libsodium raw",
                         tufc_key_s / raw if tufc_key_s and raw else None, 1.15, False)
            check_target("ed25519 verify: native PublicKey <= 1.15x libsodium raw",
                         native_s / raw if native_s and raw else None, 1.15, False)
        check_target(f"{label} verify: native faster than securesystemslib",
                     ref / native_s if native_s and ref else None, 1, True)
    return rows


# --- hashing ----------------------------------------------------------------


def bench_hashing(tufc, total: int, buffer_size: int, repeat: int, tmpdir) -> list[list[str]]:
    buf = bytearray(os.urandom(buffer_size))
    view = memoryview(buf)
    slices = [view[i:i + MiB] for i in range(0, buffer_size, MiB)]
    count = total // MiB

    def chunks():
        for i in range(count):
            yield slices[i % len(slices)]

    def expected(algorithms):
        out = {}
        for name in algorithms:
            h = hashlib.sha256() if name == "sha256" else hashlib.blake2b(digest_size=32)
            for c in chunks():
                h.update(c)
            out[name] = h.hexdigest()
        return out

    def hasher(core, algorithms):
        def factory():
            if core is None:
                raise Unavailable(_timing.NA)
            sample = core.Hasher(algorithms)
            sample.update(slices[0])
            want = {}
            for name in algorithms:
                h = hashlib.sha256() if name == "sha256" else hashlib.blake2b(digest_size=32)
                h.update(slices[0])
                want[name] = h.hexdigest()
            got = sample.hexdigests()
            if {k: got.get(k) for k in algorithms} != want:
                raise Unavailable("WRONG RESULT (digest differs from hashlib)")

            def run():
                h = core.Hasher(algorithms)
                for c in chunks():
                    h.update(c)
                return h.hexdigests()
            return run
        return factory

    def hashlib_passes(algorithms):
        return lambda: lambda: expected(algorithms)

    def hashlib_one_loop():
        def run():
            a, b = hashlib.sha256(), hashlib.blake2b(digest_size=32)
            for c in chunks():
                a.update(c)
                b.update(c)
            return a.hexdigest(), b.hexdigest()
        return run

    rows = []
    gib = total / GiB
    size_label = f"{gib:g} GiB" if total >= GiB else f"{total // MiB} MiB"

    def add_rows(figure, results, ref_index):
        ref = results[ref_index].seconds
        for r in results:
            rows.append([f"{figure} ({size_label})", r.name,
                         f"{total / r.seconds / 1e9:.2f}" if r.ok else r.note,
                         "GB/s" if r.ok else "", ratio_text(ref, r.seconds)])
        return ref

    sha = ["sha256"]
    both = ["sha256", "blake2b-256"]
    results = compare([
        ("tufc native Hasher", hasher(tufc.native, sha)),
        ("tufc pure Hasher", hasher(tufc.pure, sha)),
        ("hashlib.sha256", hashlib_passes(sha)),
    ], repeat, 0)
    ref = add_rows("sha256, 1 MiB chunks", results, 2)
    check_target("sha256: native Hasher >= 0.95x hashlib",
                 ref / results[0].seconds if results[0].ok else None, 0.95, True)

    results = compare([
        ("tufc native Hasher (one pass)", hasher(tufc.native, both)),
        ("tufc pure Hasher (one pass)", hasher(tufc.pure, both)),
        ("hashlib, two passes", hashlib_passes(both)),
        ("hashlib, both in one loop", hashlib_one_loop),
    ], repeat, 0)
    ref = add_rows("sha256 + blake2b-256", results, 2)
    check_target("sha256+blake2b-256: native one pass faster than two hashlib passes",
                 ref / results[0].seconds if results[0].ok else None, 1.0, True)

    fd, path = tempfile.mkstemp(prefix="tufc-bench-", suffix=".bin", dir=tmpdir)
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks():
                f.write(c)
        want = expected(sha)["sha256"]

        def file_hasher(core):
            def factory():
                if core is None:
                    raise Unavailable(_timing.NA)
                if core.hash_file(path, sha).get("sha256") != want:
                    raise Unavailable("WRONG RESULT (digest differs from hashlib)")
                return lambda: core.hash_file(path, sha)
            return factory

        def hashlib_file():
            def run():
                h = hashlib.sha256()
                block = bytearray(MiB)
                mv = memoryview(block)
                with open(path, "rb", buffering=0) as f:
                    while True:
                        n = f.readinto(block)
                        if not n:
                            break
                        h.update(mv[:n])
                return h.hexdigest()
            if run() != want:
                raise Unavailable("WRONG RESULT")
            return run

        results = compare([
            ("tufc native hash_file", file_hasher(tufc.native)),
            ("tufc pure hash_file", file_hasher(tufc.pure)),
            ("hashlib, readinto 1 MiB", hashlib_file),
        ], repeat, 0)
        ref = add_rows("hash_file sha256, page-cached file", results, 2)
        check_target("hash_file sha256: native >= 0.95x hashlib",
                     ref / results[0].seconds if results[0].ok else None, 0.95, True)
    finally:
        os.unlink(path)
    return rows


# --- main -------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 64 MiB of hashing, fewer and shorter repeats")
    parser.add_argument("--only", choices=["canonical", "parse", "verify", "hash"],
                        action="append",
                        help="run only these parts (repeatable)")
    parser.add_argument("--repeat", type=int, help="repeats per figure (best is kept)")
    parser.add_argument("--tmpdir", help="where the hash_file temp file goes (default: TMPDIR)")
    parser.add_argument("--wall", action="store_true",
                        help="time with the wall clock instead of process CPU time")
    args = parser.parse_args(argv)
    if args.wall:
        _timing.clock = time.perf_counter

    repeat = args.repeat or (3 if args.quick else 7)
    min_time = 0.05 if args.quick else 0.2
    hash_total = 64 * MiB if args.quick else GiB
    hash_buffer = 16 * MiB if args.quick else 64 * MiB
    parts = args.only or ["canonical", "parse", "verify", "hash"]

    tufc = _tufc_loader.load()
    print_environment(tufc)
    print("clock: " + ("wall" if args.wall else "process CPU time (--wall for wall clock)")
          + f"; best of {repeat} (hashes: {min(repeat, 3)}) after a warm-up\n")
    rows = []
    if "canonical" in parts:
        rows += bench_canonical(tufc, repeat, min_time)
    if "parse" in parts:
        rows += bench_parse(tufc, repeat, min_time)
    if "verify" in parts:
        rows += bench_signatures(tufc, repeat, min_time)
    if "hash" in parts:
        rows += bench_hashing(tufc, hash_total, hash_buffer, min(repeat, 3), args.tmpdir)

    print(format_table(
        ["figure", "implementation", "value", "unit", "speed vs ref", "time / raw"],
        [r + [""] * (6 - len(r)) for r in rows]))
    print()
    print("speed vs ref = reference time / this time (> 1 is faster); references: "
          "securesystemslib (canonical_json, verify), json.loads + securesystemslib "
          "(parse), hashlib (hashes);")
    print("time / raw = this time / libsodium's crypto_sign_verify_detached via ctypes "
          "(includes the ctypes overhead shown).")
    print()
    print("targets:")
    for description, met in TARGETS:
        status = "n/a" if met is None else ("met" if met else "MISSED")
        print(f"  [{status:6}] {description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
