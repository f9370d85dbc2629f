"""The status page in headless Chromium (Debian's, driven by Playwright): follow a job to SUCCEEDED, see a traceback.

Screenshots of each page go to docs/img/ (the README shows them).  Any console
error or uncaught script error fails the test.
"""
from __future__ import annotations

import os
import time

import pytest
from jobkit import failing, wordcount, write_words

import mapred

pytestmark = pytest.mark.timeout(300)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMG = os.path.join(ROOT, "docs", "img")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.problems = problems
    try:
        yield pg
    finally:
        context.close()


def _slow_job(service, user: str):
    store = service.cluster.storage.client()
    write_words(store, f"/user/{user}/slow.txt", 240, seed=4, vocab=50)
    job = wordcount(reducers=2, map_sleep=0.03)
    job.split_size = 1200                     # about a dozen maps, each a fraction of a second
    with mapred.connect(service.master, user=user) as cluster:
        return cluster.submit(job, [service.store_uri + f"/user/{user}/slow.txt"],
                              service.store_uri + f"/user/{user}/slow-out", overwrite=True)


def test_follow_a_running_job_to_succeeded(service, page):
    os.makedirs(IMG, exist_ok=True)
    token = service.token("pia")
    handle = _slow_job(service, "pia")
    page.goto(f"{service.url}/#token={token}")
    assert "#token" not in page.url                      # the token leaves the address bar at once
    row = page.locator(f'#jobs tr[data-job="{handle.job_id}"]')
    row.wait_for(timeout=30000)
    page.locator("#workers tbody tr").first.wait_for()
    page.locator("#datanodes tbody tr").nth(1).wait_for()
    page.screenshot(path=os.path.join(IMG, "status-index.png"), full_page=True)
    row.locator("a").click()
    page.wait_for_url(f"**/jobs/{handle.job_id}")
    seen, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        seen.append(int(page.locator('#job .bar[data-phase="map"]').get_attribute("aria-valuenow")))
        if page.locator("#job-state").inner_text() == "SUCCEEDED":
            break
        page.wait_for_timeout(200)
    assert page.locator("#job-state").inner_text() == "SUCCEEDED"
    page.wait_for_function("document.querySelector('#job .bar[data-phase=reduce]').getAttribute('aria-valuenow') == '100'")
    assert seen[-1] == 100 or int(page.locator('#job .bar[data-phase="map"]').get_attribute("aria-valuenow")) == 100
    assert len(set(seen)) >= 2 and min(seen) < 100, f"the map bar never moved: {seen}"
    assert page.locator("#tasks tr.attempt").count() >= 3 and "on" in page.locator("#tasks tr.attempt").first.inner_text()
    assert "submitted" in page.locator("#logs").inner_text()
    page.screenshot(path=os.path.join(IMG, "status-job.png"), full_page=True)
    assert page.problems == []


def test_failed_job_shows_traceback_and_store_browses(service, page):
    token = service.token("quin")
    store = service.cluster.storage.client()
    write_words(store, "/user/quin/bad.txt", 200, seed=2, vocab=20)
    with mapred.connect(service.master, user="quin") as cluster:
        handle = cluster.submit(failing(), [service.store_uri + "/user/quin/bad.txt"],
                                service.store_uri + "/user/quin/bad-out", overwrite=True)
    page.goto(f"{service.url}/jobs/{handle.job_id}#token={token}")
    page.wait_for_function("document.querySelector('#job-state').textContent == 'FAILED'", timeout=120000)
    page.locator("#traceback").wait_for()
    tb = page.locator("#traceback").inner_text()
    assert "Traceback" in tb and "ValueError" in tb and "refusing the line" in tb
    assert "refusing the line" in page.locator("#error-message").inner_text()
    page.screenshot(path=os.path.join(IMG, "status-failed-job.png"), full_page=True)
    page.goto(f"{service.url}/store/user/quin")
    page.locator('#listing tr[data-name="bad.txt"]').wait_for()
    assert "KiB" in page.locator('#listing tr[data-name="bad.txt"]').inner_text()
    page.locator("#crumbs a", has_text="user").click()
    page.locator('#listing tr[data-name="quin"]').wait_for()
    page.screenshot(path=os.path.join(IMG, "status-store.png"), full_page=True)
    assert page.problems == []


def test_page_without_token_asks_for_one(service, page):
    page.goto(service.url + "/")
    page.locator("#login").wait_for()
    assert "token" in page.locator("#status").inner_text()
    page.fill("#token-input", service.admin_token)
    page.click("#login button")
    page.locator("#workers tbody tr").first.wait_for()
    assert page.locator("#login").is_hidden()
    assert page.problems == []
