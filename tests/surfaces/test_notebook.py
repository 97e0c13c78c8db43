"""Notebook display of Job and Queue: rendered HTML (escaped user data) and concise reprs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from jobfactory import put_job

from bullmq_sync import Connection, Job, Queue
from bullmq_sync.display import format_time

EVIL = '<script>alert("x")</script>&<b>'


class _Cells(HTMLParser):
    """Collects the table as {header: cell text} and checks tags are balanced."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self._th = ""
        self._buffer: list[str] = []
        self._where = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.stack.append(tag)
        if tag in ("th", "td"):
            self._where, self._buffer = tag, []

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()
        if tag == "th":
            self._th = "".join(self._buffer)
        elif tag == "td":
            self.rows[self._th] = "".join(self._buffer)
        if tag in ("th", "td"):
            self._where = ""

    def handle_data(self, data: str) -> None:
        if self._where:
            self._buffer.append(data)


def parse(html_text: str) -> _Cells:
    cells = _Cells()
    cells.feed(html_text)
    cells.close()
    assert cells.stack == []
    return cells


def test_failed_job_renders_state_attempts_dates_reason_escaped(queue, raw, prefix):
    put_job(raw, prefix, "q", "7", state="failed")
    raw.hset(
        f"{prefix}:q:7",
        mapping={
            "name": EVIL,
            "data": json.dumps({"html": EVIL, "n": 1}),
            "failedReason": EVIL,
            "opts": json.dumps({"attempts": 3}),
            "timestamp": 1700000000000,
            "processedOn": 1700000001000,
            "finishedOn": 1700000002500,
        },
    )
    job = Job.from_id(queue, "7")
    assert job is not None
    rendered = job._repr_html_()
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered
    cells = parse(rendered)
    assert cells.tags <= {"table", "tr", "th", "td", "b", "pre", "span", "details", "summary", "i"}
    rows = cells.rows
    assert rows["id"] == "7" and rows["name"] == EVIL  # shown as text, not markup
    assert rows["state"] == "failed"
    assert rows["attempts"] == "1/3 made, 1 started"
    assert rows["created"] == "2023-11-14 22:13:20.000 UTC"
    assert rows["processed"] == "2023-11-14 22:13:21.000 UTC"
    assert rows["finished"] == "2023-11-14 22:13:22.500 UTC"
    assert rows["failed reason"] == EVIL
    assert json.loads(rows["data"]) == {"html": EVIL, "n": 1}
    assert "Error: boom" in rows["stacktrace"]


def test_completed_job_shows_return_value_and_progress(queue, raw, prefix):
    job = queue.add("resize", {"w": 10}, {"attempts": 2})
    raw.hset(f"{prefix}:q:{job.id}", mapping={"progress": json.dumps({"pct": 40})})
    waiting = Job.from_id(queue, job.id)
    assert waiting is not None
    rows = parse(waiting._repr_html_()).rows
    assert rows["state"] == "waiting" and rows["attempts"] == "0/2 made, 0 started"
    assert json.loads(rows["progress"]) == {"pct": 40}
    assert "finished" not in rows and "failed reason" not in rows

    put_job(raw, prefix, "q", "9", state="completed")
    done = Job.from_id(queue, "9")
    assert done is not None
    rows = parse(done._repr_html_()).rows
    assert rows["state"] == "completed" and json.loads(rows["return value"]) == {"ok": True}


def test_long_data_is_cut(queue, raw, prefix):
    put_job(
        raw, prefix, "q", "big", state="wait", extra={"data": json.dumps({"blob": "x" * 50000})}
    )
    job = Job.from_id(queue, "big")
    assert job is not None
    rendered = job._repr_html_()
    assert len(rendered) < 10000 and "characters)" in rendered


def test_job_repr_is_concise_and_makes_no_redis_call(queue, raw, prefix):
    put_job(raw, prefix, "q", "7", state="failed", extra={"data": json.dumps({"secret": "s3cr3t"})})
    raw.hset(f"{prefix}:q:7", mapping={"opts": json.dumps({"attempts": 3}), "failedReason": "a\nb"})
    job = Job.from_id(queue, "7")
    assert job is not None
    queue.connection.close()  # repr must not need Redis
    text = repr(job)
    assert text == f"<Job '{prefix}:q' 7 'work' attempts=1/3 failed: a b>"
    assert "s3cr3t" not in text


def test_queue_renders_counts_and_paused(redis_url, prefix, raw):
    with Queue("emails", connection=redis_url, prefix=prefix) as queue:
        for job_id in ("1", "2"):
            put_job(raw, prefix, "emails", job_id, state="failed")
        queue.add("welcome", {"to": EVIL})
        queue.pause()
        rendered = queue._repr_html_()
    rows = parse(rendered).rows
    assert rows["queue"] == f"{prefix}:emails"
    assert rows["paused"] == "yes"
    assert rows["failed"] == "2" and rows["waiting"] == "1" and rows["total"] == "3"
    assert rows["connection"].startswith("<Connection redis://")
    assert "<script>" not in rendered


def test_queue_html_redacts_the_password_and_survives_redis_down():
    conn = Connection("redis://:hunter2@127.0.0.1:1", retry_budget=0.0)
    queue = Queue("emails", connection=conn, prefix="p")
    rendered = queue._repr_html_()
    assert "hunter2" not in rendered and "***" in rendered
    rows = parse(rendered).rows
    assert "could not reach Redis at redis://:***@127.0.0.1:1" in rows["error"]
    assert re.fullmatch(
        r"<Queue 'p:emails' on <Connection redis://:\*\*\*@127.0.0.1:1>>", repr(queue)
    )
    conn.close()


def test_format_time():
    assert format_time(None) == "" and format_time(0) == ""
    assert format_time(1700000000123) == "2023-11-14 22:13:20.123 UTC"


def test_job_html_never_raises_without_redis(prefix):
    conn = Connection("redis://127.0.0.1:1", retry_budget=0.0)
    queue = Queue("q", connection=conn, prefix=prefix)
    job = Job(queue=queue, id="1", name="n", data={"a": 1}, timestamp=1700000000000)
    rows = parse(job._repr_html_()).rows
    assert rows["state"] == "unknown" and rows["created"] == "2023-11-14 22:13:20.000 UTC"
    conn.close()
