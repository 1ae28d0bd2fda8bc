"""Build the native core ``tufc._tufc`` (the metadata lives in pyproject.toml).

Environment:
  TUFC_BUILD_NATIVE=0   build no extension (pure-Python install, PEP 480)
  TUFC_SANITIZE=1       AddressSanitizer + UndefinedBehaviorSanitizer build
  TUFC_WERROR=1         -Werror (CI)
"""

import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["module.c", "encoder.c", "hashing.c", "keys.c", "loader.c", "bins.c", "patch.c"]


def _flag(name):
    return os.environ.get(name, "").strip() not in ("", "0")


def _pkg_config(package, debian_package):
    """Compiler and linker flags for ``package``, or a clear error."""
    if shutil.which("pkg-config") is None:
        sys.exit(
            "error: pkg-config is needed to find libsodium and OpenSSL.\n"
            "  On Debian/Ubuntu: apt-get install pkg-config "
            f"{debian_package}\n"
            "  Or set TUFC_BUILD_NATIVE=0 for the pure-Python build."
        )
    try:
        out = subprocess.run(
            ["pkg-config", "--cflags", "--libs", package],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except subprocess.CalledProcessError:
        sys.exit(
            f"error: the C library '{package}' was not found (pkg-config).\n"
            f"  On Debian/Ubuntu: apt-get install {debian_package}\n"
            "  Or set TUFC_BUILD_NATIVE=0 for the pure-Python build."
        )
    return out.split()


def _native_extension():
    if os.name != "posix":
        # hashing.c reads files and runs its helper thread with POSIX calls
        sys.exit(
            "error: the native core builds on POSIX systems only.\n"
            "  Set TUFC_BUILD_NATIVE=0 for the pure-Python build "
            "(same results, slower)."
        )
    flags = _pkg_config("libsodium", "libsodium-dev")
    flags += _pkg_config("libcrypto", "libssl-dev")
    include_dirs = [f[2:] for f in flags if f.startswith("-I")]
    library_dirs = [f[2:] for f in flags if f.startswith("-L")]
    libraries = [f[2:] for f in flags if f.startswith("-l")]
    compile_args = ["-std=c11", "-Wall", "-Wextra", "-Wshadow",
                    "-Wstrict-prototypes", "-Wno-missing-field-initializers",
                    "-fvisibility=hidden"]
    link_args = []
    if _flag("TUFC_WERROR"):
        compile_args.append("-Werror")
    if _flag("TUFC_SANITIZE"):
        san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
               "-fno-omit-frame-pointer", "-g", "-O1"]
        compile_args += san
        link_args += san
    return Extension(
        "tufc._tufc",
        sources=[os.path.join("_tufc", s) for s in SOURCES],
        depends=[os.path.join("_tufc", "tufc.h")],
        include_dirs=include_dirs,
        library_dirs=library_dirs,
        libraries=libraries,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )


ext_modules = []
if os.environ.get("TUFC_BUILD_NATIVE", "1").strip() != "0":
    ext_modules.append(_native_extension())

setup(ext_modules=ext_modules)
