"""misplaced_targets: the succinct hash bin check, native against pure
against python-tuf's SuccinctRoles (the independent oracle)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from tuf.api.metadata import SuccinctRoles

from tufc.exceptions import FormatError
from tests.repo_builder import bin_index

FIXTURES_OK = [HealthCheck.function_scoped_fixture]  # the cores are stateless
paths = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


def _entry_map(core, names):
    """An EntryMap as the loader builds it for a targets role."""
    targets = {n: {"length": 1, "hashes": {"sha256": "ab"}} for n in names}
    data = json.dumps({"signatures": [], "signed": {"_type": "targets", "targets": targets}})
    entries = core.load_metadata(data.encode())[0]["signed"]["targets"]
    assert isinstance(entries, core.EntryMap)
    return entries


@settings(suppress_health_check=FIXTURES_OK)
@given(st.lists(paths, max_size=40, unique=True), st.integers(1, 32), st.data())
def test_matches_python_tuf_and_the_other_core(native, pure, names, bit_length, data):
    index = data.draw(st.integers(0, (1 << bit_length) - 1))
    want = sorted((n for n in names if bin_index(n, bit_length) != index),
                  key=lambda n: n.encode())  # an EntryMap's order: UTF-8 bytes
    for core in (native, pure):
        assert core.misplaced_targets(_entry_map(core, names), bit_length, index) == want
        assert core.misplaced_targets(want + [n for n in names if n not in want],
                                      bit_length, index) == want
        assert core.misplaced_targets(_entry_map(native, names), bit_length, index) == want


@settings(suppress_health_check=FIXTURES_OK)
@given(st.lists(paths, min_size=1, max_size=20, unique=True), st.integers(1, 16))
def test_a_path_is_misplaced_everywhere_but_its_bin(core, names, bit_length):
    oracle = SuccinctRoles([], 1, bit_length, "bins")
    roles = list(oracle.get_roles())
    for name in names:
        right = roles.index(oracle.get_role_for_target(name))
        assert core.misplaced_targets([name], bit_length, right) == []
        assert core.misplaced_targets([name], bit_length, (right + 1) % len(roles)) == (
            [] if len(roles) == 1 else [name])


def test_pypi_shape_bin(core):
    names = [f"packages/{i:02x}/x/project{i}-1.0.tar.gz" for i in range(300)]
    index = bin_index(names[0], 14)
    assert core.misplaced_targets(_entry_map(core, names), 14, index) == sorted(
        n for n in names if bin_index(n, 14) != index)


@pytest.mark.parametrize("bit_length, index, exc", [
    (0, 0, ValueError), (33, 0, ValueError), (4, 16, ValueError), (4, -1, ValueError),
    (2 ** 70, 0, ValueError), (4, 2 ** 70, ValueError), ("4", 0, TypeError),
    (4, 1.0, TypeError), (None, 0, TypeError),
])
def test_bad_arguments(core, bit_length, index, exc):
    with pytest.raises(exc):
        core.misplaced_targets([], bit_length, index)


def test_bad_paths(core):
    with pytest.raises(TypeError):
        core.misplaced_targets([b"bytes"], 4, 0)
    with pytest.raises(TypeError):
        core.misplaced_targets(None, 4, 0)
    with pytest.raises(FormatError):
        core.misplaced_targets(["\ud800"], 4, 0)
    assert core.misplaced_targets(iter(()), 32, 2 ** 32 - 1) == []
    with pytest.raises(ZeroDivisionError):  # the iterable's own error passes through
        core.misplaced_targets((1 / 0 for _ in [1]), 4, 0)
