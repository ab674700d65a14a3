"""The `iotrace` command line.  Bad input gets one line on stderr and status 2."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from iotrace import __version__
from iotrace.mpi import FAMILIES as MPI_FAMILIES
from iotrace.run import Recording, RunError, RunOptions, run
from iotrace.say import say

# Each command imports what it needs when it runs: `iotrace run` pays for no reader, analyzer or
# read filter (the fixed cost per run, bench/cost_bench.py's "fixed" case).
COMMANDS = ("run", "env", "attach", "show", "report", "export", "diff", "missed")
ANALYZER = ("report", "export", "diff", "missed")  # the commands that read a whole trace
EXPORT_FORMATS = ("parquet", "csv", "chrome", "darshan")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"iotrace: {message} (see '{self.prog} --help')\n")

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes one per add_argument and asks shutil for the terminal's width: shutil's
        # imports (bz2, lzma) were ~3 ms of every `iotrace run`; the width is os's answer
        return self.formatter_class(prog=self.prog, width=_columns() - 2)


def _columns() -> int:
    """The terminal's width as shutil.get_terminal_size gives it: $COLUMNS, stdout's, 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def _record_args(p: argparse.ArgumentParser) -> None:
    """What the shim records: `run`, `env` (docs/filters.md)."""
    p.add_argument(
        "-e", dest="trace", action="append", metavar="trace=SET",
        help="record only these calls: names and %%classes (%%file %%desc %%read %%write %%meta "
        "%%stdio %%mpi %%hdf5 %%pnetcdf %%aio %%memory %%process %%network), /REGEX, "
        "comma-separated, ! to negate, ? to skip an unknown name (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "-P", "--path", action="append", metavar="GLOB",
        help="record only events on paths matching GLOB (repeatable; -P as strace's)",
    )  # fmt: skip
    p.add_argument(
        "-s", dest="data", type=int, metavar="N",
        help="keep the first N bytes of each read/write call's buffer (default 0: none; the "
        "trace then holds the job's data: docs/filters.md)",
    )  # fmt: skip


def add_select_arguments(p: argparse.ArgumentParser) -> None:
    from iotrace.select import add_arguments

    add_arguments(p)


def from_args(args: argparse.Namespace):  # noqa: ANN201 -- select.Select, imported when used
    from iotrace.select import from_args

    return from_args(args)


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `only`, that command's alone (the others cost their imports)."""
    p = _Parser(prog="iotrace", description="I/O tracer for HPC jobs")
    p.add_argument("--version", action="version", version=f"iotrace {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    if only in (None, "run"):
        _run_parser(sub)
    if only in (None, "env"):
        _env_parser(sub)
    if only is None or only not in ("run", "env"):
        _read_parsers(sub)
    return p


def _run_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "run",
        help="run a command traced",
        usage="iotrace run [-o DIR] [--force | --append] [--share-with-group] [--stack N] "
        "[-e trace=SET] [--path GLOB] [-s N] [--no-stracer] [--console FILE] [--mpi FAMILY] "
        "-- CMD [ARGS...]",
    )
    r.add_argument("-o", "--output", metavar="DIR", help="trace directory (default: printed)")
    again = r.add_mutually_exclusive_group()
    again.add_argument(
        "--force",
        dest="reuse",
        action="store_const",
        const="force",
        help="DIR holds a trace of another run: remove that trace first",
    )
    again.add_argument(
        "--append",
        dest="reuse",
        action="store_const",
        const="append",
        help="DIR holds a trace of another run: add this run to it",
    )
    r.add_argument(
        "--share-with-group",
        dest="share",
        action="store_true",
        help="let the directory's group read the trace (dir 0750, logs 0640; default 0700/0600)",
    )
    r.add_argument(
        "--stack",
        type=int,
        default=8,
        metavar="N",
        help="call-stack depth per event (default 8, 0 = off)",
    )
    _record_args(r)
    r.add_argument(
        "--no-stracer",
        dest="stracer",
        action="store_false",
        help="run the shim alone (no ptrace: missed I/O goes unseen)",
    )
    r.add_argument(
        "--console",
        metavar="FILE",
        help="append iotrace's own messages to FILE instead of stderr (the command's stderr "
        "stays its own)",
    )
    r.add_argument(
        "--mpi",
        choices=("auto", *MPI_FAMILIES),
        default="auto",
        help="the MPI whose MPI-IO calls are traced (default auto: the one the command's "
        "program, or the program an MPI launcher starts, links)",
    )
    r.add_argument("command", nargs=argparse.REMAINDER, help="the command to trace")


def _env_parser(sub: argparse._SubParsersAction) -> None:
    en = sub.add_parser(
        "env",
        help="print the shell lines that trace later commands without `iotrace run` (batch jobs)",
        usage="iotrace env [--dir DIR] [--stack N] [-e trace=SET] [--path GLOB] [-s N]",
    )
    en.add_argument(
        "--dir", metavar="DIR",
        help="central directory: one trace directory per job in it (default $IOTRACE_DIR, "
        "else the current directory)",
    )  # fmt: skip
    en.add_argument("--stack", type=int, default=8, metavar="N", help="as for run")
    _record_args(en)


def _read_parsers(sub: argparse._SubParsersAction) -> None:
    """attach and the commands that read a trace."""
    at = sub.add_parser(
        "attach",
        help="record the I/O syscalls of a running process until Ctrl-C, then detach",
        usage="iotrace attach PID|-p PID [--shim] [-o DIR] [--force | --append] "
        "[--share-with-group]",
    )
    at.add_argument("pid", type=int, metavar="PID", nargs="?")
    at.add_argument("-p", dest="pid_p", type=int, metavar="PID", help="the same, as strace -p")
    at.add_argument(
        "--shim", action="store_true",
        help="load the shim into the process: its calls recorded as by run (stacks too), "
        "no ptrace stop meanwhile",
    )  # fmt: skip
    at.add_argument("-o", "--output", metavar="DIR", help="trace directory (default: printed)")
    again = at.add_mutually_exclusive_group()
    again.add_argument("--force", dest="reuse", action="store_const", const="force",
                       help="as for run")  # fmt: skip
    again.add_argument("--append", dest="reuse", action="store_const", const="append",
                       help="as for run")  # fmt: skip
    at.add_argument("--share-with-group", dest="share", action="store_true", help="as for run")

    s = sub.add_parser(
        "show",
        help="print every event, one a line (the stracer's too, marked by class)",
    )
    s.add_argument("trace", metavar="DIR")
    add_select_arguments(s)
    s.add_argument("--stacks", action="store_true", help="each event's call stack under it")
    s.add_argument(
        "--memory",
        metavar="SIZE",
        help="memory bound (e.g. 2G, the default; or IOTRACE_MEMORY): the lines merged by time "
        "beyond it are sorted in runs in temporary files",
    )

    rp = sub.add_parser(
        "report",
        help="summarise a trace: time, files, ranks, sizes, call sites, insights",
        usage="iotrace report DIR [--json] [--html OUT.html] [--memory SIZE] [--workers N] "
        "[--scheduler ADDRESS] [--system] [--ranks all]",
    )
    rp.add_argument("trace", metavar="DIR")
    rp.add_argument(
        "--system",
        action="store_true",
        help="also the system and runtime files (/proc, /sys, /dev, /usr, /etc, the "
        "interpreter's library, the MPI runtime's) in the tables and findings",
    )
    rp.add_argument(
        "--ranks",
        choices=("outliers", "all"),
        default="outliers",
        help="many ranks: the console shows the outliers (default) or all",
    )
    rp.add_argument("--json", action="store_true", help="print the report as JSON")
    rp.add_argument("--html", metavar="OUT.html", help="write a self-contained HTML report")
    add_select_arguments(rp)
    _bounded_options(rp, "the console and JSON report")

    ex = sub.add_parser(
        "export",
        help="write the trace as Parquet, CSV, Chrome trace-event JSON (Perfetto) or a Darshan log",
        usage="iotrace export DIR --format parquet|csv|chrome|darshan -o OUT",
    )
    ex.add_argument("trace", metavar="DIR")
    ex.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="output format")
    ex.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output directory (parquet, csv) or file (chrome, darshan)",
    )
    add_select_arguments(ex)
    _bounded_options(ex, "the Parquet, CSV and Chrome exports")

    d = sub.add_parser(
        "diff",
        help="compare two traces: time, bytes and calls per function, file, rank and call site",
        usage="iotrace diff A B [--json] [--html OUT.html] [--map OLD=NEW ...]",
    )
    d.add_argument("a", metavar="A", help="the trace before (the baseline)")
    d.add_argument("b", metavar="B", help="the trace after")
    d.add_argument("--json", action="store_true", help="print the comparison as JSON")
    d.add_argument("--html", metavar="OUT.html", help="write the comparison as one HTML page")
    d.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="match A's files under the path prefix OLD with B's under NEW (repeatable)",
    )
    add_select_arguments(d)
    _bounded_options(d, "each side's summary")

    m = sub.add_parser("missed", help="I/O that bypassed the shim (missed), by call site")
    m.add_argument("trace", metavar="DIR")
    m.add_argument("--json", action="store_true", help="a JSON list of groups")
    m.add_argument(
        "--all", action="store_true",
        help="also the libc-internal syscalls (inside libc functions the shim does not wrap)",
    )  # fmt: skip
    add_select_arguments(m)


def _bounded_options(p: argparse.ArgumentParser, what: str) -> None:
    """--memory, --workers, --scheduler: the trace read in parts (docs/scale.md)."""
    p.add_argument(
        "--memory",
        metavar="SIZE",
        help=f"memory bound of {what} (e.g. 2G, the default; or IOTRACE_MEMORY): the trace is "
        "read in parts that fit",
    )
    p.add_argument(
        "--workers", type=int, metavar="N", help="processes reading parts (default: every core)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="read the parts on this Dask cluster (dask.distributed, e.g. tcp://head:8786)",
    )


def _cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise RunError("iotrace: run: no command given (iotrace run -- CMD [ARGS...])", 2)
    if not 0 <= args.stack <= 64:
        raise RunError("iotrace: run: --stack must be between 0 and 64", 2)
    opts = RunOptions(command=command, out=args.output, stack=args.stack, stracer=args.stracer,
                      share=args.share, reuse=args.reuse, mpi=args.mpi,
                      record=Recording.parse(args.trace, args.path, args.data),
                      console=args.console)  # fmt: skip
    return run(opts)


def _cmd_env(args: argparse.Namespace) -> int:
    from iotrace.run import env_exports

    if not 0 <= args.stack <= 64:
        raise RunError("iotrace: env: --stack must be between 0 and 64", 2)
    print(
        "\n".join(
            env_exports(args.dir, args.stack, Recording.parse(args.trace, args.path, args.data))
        )
    )
    return 0


def _cmd_attach(args: argparse.Namespace) -> int:
    from iotrace.run import trace_dir
    from iotrace.stracer.attach import AttachError, attach

    if (args.pid is None) == (args.pid_p is None):
        raise RunError("iotrace: attach: give one PID (iotrace attach PID, or -p PID)", 2)
    pid = args.pid if args.pid is not None else args.pid_p
    if pid <= 0 or pid == os.getpid() or not os.path.isdir(f"/proc/{pid}"):
        raise RunError(f"iotrace: attach: no process {pid}", 2)
    # a refused attach leaves no trace directory behind, but one that was there before it
    made = args.output is None or not os.path.lexists(args.output)
    try:
        trace = trace_dir(f"attach-{pid}", args.output, args.share, args.reuse)
    except OSError as exc:  # -o names a file, a directory not writable...
        where = exc.filename or args.output or "."
        raise RunError(f"iotrace: attach: cannot write a trace in {where} ({exc.strerror})",
                       2) from None  # fmt: skip
    try:
        if args.shim:
            from iotrace.shim import shim_path
            from iotrace.stracer.inject import InjectError, inject

            try:
                status = inject(pid, str(trace.path), str(shim_path()), say)
            except InjectError as exc:
                raise AttachError(str(exc)) from None
        else:
            status = attach(pid, trace, say)
    except AttachError as exc:
        if made:
            trace.remove()
        raise RunError(f"iotrace: attach: {exc}", 1) from None
    finally:
        trace.close()
    say(f"iotrace: trace written to {trace.path}")
    return status


def _cmd_show(args: argparse.Namespace) -> int:
    from iotrace.show import show
    from iotrace.units import memory_bound

    try:
        memory = memory_bound(args.memory)
    except ValueError as exc:  # a bad --memory or IOTRACE_MEMORY
        print(f"iotrace: show: {exc}", file=sys.stderr)
        return 2
    import warnings

    from iotrace.text import escape

    try:
        with warnings.catch_warnings(record=True) as caught:  # a module rebuilt since the run
            warnings.simplefilter("always")
            show(args.trace, sys.stdout, from_args(args), stacks=args.stacks, memory=memory)
        for said in dict.fromkeys(str(w.message) for w in caught):  # once, not once per log
            print(f"iotrace: warning: {escape(said, quote=False)}", file=sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:  # `iotrace show DIR | head`
        sys.stderr.close()
    except OSError as exc:  # stdout full (ENOSPC, EDQUOT), EIO
        return _write_failed("show", exc)
    return 0


def _write_failed(cmd: str, exc: OSError, target: str | None = None) -> int:
    """An error writing the command's output (`target`, else stdout; or reading the file the
    error names): one line, status 2.  Stdout's unwritten lines go nowhere at exit (the
    interpreter's last flush of them would fail again, with a traceback)."""
    where = target or exc.filename
    if where is None:
        where = "standard output"
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    print(f"iotrace: {cmd}: {where}: {exc.strerror}", file=sys.stderr)
    return 2


def _cmd_report(args: argparse.Namespace) -> int:
    text = None  # the JSON, when the cluster merged the parts too
    try:
        if args.scheduler and args.json and not args.html:
            text = _cluster_json(args)
        else:
            trace, summary = _summary(args)
    except ValueError as exc:  # a bad --memory, --workers or IOTRACE_MEMORY
        print(f"iotrace: report: {exc}", file=sys.stderr)
        return 2
    target = args.html  # what an OSError failed to write (write_html's is a temporary name)
    try:
        if args.html:
            from iotrace.analyzer.html import write_html

            write_html(trace, summary, args.html)
            print(f"iotrace: HTML report written to {args.html}", file=sys.stderr)
        target = None
        if args.json and text is not None:
            sys.stdout.write(text + "\n")
        elif args.json:
            from iotrace.analyzer.report import write_json

            write_json(summary, sys.stdout)
        elif not args.html:
            from iotrace.analyzer.report import print_report

            print_report(summary, _text_console(), all_ranks=args.ranks == "all")
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()
    except OSError as exc:
        return _write_failed("report", exc, target)
    return 0


def _bounded_fields(args: argparse.Namespace, trace_dir: str) -> dict[str, Any]:
    """--memory, --workers, --scheduler and the selection of a bounded command (report, diff,
    export), checked: parts.Bounded's fields (the analyzer not imported)."""
    from iotrace.units import memory_bound

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers}: at least 1")
    return {
        "trace_dir": trace_dir,
        "memory": memory_bound(args.memory),
        "workers": args.workers,
        "scheduler": args.scheduler,
        "select": from_args(args),
    }


def _bounded(args: argparse.Namespace, trace_dir: str):  # noqa: ANN202 -- parts.Bounded
    from iotrace.analyzer import parts

    return parts.Bounded(**_bounded_fields(args, trace_dir))


def _cluster_json(args: argparse.Namespace) -> str:
    """`report --json --scheduler`: the parts sent to the cluster and their merge too
    (cluster.Started.report_json): the analyzer and pandas are not imported here."""
    import warnings

    fields = _bounded_fields(args, args.trace)
    system = getattr(args, "system", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _importing():
            from iotrace import cluster

            started = cluster.start(args.scheduler, fields, False, system, False)
        text = started.report_json()
    for w in caught:
        print(f"iotrace: warning: {w.message}", file=sys.stderr)
    return text


def _summary(args: argparse.Namespace, trace_dir: str | None = None):  # noqa: ANN202 -- pandas
    """The trace's metadata and its summary (of args.trace, or `trace_dir`), made in parts
    within the memory bound (analyzer/parts.py); for report --html, the plots' sums too.  On a
    Dask cluster the parts are sent before the analyzer is imported here (cluster.start)."""
    import warnings

    fields = _bounded_fields(args, trace_dir or args.trace)
    system = getattr(args, "system", False)
    plots = bool(args.html) and trace_dir is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = None
        if args.scheduler:
            with _importing():
                from iotrace import cluster

                cluster.join_pools()  # diff's first trace's map ended before the second's
                started = cluster.start(args.scheduler, fields, False, system, plots)
        with _importing():
            from iotrace.analyzer import parts

        parts.tune_malloc()  # parts reduced here too (1 worker), and the merge
        summary, trace = parts.summarise(fields, system=system, plots=plots, started=started)
    for w in caught:
        print(f"iotrace: warning: {w.message}", file=sys.stderr)
    return trace, summary


@contextmanager
def _importing() -> Iterator[None]:
    """The analyzer's imports (pandas, pyarrow; distributed) without the collector, then what
    they made frozen (gc.freeze): the collections during an import walk every object the imports
    before made (~10% of the analyzer's import CPU, the command's serial start), and later ones,
    the forked workers' too, need not walk nor write to the modules' objects again."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _text_console() -> Any:
    """rich's Console for a report on stdout.  A pipe or a file is not an 80-column terminal:
    paths are kept whole.  A reader that went away (`iotrace report DIR | head`) is the
    command's BrokenPipeError, status 0 as `show`'s: rich's own answer exits with status 1."""
    import shutil

    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush goes nowhere
            raise BrokenPipeError

    width = None if sys.stdout.isatty() else shutil.get_terminal_size((160, 24)).columns
    return _Console(soft_wrap=False, width=width)


def _cmd_export(args: argparse.Namespace) -> int:
    if args.format == "darshan":
        from iotrace.analyzer.darshan import DarshanUnavailable, library

        try:
            library()  # before loading the trace: say at once what is missing
        except DarshanUnavailable as exc:
            print(f"iotrace: {exc}", file=sys.stderr)
            return 2
    try:  # in parts, within the memory bound
        import warnings

        from iotrace.analyzer.export import export_parts

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            what = export_parts(args.format, _bounded(args, args.trace), args.output)
        for w in caught:
            print(f"iotrace: warning: {w.message}", file=sys.stderr)
    except ValueError as exc:
        print(f"iotrace: export: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"iotrace: export: {exc.filename or args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"iotrace: {what}", file=sys.stderr)
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    with _importing():
        from iotrace.analyzer.diff import DiffError, diff, diff_json, parse_maps, print_diff, side

    try:
        maps = parse_maps(args.map)
        # each in parts, within the memory bound; A's summary let go before B's is made
        sa = side(_summary(args, args.a)[1], maps)
        sb = side(_summary(args, args.b)[1])
    except (DiffError, ValueError) as exc:
        print(f"iotrace: diff: {exc}", file=sys.stderr)
        return 2
    d = diff(sa, sb, args.a, args.b, maps)
    target = args.html  # as report's
    try:
        if args.html:
            from iotrace.analyzer.diff import write_html

            write_html(d, args.html)
            print(f"iotrace: HTML comparison written to {args.html}", file=sys.stderr)
        target = None
        if args.json:
            sys.stdout.write(diff_json(d) + "\n")
        elif not args.html:
            print_diff(d, _text_console())
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()
    except OSError as exc:
        return _write_failed("diff", exc, target)
    return 0


def _lean_allocators() -> None:
    """Address space, not memory: pyarrow's allocator (mimalloc) reserves 1 GiB at its first
    allocation and glibc gives every thread that allocates an arena of 64 MiB; a bounded export
    or report (this process, its workers) peaked at ~1.8 GiB of address space for 150 MB used,
    over an RLIMIT_AS set for it (tests/test_parts.py).  Set before pyarrow is imported; only
    for the analyzer's commands (never `run`: the traced app's environment is its own)."""
    os.environ.setdefault("MIMALLOC_ARENA_RESERVE", str(64 << 10))  # KiB
    # one thread, so that the workers are forked from this process (parts.local_map): no BLAS
    # thread pool (the analyzer multiplies no matrices), no jemalloc purging thread of pyarrow's
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
    _thread_stacks(THREAD_STACK)
    if "MALLOC_ARENA_MAX" not in os.environ:
        os.environ["MALLOC_ARENA_MAX"] = "2"  # the workers read it at their start
        try:
            import ctypes

            ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX, for this process (glibc)
        except (OSError, AttributeError):
            pass


def _thread_stacks(size: int) -> None:
    """The stack of every thread this process starts from now on (glibc's default attribute):
    pyarrow's pools start up to a thread per core, which with glibc's 8 MiB stacks would reserve
    1 GiB of address space on a 128-core node.  Their code (pyarrow's kernels, the analyzer's
    few Python threads) recurses shallowly."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        attr = ctypes.create_string_buffer(64)  # pthread_attr_t: 56 bytes on x86_64
        if libc.pthread_attr_init(attr) == 0:
            libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(size))
            libc.pthread_setattr_default_np(attr)
            libc.pthread_attr_destroy(attr)
    except (OSError, AttributeError):
        pass


READERS = ("show", *ANALYZER)
_PATHS = {"trace": "DIR", "a": "A", "b": "B", "html": "--html", "output": "-o"}


def _empty_path(args: argparse.Namespace) -> str | None:
    """The option or argument of a reading command given as "" (none: None): "" is not the
    current directory (DIR) nor no file (--html: the console report instead; -o: files written
    into the current directory)."""
    return next((name for k, name in _PATHS.items() if getattr(args, k, None) == ""), None)


FILES_NEEDED = 64  # a 2-process trace's report was whole from 14 descriptors on (measured)


def _few_files() -> str | None:
    """The reading commands' open-file limit raised to its hard limit (iotrace's own processes:
    no app inherits it); one line if that is still below FILES_NEEDED.  At `ulimit -n` 5-13 a
    report went on without what it could not open, status 0: the command line and the run's
    time missing, binaries said rebuilt since the run, call sites left unsymbolised."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= FILES_NEEDED:
        return None
    return f"the open-file limit (ulimit -n {soft}) is below the {FILES_NEEDED} it needs"


# bytes of address space a command that reads a whole trace needs: the interpreter, pandas,
# pyarrow and their allocators (a small trace's report and exports failed below ~440 MiB here,
# 2 cores), then a thread stack for each thread of pyarrow's pools (a core each, and 8 for I/O)
AS_BASE = 480 << 20
ARROW_IO_THREADS = 8
THREAD_STACK = 2 << 20  # the analyzer's threads' (glibc's default: RLIMIT_STACK, 8 MiB)


def _little_address_space() -> str | None:
    """The reading commands' address-space limit raised to its hard limit; one line if that is
    still below what they need (AS_BASE and pyarrow's threads).  Under it pyarrow could not
    start its threads: a Parquet export waited for them for good, a CSV export and a diff
    ended in a traceback, another export aborted (std::bad_alloc in a thread of pyarrow's)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return None
    need = AS_BASE + ((os.cpu_count() or 1) + ARROW_IO_THREADS) * THREAD_STACK
    if soft >= need:
        return None
    return (f"the address-space limit (ulimit -v {soft >> 10}) is below the {need >> 20} MiB "
            "it needs")  # fmt: skip


def _errors() -> tuple[type[Exception], ...]:
    """The errors that are one line and status 2 (imported only when one is raised)."""
    from iotrace.select import SelectError
    from iotrace.shim import ShimNotFound
    from iotrace.tracedir import TraceDirError
    from iotrace.tracefile import TraceFormatError

    return TraceFormatError, ShimNotFound, TraceDirError, SelectError


def _cannot_load(exc: MemoryError | ImportError) -> str:
    """One line for what a small address-space limit (`ulimit -v` of a batch job: a library's
    segments cannot be mapped, an allocation fails) or a broken install does to a command."""
    if isinstance(exc, MemoryError) or "failed to map segment" in str(exc):
        return "out of memory (is the address-space limit, ulimit -v, too small?)"
    return f"cannot load {exc.name or 'a module'} ({exc}): reinstall iotrace"


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = _parser(words[0] if words and words[0] in COMMANDS else None).parse_args(argv)
    if args.cmd in READERS and (empty := _empty_path(args)):
        print(f"iotrace: {args.cmd}: {empty}: an empty path", file=sys.stderr)
        return 2
    if args.cmd in READERS and (few := _few_files()):
        print(f"iotrace: {args.cmd}: {few}", file=sys.stderr)
        return 2
    if args.cmd in ANALYZER and (little := _little_address_space()):
        print(f"iotrace: {args.cmd}: {little}", file=sys.stderr)
        return 2
    if args.cmd in ANALYZER:
        _lean_allocators()
    try:
        if args.cmd in READERS:
            from iotrace.tracedir import pin

            for k in ("trace", "a", "b"):
                if getattr(args, k, None) is not None:
                    pin(getattr(args, k))
        if args.cmd == "export":  # parts reduced here too (report, diff: _summary)
            with _importing():
                from iotrace.analyzer.parts import tune_malloc

            tune_malloc()
        if args.cmd == "run":
            return _cmd_run(args)
        if args.cmd == "attach":
            return _cmd_attach(args)
        if args.cmd == "env":
            return _cmd_env(args)
        if args.cmd == "show":
            return _cmd_show(args)
        if args.cmd == "report":
            return _cmd_report(args)
        if args.cmd == "export":
            return _cmd_export(args)
        if args.cmd == "diff":
            return _cmd_diff(args)
        if args.cmd == "missed":
            from iotrace.tracefile import log_paths

            log_paths(args.trace)  # a trace directory (said as by every reader), else one line
            with _importing():
                from iotrace.analyzer.missed_command import missed
                from iotrace.analyzer.missed_groups import NoStracerLog

            try:
                return missed(args.trace, args.json, everything=args.all, sel=from_args(args))
            except NoStracerLog as exc:
                print(f"iotrace: {exc}", file=sys.stderr)
                return 2
            except OSError as exc:
                return _write_failed("missed", exc)
    except RunError as exc:
        say(str(exc))
        return exc.status
    except KeyboardInterrupt:
        return 130
    except (MemoryError, ImportError) as exc:  # before _errors(), which imports
        print(f"iotrace: {args.cmd}: {_cannot_load(exc)}", file=sys.stderr)
        return 2
    except _errors() as exc:
        print(f"iotrace: {exc}", file=sys.stderr)
        return 2
    return 2


def entry() -> None:
    """The command line's process (`iotrace-py`, `python -m iotrace`): main(); after a command
    that read a whole trace, an exit without the interpreter's teardown, which frees every
    object one by one (a 10 M-event report on 1 worker: ~0.2 s of CPU; bench/scale_bench.py):
    its local workers joined, its exit handlers run (atexit runs the last registered first:
    _fast_exit, registered before any other, runs after them all), its output flushed."""
    analyzer = bool(sys.argv[1:2]) and sys.argv[1] in ANALYZER
    if analyzer:
        import atexit

        atexit.register(_fast_exit)
    try:
        code = main()
    except SystemExit as exc:  # argparse's --help and errors
        _status[0] = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        raise
    except KeyboardInterrupt:
        _status[0] = 130
        raise
    if analyzer:
        cluster = sys.modules.get("iotrace.cluster")
        if cluster is not None:
            cluster.join_pools()
    _status[0] = code
    sys.exit(code)


_status = [1]  # the status _fast_exit gives: main()'s, else 1 (an uncaught exception's)


def _fast_exit() -> None:
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):  # a closed pipe (said already), a closed stream
            pass
    os._exit(_status[0])
