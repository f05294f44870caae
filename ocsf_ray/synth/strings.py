"""Vectorised string building: ids, decimal trace ids, IPs and message templates.

Millions of strings per run rule out f-strings per event; every function here builds
an Arrow string array from numpy digit matrices or Arrow compute kernels.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DEC = np.frombuffer(b"0123456789", dtype=np.uint8)
_MASK32 = np.uint64(0xFFFFFFFF)
_BILLION = np.uint64(1_000_000_000)


def from_char_matrix(chars: np.ndarray, first: np.ndarray | None = None) -> pa.StringArray:
    """Rows of an (n, width) uint8 ASCII matrix as strings, row i starting at `first[i]`."""
    n, width = chars.shape
    if first is None:
        data = np.ascontiguousarray(chars).reshape(-1)
        offsets = np.arange(n + 1, dtype=np.int64) * width
    else:
        data = chars[np.arange(width)[None, :] >= first[:, None]]
        offsets = np.concatenate([[0], np.cumsum(width - first)]).astype(np.int64)
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())]
    ).cast(pa.string())


def hex_chars(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) matrix of the lowest `width` hex digits of uint64 `values`."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    return _HEX[(values.astype(np.uint64)[:, None] >> shifts) & np.uint64(0xF)]


def hex_ids(values: np.ndarray, width: int = 16, prefix: str = "") -> pa.StringArray:
    """Fixed-width lowercase hex strings (span ids, session ids)."""
    chars = hex_chars(values, width)
    if prefix:
        head = np.broadcast_to(np.frombuffer(prefix.encode(), np.uint8), (len(values), len(prefix)))
        chars = np.concatenate([head, chars], axis=1)
    return from_char_matrix(chars)


def hex128(hi: np.ndarray, lo: np.ndarray) -> pa.StringArray:
    """32-digit lowercase hex of 128-bit ids given as two uint64 halves (OTel trace ids)."""
    return from_char_matrix(np.concatenate([hex_chars(hi, 16), hex_chars(lo, 16)], axis=1))


def decimal128(hi: np.ndarray, lo: np.ndarray) -> pa.StringArray:
    """Decimal strings of the same 128-bit ids, as some log exporters write trace ids.

    Long division by 10^9 over four 32-bit limbs keeps every intermediate below 2^62.
    """
    hi, lo = hi.astype(np.uint64), lo.astype(np.uint64)
    limbs = [hi >> np.uint64(32), hi & _MASK32, lo >> np.uint64(32), lo & _MASK32]
    chunks = []
    for _ in range(5):  # 5 * 9 = 45 digits >= 39, the most a 128-bit number has
        rem = np.zeros_like(hi)
        for i, limb in enumerate(limbs):
            cur = (rem << np.uint64(32)) | limb
            limbs[i], rem = cur // _BILLION, cur % _BILLION
        chunks.append(rem)
    powers = 10 ** np.arange(8, -1, -1, dtype=np.uint64)
    digits = np.concatenate([(c[:, None] // powers) % np.uint64(10) for c in reversed(chunks)], axis=1)
    nonzero = digits != 0
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), digits.shape[1] - 1)
    return from_char_matrix(_DEC[digits], first)


def ipv4(octets: np.ndarray) -> pa.StringArray:
    """Dotted quads from an (n, 4) integer matrix."""
    parts = [pc.cast(pa.array(octets[:, i].astype(np.int64)), pa.string()) for i in range(4)]
    return pc.binary_join_element_wise(*parts, ".")


def ints(values: np.ndarray) -> pa.StringArray:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def concat(*parts: str | pa.Array) -> pa.StringArray:
    """Element-wise concatenation of literals and string arrays."""
    return pc.binary_join_element_wise(*parts, "")


@lru_cache(maxsize=None)
def _parse(template: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((literal, field) for literal, field, _, _ in string.Formatter().parse(template))


def render(
    templates: Sequence[str], choice: np.ndarray, slots: Mapping[str, pa.Array | np.ndarray]
) -> pa.StringArray:
    """Messages from `templates[choice[i]]` with `{slot}` fields filled from row i of `slots`.

    Rows are grouped by template, so the Python loop runs once per template in use,
    never per event. Numeric slots are formatted as integers.
    """
    n = len(choice)
    if n == 0:
        return pa.array([], pa.string())
    order = np.argsort(choice, kind="stable")
    used, starts = np.unique(choice[order], return_index=True)
    bounds = np.append(starts, n)
    cache: dict[str, pa.Array] = {}
    pieces = []
    for k, tid in enumerate(used):
        rows = pa.array(order[bounds[k] : bounds[k + 1]])
        parts: list[str | pa.Array] = []
        for literal, field in _parse(templates[int(tid)]):
            if literal:
                parts.append(literal)
            if field:
                if field not in cache:
                    value = slots[field]
                    cache[field] = value if isinstance(value, pa.Array) else ints(value)
                parts.append(cache[field].take(rows))
        if not any(isinstance(p, pa.Array) for p in parts):
            parts.append(pa.array(np.full(len(rows), "", dtype=object), pa.string()))
        pieces.append(concat(*parts))
    return pa.concat_arrays(pieces).take(pa.array(np.argsort(order, kind="stable")))


def event_uids(run_tag: int, source: int, hour: int, part: int, rows: np.ndarray) -> pa.StringArray:
    """UUID-shaped event ids, unique by construction.

    The 128 bits are run tag (32), source (8), hour (24), part (16) and row number
    (48), so two events of one archive never share an id and ids of archives made
    with different seeds differ too.
    """
    n = len(rows)
    hi = np.full(n, (run_tag << 32) | (source << 24) | hour, dtype=np.uint64)
    lo = (np.uint64(part) << np.uint64(48)) | np.asarray(rows, dtype=np.uint64)
    digits = np.concatenate([hex_chars(hi, 16), hex_chars(lo, 16)], axis=1)
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    cuts = [digits[:, :8], dash, digits[:, 8:12], dash, digits[:, 12:16], dash,
            digits[:, 16:20], dash, digits[:, 20:]]
    return from_char_matrix(np.concatenate(cuts, axis=1))
