"""`iotrace export DIR --format parquet|csv|chrome -o OUT`.

- parquet: OUT/ holds `events/` (a Hive-partitioned dataset, `source=.../host=.../*.parquet`, in
  time order within each file) and `processes.parquet` (a row per log or image;
  `process_start` and `process_nth` name the process it is of, iotrace.incarnation),
  `files.parquet`, `stacks.parquet`, `missed.parquet`.  DuckDB:
  `read_parquet('OUT/events/**/*.parquet', hive_partitioning=true)`; Spark:
  `spark.read.parquet('OUT/events')`; Dask/pandas: `read_parquet('OUT/events')`.
- csv: OUT/ holds `events.csv`, `processes.csv`, `files.csv`, `stacks.csv`, `missed.csv`.
- File names that are not UTF-8 (Linux allows any bytes): the tables hold text, so such a name
  is spelled with its bytes that are not UTF-8 as `\\xNN` (as `show` prints them), and in Parquet
  and CSV the table gets a column `<column>_bytes` with its exact bytes (Parquet: binary; CSV:
  hex), null for the other rows; the column exists only when such a name does.  Chrome JSON has
  the spelled name and `args.path_bytes` (hex).
- darshan: OUT is one Darshan log, written by libdarshan-util (analyzer/darshan.py).
- chrome: OUT is one JSON file in the Chrome trace-event format (Perfetto UI, chrome://tracing):
  a process track per traced process ("rank R: command (pid P @host)"; a reused pid's second
  process is `P#2`, its track's number above every pid's), a thread track per thread,
  every call a complete ('X') slice; the stracer's missed syscalls in category `missed`, coloured
  apart (`cname`), with `args.missed`, `args.source` and their call site (`args.site`); their
  duration is the stracer's, entry stop to exit stop.
"""

from __future__ import annotations

import io
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from iotrace import __version__
from iotrace.incarnation import label
from iotrace.tracedir import check_way, open_dir, write_atomic

from . import proc_keys

if TYPE_CHECKING:
    from .parts import Bounded
    from .trace import Trace

FORMATS = ("parquet", "csv", "chrome", "darshan")
ROWS_PER_GROUP = 1 << 20
CHROME_BATCH = 100_000


def _processes(procs: pd.DataFrame) -> pd.DataFrame:
    """The processes table as exported: a row per log or image, with the process it is of
    (`process_start`: with host and pid it names the process; a pid reused in the run names
    several) and which of its pid's processes that is (`process_nth`, 1 the first)."""
    start, nth = proc_keys.of_table(procs)
    return procs.assign(process_start=start, process_nth=nth)


def _tables(trace: Trace) -> dict[str, pd.DataFrame]:
    return {
        "processes": _processes(trace.processes),
        "files": trace.files,
        "stacks": trace.stacks,
        "missed": trace.missed,
    }


def trace_of_parts(trace_dir: str, frames: list[pd.DataFrame], t0: int, duration: int) -> Trace:
    """The whole trace's metadata (its processes, start and end; no events) from its parts'
    own rows of the processes table (parts._owned), as parts.merge joins them: what the Darshan
    and Chrome exports read besides the parts' events.  Before, the command loaded the whole
    trace's metadata once more for it (every header, the stracer log's records: ~14 KB a
    process at that load's peak, the command's alone when the parts ran in workers)."""
    from . import parts, schema
    from .trace import Trace

    if frames:
        procs = parts._concat(frames).sort_values("proc", kind="stable").reset_index(drop=True)
        procs = parts._ranges_summed(procs, ["events"])  # a process cut into ranges: one row
    else:
        procs = pd.DataFrame({c: pd.Series([], dtype=t) for c, t in schema.PROCESS_COLUMNS.items()})
    procs = procs.astype(schema.PROCESS_COLUMNS)  # type: ignore[arg-type]
    return Trace(Path(trace_dir), pd.DataFrame(), procs, t0, duration, [], {}, {})


def _exact_names(df: pd.DataFrame, exact: dict[str, bytes], hex_bytes: bool) -> pd.DataFrame:
    """Every text column holding a name that is not UTF-8 gets `<column>_bytes` (module
    docstring)."""
    if not exact:
        return df
    out = df
    for col in df.columns:
        s = df[col]
        cat = isinstance(s.dtype, pd.CategoricalDtype)
        values = s.cat.categories if cat else s if pd.api.types.is_string_dtype(s.dtype) else None
        if values is None or not any(isinstance(v, str) and v in exact for v in values):
            continue
        col_exact = [exact.get(v) if isinstance(v, str) else None for v in values]
        if hex_bytes:
            col_exact = [b.hex() if b is not None else None for b in col_exact]
        if out is df:
            out = df.copy()
        if cat:
            out[f"{col}_bytes"] = np.array([*col_exact, None], dtype=object)[s.cat.codes.to_numpy()]
        else:
            out[f"{col}_bytes"] = col_exact
    return out


def _arrow(
    df: pd.DataFrame,
    meta: dict[str, str] | None = None,
    exact: dict[str, bytes] | None = None,
    hex_bytes: bool = False,
) -> pa.Table:
    t = pa.Table.from_pandas(_exact_names(df, exact or {}, hex_bytes), preserve_index=False)
    if meta:
        t = t.replace_schema_metadata(
            {**(t.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}}
        )
    return t


def _meta(trace: Trace) -> dict[str, str]:
    return {
        "iotrace.version": __version__,
        "iotrace.t0_real_ns": str(trace.t0),
        "iotrace.time_unit": "ns since t0",
    }


def _plain(t: pa.Table) -> pa.Table:
    """Dictionary columns as plain strings (CSV, partition keys)."""
    cols = []
    for f, col in zip(t.schema, t.columns, strict=True):
        cols.append(col.cast(pa.string()) if pa.types.is_dictionary(f.type) else col)
    return pa.table(cols, names=t.column_names)


def _out_dir(out: Path) -> None:
    """OUT made 0700, or an existing one that is ours alone (no symlink, no other writer), in a
    directory no other user can change the way to (check_way)."""
    check_way(out)
    open_dir(out).close()


def to_parquet(trace: Trace, out: Path) -> str:
    _out_dir(out)
    ev = _arrow(trace.events, _meta(trace), trace.exact_names)
    for key in ("source", "host"):
        i = ev.schema.get_field_index(key)
        ev = ev.set_column(i, key, ev.column(key).cast(pa.string()))
    ds.write_dataset(
        ev,
        out / "events",
        format="parquet",
        partitioning=ds.partitioning(
            pa.schema([("source", pa.string()), ("host", pa.string())]), flavor="hive"
        ),
        existing_data_behavior="delete_matching",
        max_rows_per_group=ROWS_PER_GROUP,
        min_rows_per_group=min(ROWS_PER_GROUP, max(len(ev), 1)),
        basename_template="part-{i}.parquet",
        preserve_order=True,  # the rows in time order, the same bytes every time (threads)
    )
    for name, df in _tables(trace).items():
        table = _arrow(df, _meta(trace), trace.exact_names)
        write_atomic(out / f"{name}.parquet", lambda f, t=table: pq.write_table(t, f))
    return f"wrote {len(ev):,} events to {out}/events (Parquet, partitioned by source and host)"


def _write_events(ev: pd.DataFrame, meta: dict[str, str], exact: dict[str, bytes], out: Path,
                  name: str) -> int:  # fmt: skip
    """A part's events into OUT/events (Hive partitions by source and host), in row groups:
    a row group's worth at a time, each its own files (`name`-K-N), so that the writer's copies
    of the rows (the partitioning's, the partition keys as text) are of one row group, not of
    the part (~380 MiB more for a 2.5 M-event part, its worker's peak)."""
    t = _arrow(ev, meta, exact)
    for k, at in enumerate(range(0, max(len(t), 1), ROWS_PER_GROUP)):
        rows = t.slice(at, ROWS_PER_GROUP)
        for key in ("source", "host"):
            i = rows.schema.get_field_index(key)
            rows = rows.set_column(i, key, rows.column(key).cast(pa.string()))
        ds.write_dataset(
            rows,
            out / "events",
            format="parquet",
            partitioning=ds.partitioning(
                pa.schema([("source", pa.string()), ("host", pa.string())]), flavor="hive"
            ),
            existing_data_behavior="overwrite_or_ignore",
            max_rows_per_group=ROWS_PER_GROUP,
            min_rows_per_group=min(ROWS_PER_GROUP, max(len(rows), 1)),
            basename_template=f"{name}-{k}-{{i}}.parquet",
            preserve_order=True,  # the rows in time order, the same bytes every time (threads)
        )
        del rows
    return len(t)


def _part_to_parquet(
    trace_dir: str, part: Any, out: str, name: str, shift: tuple[int, int, int], select: Any
) -> pd.DataFrame:
    """One part's events into OUT/events (files `name`-N), stack ids the whole trace's; returns
    its stacks (run in a worker)."""
    from .parts import load_part, shift_stack_ids

    tr = load_part(trace_dir, part, select)
    ev = tr.events
    ids = ev["stack_id"].to_numpy(dtype=np.int64, na_value=-1)
    new = shift_stack_ids(ids, *shift)
    ev["stack_id"] = pd.arrays.IntegerArray(new.astype(np.int32), new < 0)
    _write_events(ev, _meta(tr), tr.exact_names, Path(out), name)
    st = tr.stacks
    st["stack_id"] = shift_stack_ids(st["stack_id"].to_numpy(np.int64), *shift).astype(np.int32)
    return st


def to_parquet_parts(b: Bounded | str | os.PathLike[str], out: str | os.PathLike[str]) -> str:
    """to_parquet in bounded memory (analyzer/parts.py): a first pass over the parts merges
    the tables (processes, files, missed) and numbers their stacks; a second writes each part's
    events as files of its own in OUT/events (each in time order; row groups of
    ROWS_PER_GROUP) and gives its stacks."""
    from . import parts

    o, b = Path(out), parts.Bounded.of(b)
    trace_dir, select = b.trace_dir, b.select
    s, tr, partials, mapper = parts.run(b, export=True)
    _out_dir(o)
    if (o / "events").is_dir():
        import shutil

        shutil.rmtree(o / "events")  # what an earlier export left (write_dataset's delete_matching)
    offsets, stracer_base = parts.stack_offsets(partials)
    stacks = mapper(
        _part_to_parquet,
        [
            (str(trace_dir), p.part, str(o), f"part-{k}", (p.stack_base, off, stracer_base), select)
            for k, (p, off) in enumerate(zip(partials, offsets, strict=True))
        ],
    )
    st = pd.concat(stacks, ignore_index=True).drop_duplicates(["stack_id", "level"])
    st = st.sort_values(["stack_id", "level"], kind="stable").reset_index(drop=True)
    files = parts._merge_files(partials, "files_export")  # as trace.files (holds kept in)
    tables = {
        "processes": _processes(tr.processes),
        "files": files,
        "stacks": st,
        "missed": s.missed,
    }
    meta = _meta(tr)
    for name, df in tables.items():
        table = _arrow(df, meta, tr.exact_names)
        write_atomic(o / f"{name}.parquet", lambda f, t=table: pq.write_table(t, f))
    n = s.overview["events"]
    return f"wrote {n:,} events to {o}/events (Parquet, partitioned by source and host)"


def to_csv(trace: Trace, out: Path) -> str:
    _out_dir(out)
    tables = {"events": trace.events, **_tables(trace)}
    for name, df in tables.items():
        table = _plain(_arrow(df, None, trace.exact_names, True))
        write_atomic(out / f"{name}.csv", lambda f, t=table: pacsv.write_csv(t, f))
    return f"wrote {len(trace.events):,} events to {out}/events.csv (and the other tables)"


def _chrome_pids(procs: pd.DataFrame, nth: np.ndarray) -> np.ndarray:
    """proc -> the pid shown (indexed by proc; 0: no such proc): the real one, unless two hosts
    share it, or it is a later process of a reused pid (`nth` > 1, per row: proc_keys).  In
    numpy: each part of a trace of 100,000 processes makes it of every process."""
    proc = procs["proc"].to_numpy(np.int64)
    pid = procs["pid"].to_numpy(np.int64)
    out = np.zeros(max(len(procs), int(proc.max(initial=-1)) + 1, 1), dtype=np.int64)
    out[proc] = pid
    hosts = procs["host"].nunique()
    if hosts > 1:
        host = np.unique(procs["host"].to_numpy(object), return_inverse=True)[1]
        pairs = np.unique(np.stack([pid, host]), axis=1)
        many, n = np.unique(pairs[0], return_counts=True)
        clash = np.isin(pid, many[n > 1])
        out[proc[clash]] = (host[clash] + 1) * 10_000_000 + pid[clash]
    later = nth > 1  # above every host's numbers: (nth - 1) * (hosts + 1) * 10^7 on top
    out[proc[later]] += (nth[later] - 1) * (hosts + 1) * 10_000_000
    return out


def _chrome_meta(procs: pd.DataFrame, threads: pd.DataFrame) -> Iterator[str]:
    """The process and thread tracks' names, a JSON object each; `threads`: (proc, tid) in the
    order of their first event.  Made as written (a trace of 100,000 processes has ~200,000)."""
    nth = proc_keys.of_table(procs)[1]
    pid_of = _chrome_pids(procs, nth)
    seen: set[int] = set()
    for r, n in zip(procs.itertuples(), nth.tolist(), strict=True):
        pid = int(pid_of[int(r.proc)])
        if pid in seen:
            continue  # an exec'd image of the same process: one track
        seen.add(pid)
        who = f"rank {int(r.rank)}: " if pd.notna(r.rank) else ""
        yield json.dumps(
            {
                "name": "process_name",
                "ph": "M",
                "pid": pid,
                "tid": 0,
                "args": {"name": f"{who}{r.command} (pid {label(int(r.pid), n)} @{r.host})"},
            }
        )
        if pd.notna(r.rank):
            yield json.dumps(
                {
                    "name": "process_sort_index",
                    "ph": "M",
                    "pid": pid,
                    "tid": 0,
                    "args": {"sort_index": int(r.rank)},
                }
            )
    for proc, tid in zip(threads["proc"].tolist(), threads["tid"].tolist(), strict=True):
        yield json.dumps(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": int(pid_of[proc]),
                "tid": int(tid),
                "args": {"name": f"tid {int(tid)}"},
            }
        )


def _chrome_lines(trace: Trace) -> Iterator[list[str]]:
    """Every event of `trace` as a complete ('X') slice, a JSON object a line, CHROME_BATCH
    lines at a time (in the events' order)."""
    ev = trace.events
    procs = trace.processes
    proc_pid = _chrome_pids(procs, proc_keys.of_trace(trace)[1])
    fn_json = [json.dumps(f) for f in ev["function"].cat.categories]
    op_json = [json.dumps(o) for o in ev["op"].cat.categories]
    path_json = [
        json.dumps(p)
        + (f',"path_bytes":"{trace.exact_names[p].hex()}"' if p in trace.exact_names else "")
        for p in ev["path"].cat.categories
    ]
    any_missed = bool(ev["missed"].any())
    site_json: dict[int, str] = {}
    if any_missed:
        ms = trace.missed
        for sid, site in zip(ms["stack_id"], ms["site"], strict=True):
            if pd.notna(sid):
                site_json[int(sid)] = json.dumps(site)
    for lo in range(0, len(ev), CHROME_BATCH):
        b = ev.iloc[lo : lo + CHROME_BATCH]
        cols = [
            b["function"].cat.codes.tolist(),
            b["op"].cat.codes.tolist(),
            b["t_start"].tolist(),
            (b["t_end"] - b["t_start"]).tolist(),
            proc_pid[b["proc"].to_numpy()].tolist(),
            b["tid"].tolist(),
            b["path"].cat.codes.tolist(),
            b["fd"].astype(object).where(b["fd"].notna(), None).tolist(),
            b["bytes"].astype(object).where(b["bytes"].notna(), None).tolist(),
            b["offset"].astype(object).where(b["offset"].notna(), None).tolist(),
            b["ret"].tolist(),
            b["errno"].tolist(),
            b["missed"].tolist(),
            b["stack_id"].fillna(-1).tolist() if any_missed else [-1] * len(b),
            b["data"].tolist() if "data" in b else [None] * len(b),  # iotrace run -s N
        ]
        lines = []
        for fn, op, t0, dur, pid, tid, path, fd, nb, off, ret, err, missed, sid, data in zip(
            *cols, strict=True
        ):
            args = [f'"ret":{ret}']
            if path >= 0:
                args.append(f'"path":{path_json[path]}')
            if fd is not None:
                args.append(f'"fd":{fd}')
            if nb is not None:
                args.append(f'"bytes":{nb}')
            if off is not None:
                args.append(f'"offset":{off}')
            if err:
                args.append(f'"errno":{err}')
            if data is not None:
                args.append(f'"data":{json.dumps(data)}')
            cat = op_json[op] if not missed else '"missed"'
            extra = ""
            if missed:
                args.append('"missed":true,"source":"stracer"')
                if sid >= 0 and int(sid) in site_json:
                    args.append(f'"site":{site_json[int(sid)]}')
                extra = ',"cname":"terrible"'
            lines.append(
                f'{{"name":{fn_json[fn]},"cat":{cat},"ph":"X","ts":{t0 / 1000:.3f},'
                f'"dur":{dur / 1000:.3f},"pid":{pid},"tid":{tid}{extra},'
                f'"args":{{{",".join(args)}}}}}'
            )
        yield lines


def _batched(lines: Iterable[str]) -> Iterator[list[str]]:
    it = iter(lines)
    while batch := list(itertools.islice(it, CHROME_BATCH)):
        yield batch


def _write_chrome(
    out: Path, trace_dir: Path, t0: int, meta: Iterable[str], batches: Iterable[list[str]]
) -> None:
    def write(raw: IO[bytes]) -> None:
        f = io.TextIOWrapper(raw, encoding="utf-8")
        f.write('{"displayTimeUnit":"ms","otherData":')
        f.write(json.dumps({"iotrace": __version__, "trace": str(trace_dir), "t0_real_ns": t0}))
        f.write(',"traceEvents":[\n')
        first = True
        for lines in itertools.chain(_batched(meta), batches):
            if lines:
                f.write(("" if first else ",\n") + ",\n".join(lines))
                first = False
        f.write("\n]}\n")
        f.flush()
        f.detach()

    write_atomic(out, write)


def to_chrome(trace: Trace, out: Path) -> str:
    ev = trace.events
    meta = _chrome_meta(trace.processes, ev[["proc", "tid"]].drop_duplicates())
    _write_chrome(out, trace.dir, trace.t0, meta, _chrome_lines(trace))
    return f"wrote {len(ev):,} events to {out} (Chrome trace-event JSON: open it in Perfetto)"


# The bounded CSV and Chrome exports: each part's rows (CSV rows, or Chrome JSON lines) written by
# a worker to a file of its own in time order, with their sort key; the files then merged by time
# into the one output, a few batches of each in memory at a time.
KEY_T, KEY_SRC = "_iotrace_t", "_iotrace_src"  # the merge's key columns (time, shim before stracer)


def _keyed(t: pa.Table, ev: pd.DataFrame) -> pa.Table:
    t = t.append_column(KEY_T, pa.array(ev["t_start"].to_numpy(np.int64)))
    return t.append_column(KEY_SRC, pa.array(ev["source"].cat.codes.to_numpy(np.int8)))


def _part_rows(
    trace_dir: str,
    part: Any,
    tmp: str,
    name: str,
    shift: tuple[int, int, int],
    select: Any,
    fmt: str,
    batch: int,
) -> dict[str, Any]:
    """One part's rows into tmp/name.arrow (an Arrow IPC file, in the events' order, with the
    merge's key, in record batches of `batch` rows): for `fmt` csv, the events table as to_csv
    writes it (stack ids the whole trace's) and the part's stacks; for chrome, its JSON lines
    and its threads' first events (run in a worker)."""
    from .parts import load_part, shift_stack_ids

    tr = load_part(trace_dir, part, select)
    ev = tr.events
    path = Path(tmp) / f"{name}.arrow"
    got: dict[str, Any] = {"file": str(path), "rows": len(ev)}
    if fmt == "csv":
        ids = ev["stack_id"].to_numpy(dtype=np.int64, na_value=-1)
        new = shift_stack_ids(ids, *shift)
        ev["stack_id"] = pd.arrays.IntegerArray(new.astype(np.int32), new < 0)
        t = _keyed(_plain(_arrow(ev, None, tr.exact_names, True)), ev)
        with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, t.schema) as w:
            w.write_table(t, max_chunksize=batch)
        st = tr.stacks
        st["stack_id"] = shift_stack_ids(st["stack_id"].to_numpy(np.int64), *shift)
        got["stacks"] = st.astype({"stack_id": np.int32})
        got["schema"] = t.schema
        return got
    schema = pa.schema([("line", pa.string()), (KEY_T, pa.int64()), (KEY_SRC, pa.int8())])
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, schema) as w:
        lo = 0
        for lines in _chrome_lines(tr):
            b = ev.iloc[lo : lo + len(lines)]
            lo += len(lines)
            w.write_table(_keyed(pa.table({"line": pa.array(lines, pa.string())}), b), batch)
    from .parts import _owned

    got["processes"] = tr.processes[_owned(tr, part)]  # its own rows (trace_of_parts)
    got["t0"], got["dir"], got["duration"] = tr.t0, str(tr.dir), int(tr.duration)
    first = ev[["proc", "tid"]].drop_duplicates()
    got["threads"] = pd.DataFrame(
        {
            "proc": first["proc"].to_numpy(),
            "tid": first["tid"].to_numpy(),
            "t": ev["t_start"].to_numpy()[first.index],
            "src": ev["source"].cat.codes.to_numpy()[first.index],
            "pos": first.index.to_numpy(),
        }
    )
    return got


# The merge holds a record batch of every part's file at once: MERGE_ROWS rows in all whatever
# the number of parts (10 M events in 16 parts, batches of 64 Ki rows: the command's peak 428 MiB
# for CSV; Chrome's 100,000-line batches 726 MiB), a batch of MERGE_BATCH rows at most (fewer
# batches: less work per row), MERGE_BATCH_MIN at least.  More than MERGE_FAN_IN parts are merged
# in levels (_fan_in): MERGE_FAN_IN files at a time into one, so that the batches held stay
# MERGE_ROWS / MERGE_FAN_IN rows at least and the files open at once MERGE_FAN_IN.
MERGE_ROWS = 1 << 20
MERGE_BATCH = 1 << 16
MERGE_BATCH_MIN = 1 << 10
MERGE_FAN_IN = 64


def merge_batch(parts: int) -> int:
    """Rows per record batch of each of `parts` parts' files (_part_rows) for the merge."""
    return max(MERGE_BATCH_MIN, min(MERGE_BATCH, MERGE_ROWS // max(min(parts, MERGE_FAN_IN), 1)))


def _merged(files: list[str], schema: pa.Schema | None = None) -> Iterator[pa.Table]:
    """The rows of the parts' files in the trace's order: by time, the shim's before the
    stracer's, then by part and position (load's stable sort: the logs in order, then the
    stracer's events).  Holds at most a batch of each of MERGE_FAN_IN files at a time."""
    if len(files) > MERGE_FAN_IN:
        files = _fan_in(files, schema)
    yield from _merge_files(files, schema)


def _fan_in(files: list[str], schema: pa.Schema | None) -> list[str]:
    """The parts' files merged MERGE_FAN_IN consecutive ones at a time into a file of their own
    (the merge's key kept, each merged file removed), level after level, until MERGE_FAN_IN or
    fewer are left.  Merging consecutive parts keeps the order of a merge of them all: a group's
    ties are in part order and the groups are."""
    keyed = None
    if schema is not None:
        keyed = pa.schema([*schema, pa.field(KEY_T, pa.int64()), pa.field(KEY_SRC, pa.int8())])
    batch = merge_batch(MERGE_FAN_IN)
    level = 0
    while len(files) > MERGE_FAN_IN:
        level += 1
        merged = []
        for g in range(0, len(files), MERGE_FAN_IN):
            group = files[g : g + MERGE_FAN_IN]
            out = f"{group[0]}.{level}"
            writer = None
            with pa.OSFile(out, "wb") as f:
                for t in _merge_files(group, keyed):
                    if writer is None:
                        writer = pa.ipc.new_file(f, t.schema)
                    writer.write_table(t, max_chunksize=batch)
                if writer is None:  # no rows: an empty file of the first one's columns
                    writer = pa.ipc.new_file(f, pa.ipc.open_file(group[0]).schema)
                writer.close()
            for name in group:
                os.unlink(name)
            merged.append(out)
        files = merged
    return files


def _merge_files(files: list[str], schema: pa.Schema | None = None) -> Iterator[pa.Table]:
    """_merged's merge of the files at once."""
    readers = [pa.ipc.open_file(pa.OSFile(f, "rb")) for f in files]
    nxt = [0] * len(files)
    bufs: list[pa.Table | None] = [None] * len(files)
    pos = [0] * len(files)  # the row number of each buffer's first row in its part

    def fill(i: int) -> None:
        while (bufs[i] is None or not len(bufs[i])) and nxt[i] < readers[i].num_record_batches:
            if bufs[i] is not None:
                pos[i] += len(bufs[i])
            bufs[i] = pa.Table.from_batches([readers[i].get_batch(nxt[i])])
            nxt[i] += 1

    while True:
        for i in range(len(files)):
            fill(i)
        live = [i for i, b in enumerate(bufs) if b is not None and len(b)]
        if not live:
            return
        # every row at or before the frontier can go: no part still to be read has one before
        frontier = min(
            (
                (int(bufs[i][KEY_T][-1].as_py()), int(bufs[i][KEY_SRC][-1].as_py()), i)
                for i in live
                if nxt[i] < readers[i].num_record_batches
            ),
            default=None,
        )
        take, keys = [], []
        for i in live:
            b = bufs[i]
            t = b[KEY_T].to_numpy()
            s = b[KEY_SRC].to_numpy()
            if frontier is None:
                n = len(b)
            else:
                ft, fs, fi = frontier
                le = (t < ft) | ((t == ft) & ((s < fs) | ((s == fs) & (i <= fi))))
                n = int(le.sum())
            if n:
                take.append(b.slice(0, n))
                keys.append((t[:n], s[:n], np.full(n, i), pos[i] + np.arange(n)))
                bufs[i] = b.slice(n)
                pos[i] += n
        t = pa.concat_tables(take, promote_options="permissive") if len(take) > 1 else take[0]
        order = np.lexsort(tuple(np.concatenate(k) for k in zip(*keys, strict=True))[::-1])
        t = t.take(pa.array(order))
        if schema is not None:
            t = _conform(t, schema)
        yield t


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """A batch with every column of `schema` (nulls where its part had no such column), in its
    order and types."""
    cols = [
        t[f.name].cast(f.type) if f.name in t.column_names else pa.nulls(len(t), f.type)
        for f in schema
    ]
    return pa.table(cols, schema=schema)


def _events_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """The events table's columns over the parts' (a part has `data` or `<column>_bytes` only
    when its events do): the base columns in order, `data`, then the `_bytes` columns in the
    order of the columns they spell."""
    u = pa.unify_schemas(schemas, promote_options="permissive")
    u = pa.schema([f for f in u if f.name not in (KEY_T, KEY_SRC)])
    names = u.names
    exact = [n for n in names if n.endswith("_bytes") and n[: -len("_bytes")] in names]
    base = [n for n in names if n not in exact and n != "data"]
    order = base + (["data"] if "data" in names else [])
    order += sorted(exact, key=lambda n: order.index(n[: -len("_bytes")]))
    return pa.schema([u.field(n) for n in order])


def _part_files(
    fmt: str, b: Bounded, tmp: Path
) -> tuple[Any, Any, list[Any], list[dict[str, Any]]]:
    """The parts' files (_part_rows); for csv also the merged summary, trace and partials (the
    other tables, the stack ids), which chrome does without."""
    from . import parts

    if fmt == "csv":
        s, tr, partials, mapper = parts.run(b, export=True)
        offsets, stracer_base = parts.stack_offsets(partials)
        plan = [p.part for p in partials]
        shifts = [
            (p.stack_base, off, stracer_base) for p, off in zip(partials, offsets, strict=True)
        ]
    else:
        s, tr, partials = None, None, []
        plan, mapper = parts.planned(b)
        shifts = [(0, 0, 0)] * len(plan)
    batch = merge_batch(len(plan))
    got = mapper(
        _part_rows,
        [
            (str(b.trace_dir), p, str(tmp), f"part-{k}", sh, b.select, fmt, batch)
            for k, (p, sh) in enumerate(zip(plan, shifts, strict=True))
        ],
    )
    return s, tr, partials, got


def export_parts(fmt: str, b: Bounded | str | os.PathLike[str], out: str | os.PathLike[str]) -> str:
    """`export` in bounded memory (analyzer/parts.py): the same files as the in-memory path
    writes."""
    from . import parts

    b = parts.Bounded.of(b)
    if fmt == "parquet":
        return to_parquet_parts(b, out)
    if fmt == "darshan":
        from .darshan import write_darshan_parts

        return write_darshan_parts(b, Path(out))
    if fmt not in ("csv", "chrome"):
        raise ValueError(f"unknown export format {fmt!r} for the bounded path")
    import shutil
    import tempfile

    o = Path(out)
    if fmt == "csv":
        _out_dir(o)
    tmp = Path(tempfile.mkdtemp(prefix=".iotrace-export-", dir=o if fmt == "csv" else o.parent))
    try:
        s, tr, partials, got = _part_files(fmt, b, tmp)
        files = [g["file"] for g in got]
        n = sum(g["rows"] for g in got)
        if fmt == "csv":
            return _csv_parts(o, s, tr, partials, got, files, n)
        return _chrome_parts(o, b.trace_dir, got, files, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _csv_parts(o: Path, s: Any, tr: Trace, partials: list[Any], got: list[dict[str, Any]],
               files: list[str], n: int) -> str:  # fmt: skip
    from . import parts

    schema = _events_schema([g["schema"] for g in got])

    def write(f: IO[bytes]) -> None:
        with pacsv.CSVWriter(f, schema) as w:
            for t in _merged(files, schema):
                w.write_table(t)

    write_atomic(o / "events.csv", write)
    st = pd.concat([g["stacks"] for g in got], ignore_index=True)
    st = st.drop_duplicates(["stack_id", "level"])
    st = st.sort_values(["stack_id", "level"], kind="stable").reset_index(drop=True)
    files_t = parts._merge_files(partials, "files_export")  # as trace.files (holds kept in)
    tables = {
        "processes": _processes(tr.processes),
        "files": files_t,
        "stacks": st,
        "missed": s.missed,
    }
    for name, df in tables.items():
        table = _plain(_arrow(df, None, tr.exact_names, True))
        write_atomic(o / f"{name}.csv", lambda f, t=table: pacsv.write_csv(t, f))
    return f"wrote {n:,} events to {o}/events.csv (and the other tables)"


def _chrome_parts(o: Path, trace_dir: Any, got: list[dict[str, Any]], files: list[str],
                  n: int) -> str:  # fmt: skip
    from . import parts

    # the processes, the job's start: the parts' own rows joined
    frames = [g.pop("processes") for g in got]
    at = got[0] if got else {"dir": str(Path(trace_dir)), "t0": 0}
    head = trace_of_parts(at["dir"], frames, at["t0"], max((g["duration"] for g in got), default=0))
    del frames
    parts._warn(Path(trace_dir), head.processes)  # load's one warning for the logs cut short
    th = pd.concat([g["threads"].assign(part=k) for k, g in enumerate(got)], ignore_index=True)
    th = th.sort_values(["t", "src", "part", "pos"], kind="stable")
    th = th.drop_duplicates(["proc", "tid"])  # a thread in several ranges of its process
    meta = _chrome_meta(head.processes, th[["proc", "tid"]])

    def batches() -> Iterator[list[str]]:
        for t in _merged(files):
            yield t["line"].to_pylist()

    _write_chrome(o, head.dir, head.t0, meta, batches())
    return f"wrote {n:,} events to {o} (Chrome trace-event JSON: open it in Perfetto)"


def export(trace: Trace, fmt: str, out: str | os.PathLike[str]) -> str:
    """Write the trace in `fmt` to `out`; returns a one-line description of what was written."""
    p = Path(out)
    if fmt == "parquet":
        return to_parquet(trace, p)
    if fmt == "csv":
        return to_csv(trace, p)
    if fmt == "chrome":
        return to_chrome(trace, p)
    if fmt == "darshan":
        from .darshan import write_darshan

        return write_darshan(trace, p)
    raise ValueError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
