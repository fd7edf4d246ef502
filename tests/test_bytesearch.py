"""The marker search of the fast path's first pass: memmem where the C library has it."""

from __future__ import annotations

import sys

from hypothesis import example, given
from hypothesis import strategies as st

from logdiag.fastpath import bytesearch
from logdiag.fastpath.bytesearch import Haystack

MARKERS = st.sampled_from([b",ERROR,", b"ERROR:", b'"error_severity":"ERROR"', b"E", b"\n"])


@given(
    chunks=st.lists(st.one_of(st.binary(max_size=40), MARKERS), max_size=30),
    marker=MARKERS,
    bounds=st.tuples(st.integers(0, 2000), st.integers(0, 2000)),
)
@example(chunks=[b"x,ERROR,"], marker=b",ERROR,", bounds=(1, 8))  # a window just the marker's size
@example(chunks=[b"x,ERROR,"], marker=b",ERROR,", bounds=(1, 7))  # one byte short
def test_haystack_finds_what_bytes_find_finds(chunks, marker, bounds):
    data = b"".join(chunks)
    start, end = sorted(min(bound, len(data)) for bound in bounds)
    assert Haystack(data).find(marker, start, end) == data.find(marker, start, end)


def test_haystack_without_memmem_uses_bytes_find(monkeypatch):
    monkeypatch.setattr(bytesearch, "_MEMMEM", None)
    data = b"LOG:  x\nERROR:  y\n"
    assert Haystack(data).find(b"ERROR:", 0, len(data)) == 8
    assert Haystack(data).find(b"ERROR:", 9, len(data)) == -1


def test_memmem_is_used_where_the_c_library_has_it():
    """glibc and macOS's libc have memmem: on those the GIL-free search must actually be in use."""
    if sys.platform.startswith(("linux", "darwin")):
        assert bytesearch._MEMMEM is not None
