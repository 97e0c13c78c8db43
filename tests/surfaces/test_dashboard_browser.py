"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, against
``bullmq-sync dashboard`` served by waitress as a subprocess, with a real Node BullMQ worker.

Screenshots go to ``tmp/artifacts`` (``DASHBOARD_ARTIFACTS`` overrides)."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_support import ARTIFACTS, CommandLog, fill_failed, require_chromium, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
from nodebullmq import NodeBullMQ, require_node  # noqa: E402

from bullmq_sync import Queue  # noqa: E402

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
sync_playwright = playwright_api.sync_playwright

pytestmark = pytest.mark.slow

XSS = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_SVG = "<svg onload=window.__xss=1>"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = require_chromium()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


@pytest.fixture(scope="module")
def node(redis_url: str) -> Iterator[NodeBullMQ]:
    require_node(6)
    with NodeBullMQ(redis_url, major=6) as driver:
        yield driver


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_injection(page) -> None:
    """No dialog ran, no payload executed, no element came from job data."""
    assert page.dialogs == []
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('img, svg, iframe, object, embed').length") == 0
    scripts = page.evaluate("Array.from(document.scripts).map(s => s.src)")
    assert len(scripts) == 1 and scripts[0].endswith("/static/dashboard.js")


def test_find_fail_retry_and_watch_a_node_worker_complete_it(page, node, redis_url, prefix, raw):
    node.call("add", queue="emails", prefix=prefix, name="welcome", data={"to": "a@example.com"})
    failing = node.call(
        "add",
        queue="emails",
        prefix=prefix,
        name="receipt",
        data={"__failTimes": 1, "__failMessage": "smtp down"},
        opts={"attempts": 1},
    )["id"]
    events = node.call("process", queue="emails", prefix=prefix, count=2, timeoutMs=15000)
    assert {e["event"] for e in events} == {"completed", "failed"}
    Queue("billing", connection=redis_url, prefix=prefix).add("invoice", {"n": 1}, delay=60_000)

    with serve(redis_url, prefix) as server:
        page.goto(server.base + "/")
        row = page.locator("tr", has=page.locator("a", has_text="emails"))
        assert row.locator("[data-state=failed]").inner_text() == "1"
        assert row.locator("[data-state=completed]").inner_text() == "1"
        billing = page.locator("tr", has=page.locator("a", has_text="billing"))
        assert billing.locator("[data-state=delayed]").inner_text() == "1"
        shot(page, "overview")

        row.locator("[data-state=failed]").click()
        assert page.locator(".tab.current").inner_text().startswith("failed")
        assert page.locator("td.reason").inner_text() == "smtp down"
        page.locator("td.id a", has_text=failing).click()
        assert page.locator("#failed-reason").inner_text() == "smtp down"
        assert json.loads(page.locator("#job-data").inner_text())["__failMessage"] == "smtp down"
        assert page.locator("#job-state").inner_text() == "failed"
        shot(page, "job-failed")

        page.locator("#retry").click()
        page.wait_for_selector("p.notice")
        assert page.locator("#job-state").inner_text() == "waiting"
        assert raw.lrange(f"{prefix}:emails:wait", 0, -1) == [failing]
        page.wait_for_selector("#live:not([hidden])")

        worker = threading.Thread(
            target=node.call,
            args=("process",),
            kwargs={"queue": "emails", "prefix": prefix, "count": 1, "timeoutMs": 15000},
        )
        worker.start()
        expect(page.locator("#job-state")).to_have_text("completed", timeout=20000)
        worker.join()
        # The state and the event log are updated by separate SSE messages: wait for both.
        expect(page.locator("#event-log")).to_contain_text("completed", timeout=10000)
        shot(page, "job-completed-live")
        assert raw.hget(f"{prefix}:emails:{failing}", "returnvalue") is not None


def test_retry_all_failed_with_confirmation_and_progress(page, redis_url, prefix, raw):
    fill_failed(raw, prefix, "imports", 2500)
    with serve(redis_url, prefix) as server:
        page.goto(
            server.base + "/queue?" + urllib.parse.urlencode({"name": "imports", "state": "failed"})
        )
        assert page.locator("[data-state=failed]").first.inner_text() == "2500"
        page.locator("#retry-all").click()
        assert page.locator("h1").inner_text() == "Retry all 2500 failed jobs?"
        shot(page, "retry-all-confirm")
        page.locator("#confirm").click()
        page.wait_for_selector("#bulk-done", timeout=30000)
        assert page.locator(".progress-text").inner_text() == "2500 of 2500 — done"
        shot(page, "retry-all-done")
        assert raw.zcard(f"{prefix}:imports:failed") == 0
        assert raw.llen(f"{prefix}:imports:wait") == 2500
        page.locator("#bulk-done").click()
        assert page.locator("[data-state=waiting]").first.inner_text() == "2500"


def test_retry_selected(page, redis_url, prefix, raw):
    fill_failed(raw, prefix, "q", 30)
    with serve(redis_url, prefix) as server:
        page.goto(server.base + "/queue?name=q&state=failed&per=20")
        boxes = page.locator("input[name=ids]")
        assert boxes.count() == 20
        boxes.nth(0).check()
        boxes.nth(1).check()
        page.locator("#retry-selected").click()
        assert page.locator("p.notice").inner_text() == "Selected jobs retried: 2."
        assert sorted(raw.lrange(f"{prefix}:q:wait", 0, -1)) == ["29", "30"]


def test_read_only_hides_and_refuses_actions(page, redis_url, prefix, raw):
    fill_failed(raw, prefix, "q", 3)
    with serve(redis_url, prefix, "--read-only") as server:
        page.goto(server.base + "/queue?name=q&state=failed")
        assert page.locator(".badge.ro").inner_text() == "read-only"
        assert page.locator("button").count() == 1  # the find-by-id form only
        assert page.locator("#retry-all").count() == 0
        page.goto(server.base + "/job?queue=q&id=1")
        assert page.locator("#retry").count() == 0
        shot(page, "read-only-job")
        # a direct POST is refused too
        form = urllib.parse.urlencode({"queue": "q", "action": "retry", "id": "1"}).encode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.base + "/action", data=form, timeout=10)
        assert refused.value.code == 403
        page.goto(server.base + "/confirm?queue=q&action=retry-all")
        assert "read-only" in page.content()
    assert raw.zcard(f"{prefix}:q:failed") == 3 and raw.llen(f"{prefix}:q:wait") == 0


def test_hostile_fields_render_as_text(page, redis_url, prefix, raw):
    queue_name = XSS_SVG  # no ':' so it is a valid BullMQ queue name
    job_id = XSS
    now = int(time.time() * 1000)
    parent_id = XSS_SCRIPT
    base = f"{prefix}:{queue_name}:"
    raw.hset(
        base + job_id,
        mapping={
            "name": XSS_SCRIPT,
            "data": json.dumps({"html": XSS, "k" + XSS_SVG: [XSS_SCRIPT]}),
            "opts": json.dumps({"attempts": 1, "jobId": XSS}),
            "timestamp": now,
            "delay": 0,
            "priority": 0,
            "processedOn": now,
            "finishedOn": now,
            "atm": 1,
            "failedReason": XSS + XSS_SCRIPT,
            "stacktrace": json.dumps([XSS_SVG + "\n    at <anonymous>"]),
            "returnvalue": json.dumps(XSS),
            "progress": json.dumps({"p": XSS}),
            "parentKey": base + parent_id,
            "parent": json.dumps({"id": parent_id, "queueKey": prefix + ":" + queue_name}),
        },
    )
    raw.zadd(base + "failed", {job_id: now})
    raw.rpush(base + job_id + ":logs", XSS, XSS_SCRIPT)
    raw.hset(
        base + parent_id, mapping={"name": XSS_SVG, "data": "{}", "opts": "{}", "timestamp": now}
    )
    raw.sadd(base + parent_id + ":dependencies", base + job_id)
    raw.zadd(base + "waiting-children", {parent_id: now})
    raw.set(base + "id", 1)

    with serve(redis_url, prefix) as server:
        page.goto(server.base + "/")
        assert page.get_by_text(queue_name, exact=True).count() >= 1
        no_injection(page)
        page.goto(
            server.base
            + "/queue?"
            + urllib.parse.urlencode({"name": queue_name, "state": "failed"})
        )
        assert page.locator("td.id").inner_text() == job_id
        assert page.locator("td.name").inner_text() == XSS_SCRIPT
        assert page.locator("td.reason").inner_text() == XSS + XSS_SCRIPT
        no_injection(page)
        page.locator("td.id a").click()
        assert page.locator(".jobname").inner_text() == XSS_SCRIPT
        assert page.locator("#failed-reason").inner_text() == XSS + XSS_SCRIPT
        assert XSS_SVG in page.locator("pre.stack").inner_text()
        assert json.loads(page.locator("#job-data").inner_text())["html"] == XSS
        assert json.loads(page.locator("#job-return").inner_text()) == XSS
        assert page.locator("#job-logs li").all_inner_texts() == [XSS, XSS_SCRIPT]
        assert XSS_SVG in page.locator("#flow-tree").inner_text()
        no_injection(page)
        # a live event about the hostile job lands in the page as text too
        page.wait_for_selector("#live:not([hidden])")
        Queue(queue_name, connection=redis_url, prefix=prefix).get_job(job_id).retry()
        expect(page.locator("#job-state")).to_have_text("waiting", timeout=15000)
        assert job_id in page.locator("#event-log").inner_text()
        shot(page, "hostile-job")
        no_injection(page)
        page.locator("#flow-tree a").first.click()
        assert page.locator(".jobname").inner_text() == XSS_SVG
        no_injection(page)


def test_a_queue_with_100k_failed_jobs_pages_with_bounded_ranges(page, redis_url, prefix, raw):
    fill_failed(raw, prefix, "big", 100_000)
    with serve(redis_url, prefix) as server:
        for number in (1, 1000):
            url = f"{server.base}/queue?name=big&state=failed&per=50&page={number}"
            with CommandLog(redis_url, prefix) as log:
                page.goto(url, wait_until="load")
            ranges = log.named("ZREVRANGE", "ZRANGE", "LRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE")
            assert [c[1:] for c in ranges] == [
                [f"{prefix}:big:failed", str((number - 1) * 50), str(number * 50 - 1)]
            ]
            reads = log.named("HMGET")
            assert len(reads) == 50
            first = 100_000 - (number - 1) * 50
            assert reads[0][1] == f"{prefix}:big:{first}"
            banned = log.named("KEYS", "SCAN", "SMEMBERS", "HGETALL", "SORT", "ZRANGESTORE")
            assert banned == []
            # counts (8 + paused flag), one range, 50 rows; plus the browser's live XREAD
            assert len([c for c in log.commands if c[0].upper() != "XREAD"]) == 9 + 1 + 50
            assert page.locator("td.id").first.inner_text() == str(first)
            assert (
                page.locator(".pager .muted").inner_text()
                == f"100000 failed · page {number} of 2000"
            )
        shot(page, "failed-100k")


def test_a_node_flow_drawn_as_a_tree_with_parent_and_children_links(page, node, redis_url, prefix):
    flow = {
        "name": "render-report",
        "queueName": "reports",
        "data": {},
        "children": [
            {"name": "fetch-sales", "queueName": "fetch", "data": {}},
            {
                "name": "fetch-stock",
                "queueName": "fetch",
                "data": {},
                "children": [{"name": "warm-cache", "queueName": "cache", "data": {}}],
            },
        ],
    }
    ids = node.call("addFlow", prefix=prefix, flow=flow)["ids"]
    root_id = ids["id"]
    with serve(redis_url, prefix) as server:
        page.goto(server.base + "/queue?name=cache&state=waiting")
        page.locator("td.id a").first.click()
        tree = page.locator("#flow-tree")
        names = tree.locator("li a").all_inner_texts()
        assert names[0] == "render-report"  # drawn from the top parent
        assert sorted(names) == ["fetch-sales", "fetch-stock", "render-report", "warm-cache"]
        stock = tree.locator("li", has=page.locator("a", has_text="fetch-stock")).last
        assert stock.locator("ul li a").all_inner_texts() == ["warm-cache"]  # nested under it
        assert tree.locator("li.current strong").inner_text() == "warm-cache"
        assert tree.locator("li").first.locator(".badge").first.inner_text() == "waiting-children"
        assert page.locator(".facts dd a").inner_text().startswith("fetch / ")  # parent link
        shot(page, "flow-tree")
        tree.locator("li a", has_text="render-report").click()
        assert page.locator("h1 .muted").inner_text() == f"#{root_id}"
        assert page.locator("#job-state").inner_text() == "waiting-children"
        assert page.locator("ul.children li").count() == 2


def test_pause_and_resume_update_the_overview_live(page, redis_url, prefix, raw):
    fill_failed(raw, prefix, "q", 1)
    with serve(redis_url, prefix) as server:
        overview = page.context.new_page()
        overview.goto(server.base + "/")
        overview.wait_for_selector("#live:not([hidden])")
        badge = overview.locator("[data-paused]")
        assert badge.is_hidden()
        page.goto(server.base + "/queue?name=q&state=failed")
        page.get_by_role("button", name="Pause queue").click()
        assert page.locator("p.notice").inner_text() == "Queue paused."
        assert raw.hexists(f"{prefix}:q:meta", "paused")
        expect(badge).to_be_visible(timeout=15000)
        page.get_by_role("button", name="Resume queue").click()
        expect(badge).to_be_hidden(timeout=15000)
        assert not raw.hexists(f"{prefix}:q:meta", "paused")


def test_worker_count_sees_a_running_node_worker(page, node, redis_url, prefix):
    node.call("add", queue="slow", prefix=prefix, name="nap", data={"__sleepMs": 4000})
    worker = threading.Thread(
        target=node.call,
        args=("process",),
        kwargs={"queue": "slow", "prefix": prefix, "count": 1, "timeoutMs": 15000},
    )
    with serve(redis_url, prefix) as server:
        page.goto(server.base + "/")
        cell = page.locator("tr", has=page.locator("a", has_text="slow")).locator("td.num").last
        assert cell.inner_text() == "0"
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while cell.inner_text() != "1" and time.monotonic() < deadline:
                time.sleep(0.3)
                page.reload()
                cell = page.locator("tr", has=page.locator("a", has_text="slow")).locator("td.num").last
            assert cell.inner_text() == "1"
        finally:
            worker.join()
