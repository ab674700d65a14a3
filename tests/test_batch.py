"""Batch jobs: the bare shim under a central IOTRACE_DIR (`iotrace env`), one trace directory per
job named by the job's id, the trust rules of `iotrace run -o` for that directory, and an app
that points IOTRACE_DIR / IOTRACE_OUT elsewhere keeping its children in the trace."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import build, iotrace

from iotrace.run import launcher
from iotrace.tracefile import log_paths, read_log

NOBODY = 65534
# what a batch system sets: removed from the tests' own environment, set per test
JOB_VARS = ("SLURM_JOB_ID", "SLURM_STEP_ID", "PBS_JOBID", "LSB_JOBID", "FLUX_JOB_ID",
            "PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "PMI_RANK", "IOTRACE_OUT",
            "IOTRACE_DIR", "IOTRACE_JOB")  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in JOB_VARS}
    env.update(extra)
    return env


def _batch(central: Path, script: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """`eval "$(iotrace env --dir CENTRAL)"` then the script, as a batch script would."""
    r = iotrace("env", "--dir", str(central), env=_env())
    assert r.returncode == 0, r.stderr
    return subprocess.run(["sh", "-c", r.stdout + script], cwd=cwd, env=_env(**extra),
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _pids_by_exe(d: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in log_paths(d):
        name = Path(read_log(p).header["exe"]).name
        out[name] = out.get(name, 0) + 1
    return out


def test_env_lines(tmp_path: Path) -> None:
    r = iotrace("env", "--dir", str(tmp_path / "c"), "--stack", "4", env=_env())
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("export LD_PRELOAD=") and "libiotrace.so" in lines[0]
    assert f"export IOTRACE_DIR={tmp_path / 'c'}" in lines
    assert "export IOTRACE_STACK=4" in lines
    assert (tmp_path / "c").is_dir()
    bad = iotrace("env", "--dir", "/proc/version/x", env=_env())
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr


def test_one_dir_per_job_named_by_its_id(tmp_path: Path) -> None:
    central = tmp_path / "central"
    r = _batch(central, "echo hi > out.txt; cat out.txt; cat out.txt", tmp_path,
               SLURM_JOB_ID="4242")  # fmt: skip
    assert r.returncode == 0 and r.stdout == "hi\nhi\n", r.stderr
    assert [p.name for p in central.iterdir()] == ["iotrace-slurm-4242"]
    job = central / "iotrace-slurm-4242"
    assert (job / "iotrace-job").read_text() == "job slurm 4242\n"
    assert _pids_by_exe(job) == {"cat": 2}  # the shell that evaluated the lines is not traced
    assert oct(job.stat().st_mode & 0o777) == "0o700"
    # a second step of the job, and another job: directories of their own
    _batch(central, "cat /dev/null", tmp_path, SLURM_JOB_ID="4242", SLURM_STEP_ID="1")
    _batch(central, "cat /dev/null", tmp_path, PBS_JOBID="99.server")
    assert sorted(p.name for p in central.iterdir()) == [
        "iotrace-pbs-99.server", "iotrace-slurm-4242", "iotrace-slurm-4242.1",
    ]  # fmt: skip
    rep = iotrace("report", str(job), "--json")
    assert rep.returncode == 0, rep.stderr


def test_no_job_id_one_dir_per_process_tree(tmp_path: Path) -> None:
    central = tmp_path / "central"
    r = _batch(central, "sh -c 'cat /dev/null; cat /dev/null'", tmp_path)
    assert r.returncode == 0, r.stderr
    (only,) = central.iterdir()
    assert (only / "iotrace-job").read_text().startswith("run ")
    # the inner shell and both cats (dash vforks them: each also has its image before its exec)
    assert len({read_log(p).header["pid"] for p in log_paths(only)}) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="plants a directory as another user: root")
@pytest.mark.parametrize("how", ["owner", "mode", "symlink", "marker"])
def test_job_dir_of_others_not_used(tmp_path: Path, how: str) -> None:
    """A job's directory another user made first, one others may write, a symlink planted under
    its name, one of another job: nothing is written there, the app runs as ever."""
    central = tmp_path / "central"
    central.mkdir()
    central.chmod(0o1777)
    job = central / "iotrace-slurm-4242"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if how == "symlink":
        job.symlink_to(elsewhere)
    else:
        job.mkdir(mode=0o700)
    if how == "owner":
        os.chown(job, NOBODY, NOBODY)
    elif how == "mode":
        job.chmod(0o777)
    elif how == "marker":
        (job / "iotrace-job").write_text("job slurm 1\n")
    r = _batch(central, "echo hi > out.txt; cat out.txt", tmp_path, SLURM_JOB_ID="4242")
    assert r.returncode == 0 and r.stdout == "hi\n" and r.stderr == ""
    assert list(elsewhere.iterdir()) == []
    if how != "symlink":
        assert list(job.glob("*.iot")) == []


@pytest.mark.parametrize("bare", [False, True])
def test_app_cannot_send_children_elsewhere(tmp_path: Path, bare: bool) -> None:
    """The app sets IOTRACE_DIR and IOTRACE_OUT to another directory, then forks, execs and
    spawns: every child's log is in the trace, none in the other directory."""
    prog = build("batch_setenv")
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    work = tmp_path / "work"
    work.mkdir()
    if bare:
        central = tmp_path / "central"
        r = _batch(central, f"{prog} {other}", work, SLURM_JOB_ID="7")
        d = central / "iotrace-slurm-7"
    else:
        d = tmp_path / "trace"
        r = iotrace("run", "-o", str(d), "--", str(prog), str(other), cwd=work, env=_env())
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in other.iterdir()) == []
    logs = [read_log(p) for p in log_paths(d)]
    assert len(logs) == 5  # the app, forked, exec'd (its fork, then its image), spawned
    opened = {s for log in logs for s in log.strings.values() if str(s).endswith(".out")}
    assert {Path(s).name for s in opened} == {"forked.out", "execd.out", "spawned.out"}


@pytest.mark.skipif(os.geteuid() != 0, reason="another user swaps the job's directory: root")
def test_job_dir_swapped_by_another_user_gets_nothing(public_dir: Path) -> None:
    """A central directory another user is given while root's job runs (one they own from the
    start is refused: test_files_security.py): that user renames the job's directory away and
    puts one of theirs in its place, holding files named as the job's logs.  The shim neither
    creates logs there nor maps those files (the next 4 MiB of a log that grows, opened again
    by name): they stay empty, nothing of root's is in that directory, and the app runs as
    untraced."""
    prog = build("rt_swap")
    central = public_dir / "central"
    central.mkdir()
    ready, flag = public_dir / "ready", public_dir / "flag"
    script = f"{prog} {ready} {flag} 300000 /dev/null; cat {prog} | wc -c"
    r = iotrace("env", "--dir", str(central), env=_env())
    job = subprocess.Popen(["sh", "-c", r.stdout + script], cwd=public_dir,
                           env=_env(SLURM_JOB_ID="4243"), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        for _ in range(3000):
            if ready.exists() or job.poll() is not None:
                break
            time.sleep(0.01)
        d = central / "iotrace-slurm-4243"
        names = " ".join(p.name for p in d.glob("*.iot"))
        assert names, list(d.iterdir())
        os.chown(central, NOBODY, NOBODY)
        swap = (f"cd {central} && mv {d.name} old && mkdir -m 777 {d.name} && "
                f"for n in {names}; do : > {d.name}/$n; chmod 666 {d.name}/$n; done")  # fmt: skip
        subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", swap], check=True)
        flag.touch()
        out, err = job.communicate(timeout=120)
    finally:
        job.kill()
    size = prog.stat().st_size
    assert (job.returncode, out, err) == (0, f"wrote 300000\n{size}\n", "")
    planted = [(p.name, p.stat().st_uid, p.stat().st_size) for p in d.iterdir()]
    assert planted and all(uid == NOBODY and n == 0 for _, uid, n in planted), planted


@pytest.mark.parametrize("mode", [(), ("--no-stracer",)], ids=["full", "shim"])
def test_iotrace_run_inside_a_batch_script_traces_into_its_own_dir(
    tmp_path: Path, mode: tuple[str, ...]
) -> None:
    """`iotrace run` in a script that preloads the shim (`iotrace env`): the command's logs are
    in the run's directory, and neither iotrace itself nor its stracer is traced into the batch
    job's.  Before, the launcher's own shim put the job's IOTRACE_OUT back at the exec: cat's
    log went to the job's directory, the run's trace held only the stracer's log (81 calls
    "missed"), and the stracer ran under the shim."""
    central, t = tmp_path / "central", tmp_path / "t"
    src = tmp_path / "in.txt"
    src.write_text("hello\n")
    run = f"{launcher()} run -o {t} {' '.join(mode)} -- cat {src}"
    r = _batch(central, f"{run}; cat {src}", tmp_path, SLURM_JOB_ID="4244")
    assert (r.returncode, r.stdout) == (0, "hello\nhello\n"), r.stderr
    assert _pids_by_exe(t) == {"cat": 1}
    # the script's own cat, and iotrace's first image (the shim starts before its main)
    assert _pids_by_exe(central / "iotrace-slurm-4244") == {"iotrace": 1, "cat": 1}
    cat = next(read_log(p) for p in log_paths(t))
    assert str(src) in cat.strings.values()


def test_completeness_of_a_job_with_children(tmp_path: Path) -> None:
    """A job traced by the bare shim whose shell forks a child that execs: the report explains
    100.0% (was 181%: a trace without a run record, whose time span the report guessed wrong,
    merged its parts twice, and each merge took the child's counters off its parent's again)."""
    central = tmp_path / "central"
    r = _batch(central, "dash -c 'head -c 1000 /dev/zero > r.bin; true'", tmp_path,
               SLURM_JOB_ID="4343")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.bin").stat().st_size == 1000
    rep = iotrace("report", str(central / "iotrace-slurm-4343"), "--json")
    assert rep.returncode == 0, rep.stderr
    import json

    c = json.loads(rep.stdout)["completeness"]
    assert c["line"].startswith("the trace explains 100.0% of the "), c["line"]
    assert " and 100.0% of the " in c["line"], c["line"]
    assert len(c["processes"]) == 2
    for p in c["processes"]:
        assert p["kernel_rchar"] == p["explained_rchar"], p
