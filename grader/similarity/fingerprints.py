"""Fingerprints of code, by copydetect: its tokenizer turns names into one letter and drops
comments and spaces, and it keeps winnowed hashes of `noise`-long k-grams of what is left.

Each distinct piece of code is fingerprinted once (cached by the sha256 of its text): a
class where many students hand in the same file costs one fingerprint. copydetect hashes
k-grams with Python's `hash`, which is salted per process, so fingerprints are only
comparable within one process and are not kept on disk.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from copydetect import CodeFingerprint, compare_files

from grader.course import SimilaritySpec

LANGUAGE = "python"  # notebooks too: their code cells are Python


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def fingerprint(code: str, spec: SimilaritySpec, boilerplate: np.ndarray | None = None,
                window: int | None = None) -> CodeFingerprint:
    """copydetect's fingerprint of `code`; hashes found in `boilerplate` (an int64 array)
    are dropped. window: winnowing window (default: guarantee - noise + 1, as copydetect)."""
    win = window if window is not None else spec.guarantee - spec.noise + 1
    return CodeFingerprint("submission.py", spec.noise, win, boilerplate=boilerplate,
                           language=LANGUAGE, fp=io.StringIO(code))


def boilerplate_hashes(codes: list[str], spec: SimilaritySpec) -> np.ndarray:
    """Every k-gram hash of the given code (no winnowing, as copydetect does for
    boilerplate): a sorted int64 array."""
    hashes = [np.fromiter(fingerprint(c, spec, window=1).hashes, dtype=np.int64) for c in codes]
    return np.unique(np.concatenate(hashes)) if hashes else np.array([], dtype=np.int64)


class FingerprintCache:
    """Fingerprints by code hash, for one run (one spec, one set of boilerplate)."""

    def __init__(self, spec: SimilaritySpec, boilerplate: np.ndarray) -> None:
        self.spec = spec
        self.boilerplate = boilerplate
        self._by_hash: dict[str, CodeFingerprint] = {}

    def get(self, code: str, digest: str | None = None) -> CodeFingerprint:
        digest = digest or code_hash(code)
        fp = self._by_hash.get(digest)
        if fp is None:
            fp = self._by_hash[digest] = fingerprint(code, self.spec, self.boilerplate)
        return fp

    def __len__(self) -> int:
        return len(self._by_hash)


def spans(slices: np.ndarray) -> list[tuple[int, int]]:
    """copydetect's 2 x N slice array as (start, end) pairs."""
    if slices is None or len(slices) == 0 or np.size(slices) == 0:
        return []
    return [(int(s), int(e)) for s, e in zip(slices[0], slices[1])]


def compare(fp_a: CodeFingerprint, fp_b: CodeFingerprint) -> tuple[float, float, list[tuple[int, int]],
                                                                   list[tuple[int, int]]]:
    """(share of a found in b, share of b found in a, shared spans in a, in b) by
    copydetect's compare_files; spans are character offsets into each code."""
    _, (share_a, share_b), (slices_a, slices_b) = compare_files(fp_a, fp_b)
    return min(float(share_a), 1.0), min(float(share_b), 1.0), spans(slices_a), spans(slices_b)
