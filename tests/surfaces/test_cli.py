"""The ``bullmq-sync`` CLI, run in-process (``main([...])``) and as a real subprocess."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import redis
from helpers import default_sigint
from jobfactory import put_job

from bullmq_sync import Queue
from bullmq_sync.cli import main
from bullmq_sync.cli.output import parse_time

ENTRY_POINT = Path(sys.executable).with_name("bullmq-sync")


def run(
    *args: str,
    stdin: int | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``python -m bullmq_sync ARGS`` as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "bullmq_sync", *args],
        capture_output=True,
        text=True,
        stdin=stdin,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture
def g(redis_url: str, prefix: str) -> list[str]:
    """The global options pointing at the test's Redis and prefix."""
    return ["--url", redis_url, "--prefix", prefix]


def failed_jobs(raw: redis.Redis, prefix: str, ids: list[str], queue: str = "q") -> None:
    for job_id in ids:
        put_job(raw, prefix, queue, job_id, state="failed")


def test_counts_json_in_process(g, raw, prefix, queue, capsys):
    failed_jobs(raw, prefix, ["1", "2"])
    put_job(raw, prefix, "q", "3", state="completed")
    queue.add("fresh", {"x": 1})
    assert main([*g, "counts", "q", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == {
        "active": 0,
        "completed": 1,
        "delayed": 0,
        "failed": 2,
        "prioritized": 0,
        "waiting": 1,
        "waiting-children": 0,
    }


def test_counts_table_via_module_and_entry_point(g, raw, prefix):
    failed_jobs(raw, prefix, ["1", "2", "3"])
    by_module = run(*g, "counts", "q")
    assert by_module.returncode == 0, by_module.stderr
    assert re.search(r"^failed\s+3$", by_module.stdout, re.M)
    assert by_module.stdout.splitlines()[0].split() == ["STATE", "COUNT"]
    by_script = subprocess.run(
        [str(ENTRY_POINT), *g, "counts", "q"], capture_output=True, text=True
    )
    assert by_script.returncode == 0 and by_script.stdout == by_module.stdout


def test_global_options_after_the_subcommand_and_redis_url_env(redis_url, raw, prefix):
    failed_jobs(raw, prefix, ["1"])
    env = {**os.environ, "REDIS_URL": redis_url}
    result = run("counts", "q", "--prefix", prefix, "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["failed"] == 1


def test_jobs_table_and_json(g, raw, prefix, capsys):
    failed_jobs(raw, prefix, ["a1", "a2", "a3"])
    raw.hset(f"{prefix}:q:a2", mapping={"failedReason": "line one\nline two", "name": "send-email"})
    assert main([*g, "jobs", "q", "--state", "failed", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "ATTEMPTS", "AGE", "FAILED", "REASON"]
    assert len(lines) == 3
    row = next(line for line in lines if line.startswith("a2"))
    assert "send-email" in row and "1/1" in row and "line one line two" in row
    assert main([*g, "jobs", "q", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(j["id"] for j in listed) == ["a1", "a2", "a3"]
    assert {j["failedReason"] for j in listed} == {"boom", "line one\nline two"}
    assert main([*g, "jobs", "q", "--state", "completed"]) == 0
    assert capsys.readouterr().out.strip() == "no completed jobs in 'q'"


def test_show_job_json_and_missing_job(g, raw, prefix, capsys):
    failed_jobs(raw, prefix, ["9"])
    assert main([*g, "show", "q", "9"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == "9" and shown["state"] == "failed" and shown["failedReason"] == "boom"
    assert shown["data"] == {"n": "9"} and shown["attemptsMade"] == 1
    assert main([*g, "show", "q", "404"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "job 404 not found" in captured.err


def test_retry_ids_reports_moved_skipped_errors(g, raw, prefix, capsys):
    failed_jobs(raw, prefix, ["1", "2"])
    put_job(raw, prefix, "q", "3", state="completed")
    assert main([*g, "retry", "q", "1", "2", "3", "404"]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "moved 2, skipped 1, errors 1"
    assert "job 3: skipped, it is completed, not failed" in captured.err
    assert "job 404: not found" in captured.err
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == []
    assert sorted(raw.lrange(f"{prefix}:q:wait", 0, -1)) == ["1", "2"]
    assert raw.zrange(f"{prefix}:q:completed", 0, -1) == ["3"]


def test_retry_completed_with_resets(g, raw, prefix, capsys):
    put_job(raw, prefix, "q", "5", state="completed")
    argv = [
        *g,
        "retry",
        "q",
        "5",
        "--state",
        "completed",
        "--reset-attempts-made",
        "--reset-attempts-started",
        "--json",
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == {"moved": 1, "skipped": 0, "errors": 0}
    assert raw.hmget(f"{prefix}:q:5", ["atm", "ats"]) == [None, None]  # deleted, as Node does
    assert raw.lrange(f"{prefix}:q:wait", 0, -1) == ["5"]


def test_retry_all_dry_run_changes_nothing(g, raw, prefix, capsys):
    failed_jobs(raw, prefix, [str(i) for i in range(5)])
    before = raw.zrange(f"{prefix}:q:failed", 0, -1, withscores=True)
    assert main([*g, "retry", "q", "--all", "--dry-run"]) == 0
    assert (
        capsys.readouterr().out.strip() == "dry run: would move 5 failed job(s) of 'q' to waiting"
    )
    assert raw.zrange(f"{prefix}:q:failed", 0, -1, withscores=True) == before
    assert not raw.exists(f"{prefix}:q:wait")


def test_retry_all_with_progress_bar_on_a_tty(g, raw, prefix, capsys, monkeypatch):
    ids = [str(i) for i in range(2500)]
    pipe = raw.pipeline(transaction=False)
    for job_id in ids:
        put_job(pipe, prefix, "q", job_id, state="failed")  # type: ignore[arg-type]
    pipe.execute()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([*g, "retry", "q", "--all", "--yes"]) == 0
    assert capsys.readouterr().out.strip() == "moved 2500, skipped 0, errors 0"
    drawn = terminal.getvalue()
    assert "\rretrying [" in drawn and "2500/2500 100%" in drawn and drawn.endswith("\n")
    assert "1000/2500" in drawn  # one redraw per batch of 1000
    assert raw.zcard(f"{prefix}:q:failed") == 0
    assert raw.llen(f"{prefix}:q:wait") == 2500


def test_retry_all_finished_before(g, raw, prefix, capsys):
    failed_jobs(raw, prefix, ["old1", "old2", "new"])
    cutoff = int(time.time() * 1000) - 3_600_000
    for job_id in ("old1", "old2"):
        raw.zadd(f"{prefix}:q:failed", {job_id: cutoff - 60_000})
        raw.hset(f"{prefix}:q:{job_id}", "finishedOn", cutoff - 60_000)
    assert main([*g, "retry", "q", "--all", "--finished-before", "1h", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["would_move"] == 2
    assert main([*g, "retry", "q", "--all", "--finished-before", str(cutoff), "--yes"]) == 0
    assert capsys.readouterr().out.strip() == "moved 2, skipped 0, errors 0"
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == ["new"]
    assert sorted(raw.lrange(f"{prefix}:q:wait", 0, -1)) == ["old1", "old2"]


def test_retry_all_refuses_without_yes_when_not_interactive(g, raw, prefix):
    failed_jobs(raw, prefix, ["1"])
    result = run(*g, "retry", "q", "--all")
    assert result.returncode == 2
    assert "add --yes to confirm" in result.stderr and "Traceback" not in result.stderr
    assert raw.zrange(f"{prefix}:q:failed", 0, -1) == ["1"]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["retry", "q"],
        ["retry", "q", "1", "--all"],
        ["retry", "q", "1", "--dry-run"],
        ["retry", "q", "--all", "--state", "waiting"],
        ["retry", "q", "--all", "--finished-before", "last tuesday"],
        ["jobs", "q", "--limit", "0"],
        ["worker", "no-colon", "--queue", "q"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv, g, raw, prefix, capsys):
    assert main([*g, *argv]) == 2
    assert "error" in capsys.readouterr().err
    assert raw.keys(f"{prefix}:*") == []


def test_unreachable_redis_is_an_error_not_a_traceback():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    result = run("--url", f"redis://127.0.0.1:{port}", "counts", "q")
    assert result.returncode == 1
    assert result.stderr.startswith(f"bullmq-sync: error: could not reach Redis at redis://127.0.0.1:{port} (")
    assert "Connection refused" in result.stderr and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert time.monotonic() - started < 20


def test_events_list_and_json(g, raw, prefix, capsys):
    raw.xadd(f"{prefix}:q:events", {"event": "added", "jobId": "1", "name": "n"})
    raw.xadd(f"{prefix}:q:events", {"event": "completed", "jobId": "1", "returnvalue": '{"a":1}'})
    assert main([*g, "events", "q", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["jobId"]) for e in lines] == [("added", "1"), ("completed", "1")]
    assert lines[1]["returnvalue"] == {"a": 1}
    assert main([*g, "events", "q", "--count", "1"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 1 and "added  job=1  name=n" in text[0]


def test_events_follow_until_ctrl_c(g, queue):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bullmq_sync", *g, "events", "q", "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        # It reads from "now", whenever it gets there: keep adding until a line comes out.
        assert proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()))
        reader.start()
        added: list[str] = []
        deadline = time.monotonic() + 20
        while reader.is_alive() and time.monotonic() < deadline:
            added.append(queue.add("hello", {"to": "you"}).id)
            reader.join(0.25)
        first = json.loads(lines[0])
        assert (first["event"], first["name"]) == ("added", "hello") and first["jobId"] in added
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130, (stderr, signal.getsignal(signal.SIGINT))
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


def test_ctrl_c_in_process_ends_quietly(g, monkeypatch, capsys):
    from bullmq_sync.cli import commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "counts", interrupted)
    assert main([*g, "counts", "q"]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_closed_pipe_ends_quietly(g, raw, prefix):
    pipe = raw.pipeline(transaction=False)
    for i in range(1500):
        put_job(pipe, prefix, "q", str(i), state="failed")  # type: ignore[arg-type]
    pipe.execute()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bullmq_sync", *g, "jobs", "q", "--limit", "1500", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().strip() == b"["
    proc.stdout.close()  # like `| head -1`
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=20)
    assert proc.returncode == 0
    assert stderr == ""


def test_worker_command_processes_jobs_and_stops_on_sigterm(g, queue, tmp_path):
    (tmp_path / "cli_tasks.py").write_text(
        textwrap.dedent("""
        def double(job):
            return {"doubled": job.data["n"] * 2}
    """)
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bullmq_sync",
            *g,
            "worker",
            "cli_tasks:double",
            "--queue",
            "q",
            "--concurrency",
            "2",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        jobs = [queue.add("double", {"n": n}) for n in range(4)]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(str(queue.get_job_state(j.id)) == "completed" for j in jobs):
                break
            time.sleep(0.1)
        assert [queue.get_job(j.id).return_value for j in jobs] == [
            {"doubled": 2 * n} for n in range(4)
        ]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "job.completed" in stderr and "Traceback" not in stderr


def test_worker_command_bad_target_is_an_error(g, tmp_path):
    result = run(*g, "worker", "no_such_module_here:fn", "--queue", "q", cwd=str(tmp_path))
    assert result.returncode == 1
    assert (
        "cannot import 'no_such_module_here'" in result.stderr and "Traceback" not in result.stderr
    )


def test_demo_on_an_embedded_redis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    result = run("demo", env=env, cwd=str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    url = re.search(r"embedded redis-server on (redis://127\.0\.0\.1:(\d+))", out)
    assert url is not None and url.group(2) != "6379"
    steps = [line for line in out.splitlines() if re.match(r"^\d\. ", line)]
    assert steps[1].startswith("2. job 1 failed after 1 attempt(s): flaky service")
    assert steps[3] == "4. job 1 completed: returnvalue={'greeting': 'hello, world'}"
    assert "stream: waiting job=1 prev=failed" in out
    for event in ("job.added", "job.failed", "job.retried", "job.completed"):
        assert event in result.stderr
    assert "stopped the embedded redis-server" in out
    lines = (out + result.stderr).splitlines()
    assert max(len(line) for line in lines) <= 80  # fits a terminal
    assert not [line for line in lines if "=None" in line or "replayed=False" in line]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(url.group(2))), timeout=1).close()


def test_demo_uses_the_given_url(g):
    result = run(*g, "demo", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "using the Redis at" in result.stdout and "embedded" not in result.stdout


def test_parse_time_forms():
    now = 1_700_000_000_000
    assert parse_time("1699999999000", now=now) == 1_699_999_999_000
    assert parse_time("2h", now=now) == now - 7_200_000
    assert parse_time("7d", now=now) == now - 7 * 86_400_000
    assert parse_time("2023-11-14T22:13:20Z") == 1_700_000_000_000
    with pytest.raises(ValueError):
        parse_time("soon")


def test_queue_class_untouched_by_cli_import():
    assert Queue.__module__ == "bullmq_sync.queue"


def test_progress_bar_only_on_a_real_terminal(g, raw, prefix):
    import pty

    failed_jobs(raw, prefix, [str(i) for i in range(30)])
    piped = run(*g, "retry", "q", "--all", "--yes")
    assert piped.returncode == 0 and piped.stderr == ""  # no bar when stderr is not a tty
    assert piped.stdout == "moved 30, skipped 0, errors 0\n"

    failed_jobs(raw, prefix, [str(i) for i in range(30, 40)])
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bullmq_sync", *g, "retry", "q", "--all", "--yes"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    out, _ = proc.communicate(timeout=60)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert out == b"moved 10, skipped 0, errors 0\n"
    assert b"retrying [" in drawn and b"10/10 100%" in drawn


def test_worker_command_with_processes_runs_the_function_in_children(g, queue, tmp_path):
    (tmp_path / "cli_cpu_tasks.py").write_text(
        textwrap.dedent("""
        import os

        def where(job):
            return {"pid": os.getpid(), "n": job.data["n"]}
    """)
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bullmq_sync", *g, "worker", "cli_cpu_tasks:where", "--queue", "q",
         "--processes", "2", "--max-jobs-per-child", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        jobs = [queue.add("where", {"n": n}) for n in range(6)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(str(queue.get_job_state(j.id)) == "completed" for j in jobs):
                break
            time.sleep(0.1)
        values = [queue.get_job(j.id).return_value for j in jobs]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert [v["n"] for v in values] == list(range(6))
    assert proc.pid not in {v["pid"] for v in values}
    assert len({v["pid"] for v in values}) >= 3  # recycled after 2 jobs each
    assert "(2 processes)" in stderr


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux only")
@pytest.mark.parametrize(("flags", "policy"), [([], "SCHED_BATCH"),
                                               (["--default-scheduling"], "SCHED_OTHER")])
def test_worker_command_job_threads_policy(g, queue, tmp_path, flags, policy):
    """The job threads run under SCHED_BATCH unless --default-scheduling is given."""
    (tmp_path / "cli_policy_tasks.py").write_text(
        "import os\n\ndef policy(job):\n    return os.sched_getscheduler(0)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bullmq_sync", *g, "worker", "cli_policy_tasks:policy",
         "--queue", "q", *flags],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        job = queue.add("policy", {})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and str(queue.get_job_state(job.id)) != "completed":
            time.sleep(0.05)
        value = queue.get_job(job.id).return_value
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert value == getattr(os, policy)
