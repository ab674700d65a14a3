"""The analyzer's C code against its Python oracle (tests/oracle_columns.py), and the analyzer
without its C code: one error, never a slow path."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import oracle_columns as oracle
import pandas as pd
import pytest
from conftest import build, iotrace
from iotrace.analyzer import group_scans
from iotrace.analyzer.event_columns import require_native
from iotrace.analyzer.load import _sort_order, _threads, _typed_frame, map_ids

from iotrace.format import NULL_BITS

RNG = np.random.default_rng(12)


def test_group_scans_are_their_oracle_s():
    n, k = 5000, 37
    group = RNG.integers(0, k, n).astype(np.int64)
    val = RNG.integers(-1000, 1000, n).astype(np.int64)
    assert np.array_equal(
        group_scans.prev_in_group(group, val, k, -7), oracle.prev_in_group(group, val, k, -7)
    )
    start = np.sort(RNG.integers(0, 10**6, n)).astype(np.int64)
    end = start + RNG.integers(0, 5000, n)
    assert np.array_equal(
        group_scans.union_length(group, start, end, k), oracle.union_length(group, start, end, k)
    )
    out = RNG.random(n) < 0.3  # a group < 0: no interval (the subset, no copies)
    assert np.array_equal(
        group_scans.union_length(np.where(out, -1, group), start, end, k),
        oracle.union_length(group[~out], start[~out], end[~out], k),
    )


def test_sums_and_maxima_are_numpys_s():
    n, k = 5000, 41
    key = RNG.integers(-3, k, n).astype(np.int64)  # < 0: no element
    w0 = RNG.integers(-(10**15), 10**15, n)  # float64 sums of these would round
    w1 = RNG.integers(0, 10**6, n)
    kept = key >= 0
    counts, s0, s1 = group_scans.sums(key, k, w0, w1)
    assert np.array_equal(counts, np.bincount(key[kept], minlength=k))
    for s, w in ((s0, w0), (s1, w1)):
        assert s.tolist() == [sum(w[kept & (key == b)].tolist()) for b in range(k)]
    assert np.array_equal(group_scans.sums(key, k, w1)[1], s1)
    assert np.array_equal(group_scans.sums(key, k)[0], counts)
    with pytest.raises(ValueError, match="past the 40 bins"):
        group_scans.sums(key, k - 1)
    want = np.zeros(k, dtype=np.int64)  # the furthest ends: np.maximum.at over zeros
    np.maximum.at(want, key[kept], w0[kept])
    assert np.array_equal(group_scans.max_by(key, k, w0), want)
    with pytest.raises(ValueError, match="past the 40 bins"):
        group_scans.max_by(key, k - 1, w0)


def test_bandwidth_bins_are_the_numpy_ones_s():
    # iot_one_bin (the calls within one bin, in C) and numpy's the rest: the same floats as
    # numpy alone, with calls on the bins' edges, next to them, over several bins, of no time,
    # before the start, past the span, and too far for int64 quotients
    from types import SimpleNamespace

    from iotrace.analyzer.access import READ, WRITE
    from iotrace.analyzer.job import BANDWIDTH_BINS, bandwidth_sums

    # (822970, 869044: some bin edges' x / w floor one above x // w, numpy's)
    for span in (10**9, 123_456_789_123, 999, 1, 822_970, 869_044):
        w = span / BANDWIDTH_BINS
        x = np.arange(-2, BANDWIDTH_BINS + 3) * w
        edge = np.concatenate([x, np.nextafter(x, -np.inf), np.nextafter(x, np.inf)])
        start = np.concatenate([
            edge.astype(np.int64), RNG.integers(-span // 50, span + span // 50, 3000),
            np.array([2**62, -(2**62)]),
        ])  # fmt: skip
        n = len(start)
        length = RNG.choice([0, 1, 2, max(int(w), 1), 3 * span // BANDWIDTH_BINS + 5], n)
        a = SimpleNamespace(
            n=n,
            data=RNG.random(n) < 0.9,
            op=RNG.choice(np.array([READ, WRITE], np.int8), n),
            t_start=start,
            t_end=start + length,
            bytes=RNG.integers(0, 10**7, n),
        )
        got, want = bandwidth_sums(a, span), oracle.bandwidth_sums(a, span, BANDWIDTH_BINS)
        assert np.array_equal(got, want), span
        assert got.any(), span


def test_id_mapping_is_its_oracle_s():
    n = 5000
    nulls = RNG.choice(np.array([0, NULL_BITS["path"], NULL_BITS["stack"]], np.uint16), n)

    def cols() -> dict[str, np.ndarray]:
        r = np.random.default_rng(3)
        return {
            "t_start": r.integers(0, 10**12, n).astype(np.int64),
            "fn": r.integers(-3, 60, n).astype(np.int16),  # some out of the table
            "path": r.integers(-2, 120, n).astype(np.int32),
            "stack": r.integers(-1, 50, n).astype(np.int32),
            "nulls": nulls.copy(),
        }

    fn_lut = RNG.integers(0, 200, 51).astype(np.int16)
    path_lut = RNG.integers(-1, 500, 100).astype(np.int32)
    c, o = cols(), cols()
    assert map_ids(c, -12345, fn_lut, path_lut, 7) == oracle.map_ids(o, -12345, fn_lut, path_lut, 7)
    for k in c:
        assert np.array_equal(c[k], o[k]), k


def test_the_time_order_is_a_stable_sort_and_none_for_one_run():
    """load's merge of each thread's runs: numpy's stable argsort; one run (a one-thread part)
    is in order already: None, and the C merge writes no order for it (its cost was a whole
    merge through the heap, ~7 ms a 625,000-event part, for nothing)."""
    runs = [np.sort(RNG.integers(0, 400, m)) for m in (900, 1300, 700)]  # ties across runs
    t = np.concatenate(runs).astype(np.int64)
    assert np.array_equal(_sort_order(t), np.argsort(t, kind="stable"))
    one = np.sort(RNG.integers(0, 10**9, 5000)).astype(np.int64)
    assert _sort_order(one) is None
    nat = require_native()
    order = np.full(len(one), -5, dtype=np.int32)
    got = nat.lib.iot_merge_order(
        nat.ptr("int64_t *", one), len(one), 64, nat.ptr("int32_t *", order)
    )
    assert got == 1 and (order == -5).all()


def test_a_parts_threads_are_each_hosts_distinct_threads():
    """load._threads (the STOP records a part keeps) from the runs' heads: each host's
    distinct thread ids, as pd.unique over every event found them."""
    tid = RNG.choice(np.array([7, 9, 11, 4000], np.int32), 3000)
    tid[100:900] = 12  # long runs, as a log's chunks make
    host = RNG.choice(np.array([0, 1]), 3000)
    ev = pd.DataFrame({"tid": tid, "host": pd.Categorical.from_codes(host, ["a", "b"])})
    got = _threads(ev)
    assert set(got) == {"a", "b"}
    for code, name in enumerate(["a", "b"]):
        want = np.sort(pd.unique(tid[host == code])).astype(np.int64)
        assert np.array_equal(got[name], want) and got[name].dtype == np.int64


def test_typed_frames_are_astype_s():
    """The processes and KIO tables made column by column in their dtypes: what
    DataFrame(rows).astype(dtypes) made (NA, lists in object columns, no rows)."""
    from iotrace.analyzer import schema

    row = {k: 3 for k in schema.PROCESS_COLUMNS} | {
        "source": "shim", "host": "h", "rank": None, "ppid": None, "command": ["a", "b"],
        "exe": "x", "cwd": "/", "forked": True, "exit_status": None, "ended": "exit",
        "truncated": False, "log": "h.3.iot", "pid": 2**32 + 5,  # wrapped, as astype does
    }  # fmt: skip
    for rows in ([row, {**row, "rank": 4, "exit_status": 1, "command": "c"}], []):
        want = pd.DataFrame(rows, columns=list(schema.PROCESS_COLUMNS))
        want = want.astype(schema.PROCESS_COLUMNS)  # type: ignore[arg-type]
        pd.testing.assert_frame_equal(_typed_frame(rows, schema.PROCESS_COLUMNS), want)


def test_the_analyzer_without_its_c_code_is_one_error(tmp_path: Path):
    """A stale _decode.so and no usable cache to build one in: `iotrace report` says why and
    stops (status 2), where it used to load with the Python decoder, 50 times slower."""
    import iotrace.analyzer as an

    out = tmp_path / "t"
    r = iotrace("run", "--no-stracer", "-o", str(out), "--", str(build("ft_fill")), "3", "0",
                str(tmp_path / "f"))  # fmt: skip
    assert r.returncode == 7, r.stderr
    pkg = tmp_path / "site" / "iotrace"
    shutil.copytree(Path(an.__file__).parent.parent, pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (pkg / "analyzer" / "_decode.so").unlink()
    (tmp_path / "a-file").write_text("")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pkg.parent),
           "IOTRACE_CACHE": str(tmp_path / "a-file" / "cache")}  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "iotrace", "report", str(out)], capture_output=True,
                       text=True, env=env, timeout=120)  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and not r.stdout
    assert "the analyzer needs its C code" in r.stderr.splitlines()[-1], r.stderr
