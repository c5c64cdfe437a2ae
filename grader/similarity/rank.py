"""All pairs of a class ranked at once: submissions x fingerprints as a sparse 0/1 matrix X,
and X @ X.T counts the fingerprints each pair shares. A pair's estimate is that count over
the smaller submission's fingerprints (near copydetect's similarity, which is exact but
costs a comparison per pair). Only the best pairs are then compared exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class Ranking:
    """Pairs (i < j) sharing at least one fingerprint, best first; arrays of one length."""

    i: np.ndarray  # int64
    j: np.ndarray  # int64
    shared: np.ndarray  # int64: fingerprints the pair shares
    estimate: np.ndarray  # float64: shared / the smaller submission's fingerprints, 0..1

    def __len__(self) -> int:
        return len(self.i)

    def top(self, count: int, at_least: float = 2.0) -> list[tuple[int, int, float]]:
        """The first `count` pairs, and beyond them every pair whose estimate is at least
        `at_least`: [(i, j, estimate)]."""
        keep = np.arange(len(self)) < count
        keep |= self.estimate >= at_least
        return [(int(a), int(b), float(e)) for a, b, e in zip(self.i[keep], self.j[keep], self.estimate[keep])]


def rank(hash_sets: list[set[int]]) -> Ranking:
    """Rank every pair of the n fingerprint sets by one sparse product; ties by more shared."""
    sizes = np.array([len(h) for h in hash_sets], dtype=np.int64)
    empty = np.array([], dtype=np.int64)
    if len(hash_sets) < 2 or not sizes.any():
        return Ranking(empty, empty, empty, np.array([], dtype=np.float64))
    flat = np.fromiter((h for s in hash_sets for h in s), dtype=np.int64, count=int(sizes.sum()))
    _, columns = np.unique(flat, return_inverse=True)
    rows = np.repeat(np.arange(len(hash_sets)), sizes)
    x = sparse.csr_matrix((np.ones(len(flat), dtype=np.int32), (rows, columns.ravel())),
                          shape=(len(hash_sets), int(columns.max()) + 1))
    product = sparse.triu(x @ x.T, k=1).tocoo()  # upper triangle: each pair once, no diagonal
    i, j = product.row.astype(np.int64), product.col.astype(np.int64)
    shared = product.data.astype(np.int64)
    estimate = shared / np.minimum(sizes[i], sizes[j]).clip(min=1)
    order = np.lexsort((-shared, -estimate))
    return Ranking(i[order], j[order], shared[order], estimate[order])
