"""Triplet hashing and the fingerprint index: determinism, invariances, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from companion.fingerprint.hashing import cap_chords, extract_triplets, hash_features
from companion.fingerprint.index import FingerprintIndex, FingerprintParams
from companion.score.model import NOTE_DTYPE


def _notes(onset_s, pitch) -> np.ndarray:
    out = np.zeros(len(onset_s), dtype=NOTE_DTYPE)
    out["onset_s"] = onset_s
    out["onset_quarters"] = onset_s
    out["pitch"] = pitch
    return out


def _random_piece(seed: int, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ioi = rng.choice([0.0, 0.125, 0.25, 0.375, 0.5, 0.75], size=n, p=[0.2, 0.3, 0.25, 0.1, 0.1, 0.05])
    onset = np.cumsum(ioi)
    pitch = np.clip(60 + np.cumsum(rng.integers(-4, 5, n)), 30, 100)
    order = np.lexsort((pitch, onset))
    return _notes(onset[order], pitch[order])


def _triplet_set(tr) -> set:
    return set(zip(tr["hash"].tolist(), np.round(tr["t1"], 6).tolist(), tr["p1"].tolist()))


def test_cap_chords_keeps_lowest_and_highest():
    onset = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.01, 1.0, 1.0])
    pitch = np.array([60, 48, 72, 64, 67, 36, 76, 50, 50])
    keep, gstart = cap_chords(onset, pitch, chord_tolerance_s=0.035, max_low=2, max_high=2)
    assert gstart.tolist() == [0, 4, 5]
    assert pitch[keep[:4]].tolist() == [36, 48, 72, 76]  # 2 lowest + 2 highest of the 7-note chord
    assert pitch[keep[4:]].tolist() == [50]  # duplicate pitch dropped


def test_quantisation_known_values():
    p = FingerprintParams()
    kw = dict(pitch_clip=p.pitch_clip, tau_bins_per_octave=p.tau_bins_per_octave, tau_max_octaves=p.tau_max_octaves)
    h = hash_features(np.array([2, 2, 2, 40, 36]), np.array([-1, -1, -1, 0, 0]), np.array([1.0, 1.05, 2.0, 1.0, 1.0]), **kw)
    assert h[0] == h[1]  # within one τ bin
    assert h[0] != h[2]  # τ = 2 is another bin
    assert h[3] == h[4]  # intervals beyond pitch_clip are clipped
    assert h.max() < p.n_hash


def test_hashing_is_deterministic():
    notes = _random_piece(1)
    a = FingerprintIndex.build([notes, _random_piece(2)])
    b = FingerprintIndex.build([notes, _random_piece(2)])
    for name, arr in a.arrays().items():
        np.testing.assert_array_equal(arr, b.arrays()[name], err_msg=name)
    assert a.n_entries > 0


def test_triplets_are_transposition_and_tempo_invariant():
    p = FingerprintParams()
    notes = _random_piece(3)
    # keep every onset difference inside [min_dt, max_dt] after scaling so that the triplet sets agree
    scale, shift = 1.6, -5
    base = extract_triplets(notes["onset_s"], notes["pitch"], **p.triplet_kwargs())
    moved = extract_triplets(notes["onset_s"] * scale, notes["pitch"] + shift, **p.triplet_kwargs())
    assert len(base["hash"]) == len(moved["hash"]) > 100
    np.testing.assert_array_equal(base["hash"], moved["hash"])
    np.testing.assert_allclose(moved["dt12"], base["dt12"] * scale)
    np.testing.assert_array_equal(moved["p1"], base["p1"] + shift)


def test_query_neighbour_bins_add_entries_only():
    p = FingerprintParams()
    notes = _random_piece(4)
    plain = extract_triplets(notes["onset_s"], notes["pitch"], **p.triplet_kwargs())
    wide = extract_triplets(notes["onset_s"], notes["pitch"], neighbour_margin=0.2, **p.triplet_kwargs())
    assert _triplet_set(plain) <= _triplet_set(wide)


def test_params_round_trip_and_validation():
    p = FingerprintParams(fan_out=3, max_dt_s=2.5)
    d = p.to_dict()
    assert FingerprintParams.from_dict(d) == p
    import json

    assert FingerprintParams.from_dict(json.loads(json.dumps(d))) == p
    with pytest.raises(ValueError, match="unknown"):
        FingerprintParams.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="min_dt_s"):
        FingerprintParams(min_dt_s=2.0, max_dt_s=1.0)


def test_index_round_trips_through_memmapped_arrays(tmp_path):
    pieces = [_random_piece(s) for s in range(5)]
    idx = FingerprintIndex.build(pieces)
    for name, arr in idx.arrays().items():
        np.save(tmp_path / f"{name}.npy", arr)
    loaded = {name: np.load(tmp_path / f"{name}.npy", mmap_mode="r") for name in idx.arrays()}
    back = FingerprintIndex.from_arrays(loaded, idx.params)
    assert isinstance(back.piece, np.memmap)
    for name, arr in idx.arrays().items():
        np.testing.assert_array_equal(arr, back.arrays()[name], err_msg=name)
    assert back.n_pieces == 5 and back.n_entries == idx.n_entries
    # every triplet is stored under its own hash, with its piece
    for pid in range(5):
        tr = extract_triplets(pieces[pid]["onset_s"], pieces[pid]["pitch"], **idx.params.triplet_kwargs())
        h = int(tr["hash"][0])
        rows = slice(back.bucket_start[h], back.bucket_start[h + 1])
        assert pid in set(back.piece[rows].tolist())


def test_from_arrays_rejects_bad_arrays():
    idx = FingerprintIndex.build([_random_piece(0)])
    arrays = idx.arrays()
    with pytest.raises(ValueError, match="missing"):
        FingerprintIndex.from_arrays({k: v for k, v in arrays.items() if k != "t1"}, idx.params)
    bad = dict(arrays, t1=arrays["t1"].astype(np.float64))
    with pytest.raises(ValueError, match="t1"):
        FingerprintIndex.from_arrays(bad, idx.params)
    with pytest.raises(ValueError, match="parameters"):
        FingerprintIndex.from_arrays(arrays, FingerprintParams(pitch_clip=24))


def test_empty_inputs():
    idx = FingerprintIndex.build([_notes([], []), _random_piece(1)])
    assert idx.n_pieces == 2
    assert len(idx.piece_notes(0)[0]) == 0
    assert FingerprintIndex.build([]).n_entries == 0


def test_pitch_runs_and_nearest_note_lookup():
    from companion.fingerprint._verify import _closest, _run, pitch_runs

    pieces = [_random_piece(s, n) for s, n in ((1, 300), (2, 0), (3, 500))]
    ix = FingerprintIndex.build(pieces)
    po, pitch_start, local = pitch_runs(ix.note_onset_s, ix.note_pitch, ix.piece_start)
    assert len(po) == len(ix.note_onset_s) and pitch_start[-1] == len(po)
    rng = np.random.default_rng(0)
    for p in (0, 1, 2):
        a0, b0 = int(ix.piece_start[p]), int(ix.piece_start[p + 1])
        assert pitch_start[128 * p] == a0 and pitch_start[128 * (p + 1)] == b0  # a piece keeps its rows
        son, spi = ix.note_onset_s[a0:b0].astype(np.float64), ix.note_pitch[a0:b0]
        stamp = np.zeros(max(b0 - a0, 1), np.uint8)
        for _ in range(200):
            target, s, tol = int(rng.integers(15, 115)), float(rng.uniform(-1, son[-1] + 1 if len(son) else 1)), 0.5
            a, b = _run(pitch_start, p, target)
            np.testing.assert_array_equal(po[a:b], np.sort(son[spi == target]))
            np.testing.assert_array_equal(son[local[a:b]], po[a:b])
            j = _closest(po, a, b, s, tol, stamp, a0)
            cand = np.flatnonzero((spi == target) & (np.abs(son - s) <= tol))
            if len(cand) == 0:
                assert j == -1
            else:  # the nearest same-pitch note (the earlier of two equally near ones)
                assert j >= 0 and abs(po[j] - s) == np.abs(son[cand] - s).min()
    assert _run(pitch_start, 0, 128) == (0, 0) and _run(pitch_start, 0, -1) == (0, 0)


def _dense_lcs_value(qon, qpi, son, spi, lo, hi, a, r, t, tc, band_s, band_slope) -> float:
    """The full O(n_query n_score) table of the banded heaviest common subsequence (reference)."""
    nq, ns = len(qon), hi - lo
    dp = np.zeros((nq + 1, ns + 1))
    for i in range(1, nq + 1):
        s_pred = a + r * qon[i - 1]
        w = (band_s + band_slope * abs(qon[i - 1] - tc)) * r
        for j in range(1, ns + 1):
            best = max(dp[i - 1, j], dp[i, j - 1])
            dev = abs(son[lo + j - 1] - s_pred)
            if spi[lo + j - 1] == qpi[i - 1] + t and dev <= w:
                best = max(best, dp[i - 1, j - 1] + 1.0 - 0.5 * dev / w)
            dp[i, j] = best
    return dp[nq, ns]


def test_sparse_banded_lcs_equals_the_full_table():
    from companion.fingerprint._verify import _banded_lcs, pitch_runs

    rng = np.random.default_rng(7)
    for trial in range(30):
        piece = _random_piece(100 + trial, 250)
        ix = FingerprintIndex.build([_random_piece(99, 50), piece])
        po, pitch_start, local = pitch_runs(ix.note_onset_s, ix.note_pitch, ix.piece_start)
        p, base = 1, int(ix.piece_start[1])
        son = ix.note_onset_s[base:].astype(np.float64)
        spi = ix.note_pitch[base:].astype(np.int64)
        # a query: a stretch of the piece, re-timed, with some notes dropped and some replaced
        i0 = int(rng.integers(0, 150))
        sel = np.arange(i0, i0 + 60)[rng.random(60) > 0.2]
        r, t = float(rng.uniform(0.7, 1.4)), int(rng.integers(-3, 4))
        qon = (son[sel] - son[i0]) / r + rng.normal(0, 0.03, len(sel))
        qpi = spi[sel] - t
        qpi[rng.random(len(sel)) < 0.15] += 1
        order = np.lexsort((qpi, qon))
        qon, qpi = qon[order], qpi[order]
        tc = 0.5 * (qon[0] + qon[-1])
        a = son[i0] + float(rng.normal(0, 0.1))
        lo, hi = max(i0 - 20, 0), min(i0 + 80, len(son))
        pq, ps = _banded_lcs(qon, qpi, lo, hi, po, pitch_start, local, p, base, a, r, t, tc, 0.5, 0.15)
        w = (0.5 + 0.15 * np.abs(pq - tc)) * r
        value = float(np.sum(1.0 - 0.5 * np.abs(ps - (a + r * pq)) / w))
        assert len(pq) >= 10 and np.all(np.diff(ps) >= 0) and np.all(np.diff(pq) >= 0)
        assert value == pytest.approx(_dense_lcs_value(qon, qpi, son, spi, lo, hi, a, r, t, tc, 0.5, 0.15),
                                      abs=1e-9)
