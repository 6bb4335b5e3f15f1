"""`sqs-barrier console` in a real browser, and the Prometheus metrics.

Headless Chromium (Debian's `chromium` and `chromium-driver`, which
scripts/test installs when missing) driven by Selenium opens the console
that watches a barrier on the embedded endpoint while its members wait:
the queue table and its columns render, an arrival appears without a
reload, the missing member is named, a request without the page's token is
refused, and the abort button breaks the barrier for its waiters. The same
run writes the screenshots in docs/. The metrics of the coordinator
(`--metrics-bind`) and of the console are scraped and parsed with the
Prometheus client's text parser.

The queue management is tested the same way, on the embedded endpoint and
on moto: each action is done through the page (clicks and typing) and its
result read back with boto3: a FIFO queue created with a dead-letter queue
and a tag, its attributes edited, tags added and removed, a message sent,
polled and deleted, a purge and a delete behind the typed name, a barrier's
check-in queue refused without the acknowledgement, a barrier's dead-letter
queue purged once the acknowledgement is ticked (and that queue only), a
queue's counts in the table right after an action on it, the table sorted
and paged over 25 queues, a dead-letter redrive started and cancelled (moto
has none, and the page says so); a read-only console offers no action. These
take the screenshots console-queues.png, console-queue.png and
console-messages.png (on the embedded endpoint).

The gate is attacked by real pages, on both endpoints, while a member waits
at a barrier and a queue holds a message: a page of another origin (the
console's host on another port, and another site) tries to abort the
barrier and purge the queue, with a valid token it was given, by a JSON
fetch (its CORS preflight fails, so it is never sent), a no-cors POST and
form posts (each refused as cross-origin, and logged); Chromium told to
resolve evil.example to loopback opens the console under that name, and the
page and its own fetches get 421, no token and no state; after 600 no-cors
GETs of the console's page and /api/token from the other origin, the page
opened before aborts the barrier and purges the queue with the token it was
served. A missing browser fails the suite; nothing is skipped.
"""

import contextlib
import http.server
import json
import os
import re
import selectors
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import base64

import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import _server_binary, cli_env, make_client

ROOT = Path(__file__).resolve().parents[2]
# Screenshots go under target/ so that a test run leaves the tree as it was;
# SQS_BARRIER_SCREENSHOTS=docs writes the documentation's images instead.
SHOTS = (
    ROOT / "docs"
    if os.environ.get("SQS_BARRIER_SCREENSHOTS") == "docs"
    else ROOT / "target" / "screenshots"
)
COLUMNS = [
    "Select",
    "Name",
    "Type",
    "Created",
    "Messages available",
    "Messages in flight",
    "Messages delayed",
    "Encryption",
    "Content-based deduplication",
    "Barrier",
]


def _find(program: str, *candidates: str) -> str:
    for name in (program, *candidates):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"{program} not found: scripts/test installs Debian's chromium and chromium-driver")


def _line_with(stream, needle: str, timeout_s: float = 30) -> str:
    """Reads lines from `stream` until one contains `needle`."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        if not selector.select(max(0.0, deadline - time.monotonic())):
            break
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return line.strip()
    pytest.fail(f"no line with {needle!r} within {timeout_s} s; got {seen!r}")


def _url_in(line: str) -> str:
    return next(w for w in line.split() if w.startswith("http://")).rstrip(";")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _post(url: str, body: dict, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def _metrics(url: str) -> dict:
    """Scrapes `url` and parses it: {(sample name, labels): value}."""
    text = _get(url)
    samples = {}
    families = list(text_string_to_metric_families(text))
    assert families, text
    for family in families:
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _eventually(probe, timeout_s: float = 15.0):
    """Returns probe()'s first truthy answer, failing after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"not so within {timeout_s} s")
        time.sleep(0.2)


def _value(samples: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{key} not in {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


@pytest.fixture
def stack(endpoint_url, tmp_path):
    """A barrier of three members with a coordinator (metrics on) and a
    console watching it; yields what the test needs and stops everything."""
    exe = str(_server_binary())
    env = cli_env(endpoint_url)
    name = f"console-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [exe, "setup", "--barrier", name, "--parties", "3", "--members", "ann,bob,cy"],
        env=env, check=True, capture_output=True, timeout=30,
    )
    procs = []

    def spawn(*args, **kw):
        p = subprocess.Popen([exe, *args], env=env, stdin=subprocess.DEVNULL, text=True, **kw)
        procs.append(p)
        return p

    coordinator = spawn(
        "coordinator", "--barrier", name, "--heartbeat", "2",
        "--metrics-bind", "127.0.0.1:0", stderr=subprocess.PIPE,
    )
    metrics_url = _url_in(_line_with(coordinator.stderr, "metrics at"))
    console = spawn(
        "console", "--bind", "127.0.0.1:0", "--prefix", name, stdout=subprocess.PIPE,
    )
    console_url = _url_in(_line_with(console.stdout, "sqs-barrier console:"))

    def wait(member: str, phase: int):
        return spawn(
            "wait", "--barrier", name, "--id", member, "--phase", str(phase), "--timeout", "120",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    try:
        yield {
            "name": name, "console": console_url, "metrics": metrics_url, "wait": wait,
            "env": env,
        }
    finally:
        _end(procs, exe, name, env)


def _end(procs, exe, barrier: str, env) -> None:
    """Stops the processes (all signalled first, then each awaited) and tears the barrier down."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    subprocess.run([exe, "teardown", "--barrier", barrier], env=env, capture_output=True, timeout=30)


def _chromium(*extra: str):
    """A headless Chromium driven by Selenium, started with `extra` flags
    besides the suite's."""
    options = Options()
    options.binary_location = _find("chromium", "chromium-browser")
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
        "--window-size=1280,800", "--hide-scrollbars", *extra,
    ):
        options.add_argument(arg)
    return webdriver.Chrome(
        service=Service(executable_path=_find("chromedriver", "chromium-driver")), options=options
    )


@pytest.fixture
def browser():
    driver = _chromium()
    try:
        yield driver
    finally:
        driver.quit()


def _until(driver, what, timeout_s=20):
    return WebDriverWait(
        driver, timeout_s, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    ).until(lambda d: what(d))


def _card(driver, name):
    return driver.find_element(By.CSS_SELECTOR, f'.card[data-barrier="{name}"]')


# The page redraws its tables every second: read them in one script call.
def _queue_rows(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#queues tbody tr[data-queue]')]"
        ".map(tr => [tr.dataset.queue, ...[...tr.cells].map(td => (td.querySelector('a') || td).textContent)])"
    )


def _chips(driver, name, kind):
    return driver.execute_script(
        "const card = document.querySelector(`.card[data-barrier='${arguments[0]}']`);"
        "return card ? [...card.querySelectorAll(`.chips.${arguments[1]} .chip`)]"
        ".map(c => c.textContent.split(' ')[0]) : [];",
        name, kind,
    )


def _text(driver, name, selector):
    return driver.execute_script(
        "const card = document.querySelector(`.card[data-barrier='${arguments[0]}']`);"
        "const el = card && card.querySelector(arguments[1]); return el ? el.textContent : '';",
        name, selector,
    )


def _select(driver, selector):
    """Selects the text of the first element matching `selector`; returns
    the text selected."""
    return driver.execute_script(
        "const el = document.querySelector(arguments[0]);"
        "const r = document.createRange(); r.selectNodeContents(el);"
        "const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);"
        "return s.toString();",
        selector,
    )


def _selection(driver):
    return driver.execute_script("return window.getSelection().toString()")


def _labels_fit(driver, name):
    """Whether every label of the barrier's chart is inside the chart."""
    return driver.execute_script(
        "const svg = document.querySelector(`.card[data-barrier='${arguments[0]}'] svg.timeline`);"
        "if (!svg) return false;"
        "const w = svg.viewBox.baseVal.width;"
        "return [...svg.querySelectorAll('text')].every(t => {"
        "  const b = t.getBBox(); return b.x >= 0 && b.x + b.width <= w + 0.5; });",
        name,
    )


def test_console_in_a_browser(stack, browser):
    name, url = stack["name"], stack["console"]

    # Phase 0 completes before the page opens: a release to chart and count.
    # (Arrivals a little more than one read apart, for the chart.)
    members = []
    for m in ("ann", "bob", "cy"):
        members.append(stack["wait"](m, 0))
        time.sleep(1.2)
    for m in members:
        assert m.wait(timeout=60) == 0, m.stderr.read()
    time.sleep(1.2)

    # Phase 1: ann arrives; bob and cy are missing.
    ann = stack["wait"]("ann", 1)
    browser.get(url)
    browser.execute_script("window.__sameDocument = true")

    # The queue table with the SQS console's columns and the barrier's queues.
    heads = browser.execute_script(
        "return [...document.querySelectorAll('#queues thead th')]"
        ".map(th => th.textContent.replace(/[▲▼]/g, '').trim())")
    assert heads == COLUMNS
    rows = _until(browser, lambda d: (r := _queue_rows(d)) and len(r) == 6 and r)
    assert sorted(r[0] for r in rows) == sorted(
        [
            f"{name}-checkin",
            f"{name}-dlq",
            f"{name}-release-0",
            f"{name}-release-1",
            f"{name}-state",
            f"{name}-lease.fifo",
        ]
    )
    # Created in UTC, as `sqs-barrier queues` prints it.
    listed = subprocess.run(
        [str(_server_binary()), "queues", "--prefix", name, "--json"],
        env=stack["env"], check=True, capture_output=True, text=True, timeout=30,
    )
    created = {q["name"]: q["created"] for q in json.loads(listed.stdout)}
    for queue, *cells in rows:
        assert cells[3] == time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(created[queue])), cells
    table = subprocess.run(
        [str(_server_binary()), "queues", "--prefix", name],
        env=stack["env"], check=True, capture_output=True, text=True, timeout=30,
    ).stdout
    for queue, *cells in rows:
        assert cells[3] in table, (cells, table)
    # Counts align with their headers.
    aligns = browser.execute_script(
        "const t = document.querySelector('#queues');"
        "return [...t.tHead.rows[0].cells].map((th, i) => [getComputedStyle(th).textAlign,"
        " getComputedStyle(t.tBodies[0].rows[0].cells[i]).textAlign]);"
    )
    assert all(h == d for h, d in aligns), aligns
    assert aligns[4] == ["right", "right"] and aligns[1] == ["left", "left"], aligns
    roles = {"checkin": "check-in", "dlq": "dead-letter", "release-0": "release",
             "release-1": "release", "state": "state", "lease.fifo": "lease"}
    for queue, *cells in rows:
        assert len(cells) == 10 and cells[1] == queue
        # The lease queue is FIFO, without content-based deduplication.
        fifo = queue.endswith(".fifo")
        kind, dedup = ("FIFO", "Disabled") if fifo else ("Standard", "-")
        assert cells[2] == kind and cells[7] == "SSE-SQS" and cells[8] == dedup, cells
        assert cells[4].isdigit() and cells[5].isdigit(), cells
        # Each row of the barrier's queues names the barrier and the role.
        assert cells[9] == f"{name} ({roles[queue[len(name) + 1:]]})", cells

    # The filter by name prefix.
    box = browser.find_element(By.ID, "filter")
    box.send_keys(f"{name}-release")
    _until(browser, lambda d: len(_queue_rows(d)) == 2)
    box.clear()
    box.send_keys(" ")  # clear() fires no input event
    _until(browser, lambda d: len(_queue_rows(d)) == 6)

    # ann arrived; bob and cy are named as missing, with the coordinator alive.
    _until(browser, lambda d: _chips(d, name, "arrived") == ["ann"])
    assert _chips(browser, name, "missing") == ["bob", "cy"]
    assert "coordinator alive" in _text(browser, name, "h3")

    # A selection survives the refreshes (once a second): a member's name,
    # and a queue's in the table.
    assert _select(browser, f'.card[data-barrier="{name}"] .members bdi:nth-of-type(2)') == "bob"
    time.sleep(2.5)
    assert _selection(browser) == "bob"
    assert _select(browser, f'#queues tr[data-queue="{name}-checkin"] td.qname a') == f"{name}-checkin"
    time.sleep(2.5)
    assert _selection(browser) == f"{name}-checkin"
    browser.execute_script("window.getSelection().removeAllRanges()")

    # bob's arrival appears without a reload; cy is the one missing.
    bob = stack["wait"]("bob", 1)
    _until(browser, lambda d: _chips(d, name, "arrived") == ["ann", "bob"])
    assert _chips(browser, name, "missing") == ["cy"]
    assert browser.execute_script("return window.__sameDocument === true")
    # The chart shows phase 0 released and phase 1's arrivals.
    _until(browser, lambda d: d.execute_script(
        "return document.querySelectorAll(`.card[data-barrier='${arguments[0]}'] svg circle.arrival`).length",
        name) >= 2)
    browser.execute_script("document.activeElement.blur()")
    time.sleep(0.5)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "console.png"))
    assert _labels_fit(browser, name)
    browser.set_window_size(390, 844)
    time.sleep(1.2)  # one poll: the chart is drawn for the new width
    browser.save_screenshot(str(SHOTS / "console-phone.png"))
    assert _labels_fit(browser, name)
    # At phone width the table scrolls sideways, and says so.
    scroll = browser.execute_script(
        "const w = document.querySelector('#queues-wrap');"
        "return [w.scrollWidth, w.clientWidth, getComputedStyle(w).overflowX,"
        " document.querySelector('#queues-frame').className];"
    )
    assert scroll[0] > scroll[1] and scroll[2] == "auto", scroll
    assert "more-right" in scroll[3], scroll
    assert browser.find_element(By.ID, "scroll-hint").is_displayed()
    browser.execute_script("const w = document.querySelector('#queues-wrap'); w.scrollLeft = w.scrollWidth;")
    _until(browser, lambda d: "more-left" in d.find_element(By.ID, "queues-frame").get_attribute("class")
           and "more-right" not in d.find_element(By.ID, "queues-frame").get_attribute("class"))
    # The names stay in view while the other columns scroll.
    assert browser.execute_script(
        "return getComputedStyle(document.querySelector('#queues tbody td')).position") == "sticky"
    browser.set_window_size(1280, 800)
    time.sleep(1.2)
    assert not browser.find_element(By.ID, "scroll-hint").is_displayed()

    # State-changing requests need the page's token, from this origin.
    token = browser.execute_script("return token")
    abort_url = url + "api/abort"
    body = {"barrier": name, "reason": "forged"}
    status, answer = _post(abort_url, body, {"Content-Type": "application/json"})
    assert status == 403 and not answer["ok"], answer
    status, _ = _post(abort_url, body, {"Content-Type": "application/json", "X-Console-Token": "0" * 32})
    assert status == 403
    status, _ = _post(abort_url, body, {
        "Content-Type": "application/json", "X-Console-Token": token, "Origin": "http://evil.example",
    })
    assert status == 403
    status, _ = _post(abort_url, body, {"Content-Type": "text/plain", "X-Console-Token": token})
    assert status == 415
    status, _ = _post(abort_url, {"barrier": "not-watched", "reason": "x"},
                      {"Content-Type": "application/json", "X-Console-Token": token})
    assert status == 404
    assert ann.poll() is None and bob.poll() is None, "a refused request must not abort"

    # Abort from the page, behind a confirmation.
    card = _card(browser, name)
    card.find_element(By.CSS_SELECTOR, ".abort-form input[name=reason]").send_keys("bad input file")
    card.find_element(By.CSS_SELECTOR, ".abort-form button[type=submit]").click()
    yes = card.find_element(By.CSS_SELECTOR, ".confirm .yes")
    assert yes.is_displayed()
    yes.click()
    _until(browser, lambda d: "abort sent" in _text(d, name, ".abort-result"))
    for p in (ann, bob):
        assert p.wait(timeout=60) == 4
        assert "bad input file" in p.stderr.read()
    _until(browser, lambda d: "BROKEN" in _text(d, name, "h3"))
    assert "bad input file" in _text(browser, name, ".broken")
    # "phase 1 (broken)" fits in the chart.
    _until(browser, lambda d: "(broken)" in _text(d, name, "svg.timeline"))
    assert _labels_fit(browser, name)

    # The coordinator's metrics, parsed as Prometheus text (once it has
    # handled the abort and let go of the check-ins).
    b = {"barrier": name}

    def settled():
        m = _metrics(stack["metrics"])
        done = m.get(("sqs_barrier_breaks_total", (("barrier", name),))) == 1 and m.get(
            ("sqs_barrier_held_checkins", (("barrier", name),))) == 0
        return m if done else None

    m = _eventually(settled)
    assert _value(m, "sqs_barrier_arrivals_total", **b) == 5
    assert _value(m, "sqs_barrier_releases_total", **b) == 1
    assert _value(m, "sqs_barrier_breaks_total", **b) == 1
    assert _value(m, "sqs_barrier_release_latency_seconds_count", **b) == 1
    assert _value(m, "sqs_barrier_release_latency_seconds_bucket", le="+Inf", **b) == 1
    assert _value(m, "sqs_barrier_coordinator_takeovers_total", **b) == 1
    assert _value(m, "sqs_barrier_coordinator_active", **b) == 1
    assert _value(m, "sqs_barrier_held_checkins", **b) == 0
    assert _value(m, "sqs_barrier_sqs_requests_total", operation="ReceiveMessage") > 0
    assert _value(m, "sqs_barrier_sqs_errors_total", operation="ReceiveMessage") >= 0

    # The console's, for the barrier it watches (once it has read the break).
    c = _eventually(lambda: (c := _metrics(url + "metrics")).get(
        ("sqs_barrier_broken", (("barrier", name),))) == 1 and c)
    assert _value(c, "sqs_barrier_parties", **b) == 3
    assert _value(c, "sqs_barrier_broken", **b) == 1
    assert _value(c, "sqs_barrier_coordinator_alive", **b) == 1
    assert _value(c, "sqs_barrier_queue_messages_available", queue=f"{name}-checkin") >= 0
    assert _value(c, "sqs_barrier_sqs_requests_total", operation="ListQueues") > 0


def test_console_refuses_other_hosts_and_remote_binds(endpoint_url):
    exe = str(_server_binary())
    env = cli_env(endpoint_url)
    refused = subprocess.run(
        [exe, "console", "--bind", "0.0.0.0:0"], env=env, capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 2
    assert "--allow-remote" in refused.stderr
    # --allow-remote alone is not enough: the names browsers use are needed.
    refused = subprocess.run(
        [exe, "console", "--bind", "0.0.0.0:0", "--allow-remote"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert refused.returncode == 2
    assert "--allowed-host" in refused.stderr
    console = subprocess.Popen(
        [exe, "console", "--bind", "127.0.0.1:0", "--prefix", "none-"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )
    try:
        url = _url_in(_line_with(console.stdout, "sqs-barrier console:"))
        page = _get(url)
        assert 'name="console-token"' in page
        req = urllib.request.Request(url + "api/state", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 421
        # HEAD answers as GET without a body; the icon is there.
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
            assert r.status == 200 and r.read() == b""
            assert r.headers["Content-Type"].startswith("text/html")
        with urllib.request.urlopen(url + "favicon.ico", timeout=10) as r:
            assert r.headers["Content-Type"] == "image/svg+xml"
        # Nothing in the page or the state is a credential.
        state = _get(url + "api/state")
        assert "local" not in json.loads(state).get("endpoint", "")
    finally:
        console.terminate()
        assert console.wait(timeout=10) == 0


def test_names_are_isolated_and_a_read_only_console_offers_no_action(endpoint_url, browser):
    """A member name with a right-to-left override (which `setup` refuses
    now, but a barrier set up earlier may have) does not reorder the text
    after it; 30 members with long names fit (the list and the chart's
    labels); `--read-only` shows no abort."""
    exe = str(_server_binary())
    env = cli_env(endpoint_url)
    name = f"bidi-{uuid.uuid4().hex[:8]}"
    refused = subprocess.run(
        [exe, "setup", "--barrier", name, "--parties", "2", "--members", "ann,x\u202eyz"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert refused.returncode != 0
    assert "character 2 is U+202E" in refused.stderr, refused.stderr
    members = ["alpha-etl-worker", "xyz", "bob"] + [f"worker-{i:02}" for i in range(27)]
    subprocess.run(
        [exe, "setup", "--barrier", name, "--parties", str(len(members)),
         "--members", ",".join(members)],
        env=env, check=True, capture_output=True, timeout=30,
    )
    # Rewrite the stored configuration as an earlier version could have.
    sqs = make_client(endpoint_url)
    url = sqs.get_queue_url(QueueName=f"{name}-checkin")["QueueUrl"]
    tags = sqs.list_queue_tags(QueueUrl=url)["Tags"]
    prefix = "sqs-barrier.config"
    count = int(tags[f"{prefix}.n"])
    doc = json.loads(base64.b64decode("".join(tags[f"{prefix}.{i}"] for i in range(count))))
    members[1] = "x\u202eyz"
    doc["members"] = members
    encoded = base64.b64encode(json.dumps(doc).encode()).decode()
    chunks = [encoded[i:i + 256] for i in range(0, len(encoded), 256)]
    new_tags = {f"{prefix}.{i}": c for i, c in enumerate(chunks)}
    new_tags[f"{prefix}.n"] = str(len(chunks))
    sqs.tag_queue(QueueUrl=url, Tags=new_tags)
    # The configuration is read from the tags while no state is published.
    sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{name}-state")["QueueUrl"])

    procs = []

    def spawn(*args, **kw):
        p = subprocess.Popen([exe, *args], env=env, stdin=subprocess.DEVNULL, text=True, **kw)
        procs.append(p)
        return p

    try:
        console = spawn(
            "console", "--bind", "127.0.0.1:0", "--prefix", name, "--read-only",
            stdout=subprocess.PIPE,
        )
        console_url = _url_in(_line_with(console.stdout, "sqs-barrier console:"))
        spawn("coordinator", "--barrier", name, "--heartbeat", "2", stderr=subprocess.DEVNULL)
        spawn("wait", "--barrier", name, "--id", "alpha-etl-worker", "--phase", "0",
              "--timeout", "120", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        browser.get(console_url)
        _until(browser, lambda d: "x\u202eyz" in _text(d, name, ".members"))
        # Every name is in a <bdi>, and what follows the reversed name is
        # drawn after it, in order.
        names = browser.execute_script(
            "const m = document.querySelector(`.card[data-barrier='${arguments[0]}'] .members`);"
            "return [...m.querySelectorAll('bdi')].slice(0, 3).map(b => {"
            "  const r = b.getBoundingClientRect();"
            "  return [b.textContent, r.left, r.right, getComputedStyle(b).unicodeBidi]; });",
            name,
        )
        assert [n[0] for n in names] == members[:3], names
        assert all(n[3] == "isolate" for n in names), names
        assert names[0][2] <= names[1][1] and names[1][2] <= names[2][1], names
        assert browser.execute_script(
            "const h = document.querySelector(`.card[data-barrier='${arguments[0]}'] h3 bdi`);"
            "return h && h.textContent === arguments[0];", name)
        # 30 members take a line or two, the rest behind "and 18 more".
        height = browser.execute_script(
            "return document.querySelector(`.card[data-barrier='${arguments[0]}'] .kv.wide`)"
            ".getBoundingClientRect().height", name)
        assert height < 60, height
        assert "and 18 more" in _text(browser, name, ".members summary")
        # The chart's labels fit, the long names whole at this width.
        _until(browser, lambda d: _labels_fit(d, name))
        labels = browser.execute_script(
            "return [...document.querySelectorAll(`.card[data-barrier='${arguments[0]}'] text.member-label`)]"
            ".map(t => t.firstChild.nodeValue)", name)
        assert labels[0] == "alpha-etl-worker" and labels[1] == "x\u202eyz", labels
        assert len(labels) == 24, labels
        browser.set_window_size(390, 844)
        time.sleep(1.5)
        assert _labels_fit(browser, name)
        browser.set_window_size(1280, 800)
        # Read-only: no abort on the page, and the header says so.
        card = _card(browser, name)
        assert not card.find_element(By.CSS_SELECTOR, ".abort").is_displayed()
        assert browser.find_element(By.ID, "read-only").is_displayed()
        token = browser.execute_script("return token")
        status, answer = _post(
            console_url + "api/abort", {"barrier": name, "reason": "x"},
            {"Content-Type": "application/json", "X-Console-Token": token},
        )
        assert status == 403 and answer["code"] == "read-only", answer
        assert "read-only" in answer["error"]
    finally:
        _end(procs, exe, name, env)


# --------------------------------------------------------------------------
# Managing queues through the page, checked with boto3.


@contextlib.contextmanager
def _console(sqs_url, prefix, *args):
    """A console of the queues named `prefix...` on `sqs_url`, with `args`;
    yields its URL and stops it."""
    console = subprocess.Popen(
        [str(_server_binary()), "console", "--bind", "127.0.0.1:0", "--prefix", prefix, *args],
        env=cli_env(sqs_url), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )
    try:
        yield _url_in(_line_with(console.stdout, "sqs-barrier console:"))
    finally:
        console.terminate()
        console.wait(timeout=10)


@pytest.fixture
def queue_console(sqs_url, request):
    """A console watching queues named `qc-XXXXXXXX...` on one endpoint (the
    embedded endpoint, then moto); yields what the test needs."""
    exe = str(_server_binary())
    env = cli_env(sqs_url)
    prefix = f"qc-{uuid.uuid4().hex[:8]}"
    barriers = []
    try:
        with _console(sqs_url, prefix) as url:
            yield {
                "url": url, "prefix": prefix, "env": env, "sqs": make_client(sqs_url),
                "moto": request.node.callspec.params["sqs_url"] == "moto", "barriers": barriers,
            }
    finally:
        for b in barriers:
            subprocess.run([exe, "teardown", "--barrier", b], env=env, capture_output=True, timeout=30)


def _js_text(driver, selector):
    return driver.execute_script(
        "const el = document.querySelector(arguments[0]); return el ? el.textContent : '';", selector)


def _wait_text(driver, selector, needle, timeout_s=20):
    return _until(driver, lambda d: needle in (t := _js_text(d, selector)) and t, timeout_s)


def _type(driver, selector, text):
    el = driver.find_element(By.CSS_SELECTOR, selector)
    el.clear()
    el.send_keys(text)
    return el


def _click(driver, selector):
    el = driver.find_element(By.CSS_SELECTOR, selector)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()
    return el


def _attrs(sqs, name):
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _exists(sqs, name):
    try:
        sqs.get_queue_url(QueueName=name)
        return True
    except sqs.exceptions.QueueDoesNotExist:
        return False


def _search(driver, text):
    box = _type(driver, "#filter", text)
    box.send_keys(" ")  # trimmed; makes sure an input event fires
    _until(driver, lambda d: all(r[0].startswith(text) for r in _queue_rows(d)) and _queue_rows(d))


def _remove(driver, action, name):
    """Purges or deletes `name` (not a barrier's queue) through the dialog,
    typing its name."""
    _click(driver, "#qp-purge" if action == "purge" else "#qp-delete")
    _until(driver, lambda d: d.find_element(By.ID, "confirm-dialog").is_displayed())
    go = driver.find_element(By.ID, "rm-go")
    _type(driver, "#rm-confirm", name[:-1])
    assert not go.is_enabled()  # not the name yet
    driver.find_element(By.ID, "rm-confirm").send_keys(name[-1])
    assert go.is_enabled()
    go.click()


def _count(sqs, name, attribute="ApproximateNumberOfMessages"):
    return int(_attrs(sqs, name)[attribute])


def _row(driver, name):
    """The table's row of queue `name`: [name, "", name, type, created,
    available, in flight, delayed, encryption, deduplication, barrier]."""
    return next((r for r in _queue_rows(driver) if r[0] == name), None)


def test_queue_actions_in_a_browser(queue_console, browser):
    c = queue_console
    sqs, p, url = c["sqs"], c["prefix"], c["url"]
    dead, work = f"{p}-dead.fifo", f"{p}-work.fifo"
    sqs.create_queue(QueueName=dead, Attributes={"FifoQueue": "true"})
    browser.get(url)
    _until(browser, lambda d: [r[0] for r in _queue_rows(d)] == [dead])

    # Create a FIFO queue with a dead-letter queue and a tag.
    _click(browser, "#q-create")
    _until(browser, lambda d: d.find_element(By.ID, "cr-name").is_displayed())
    _type(browser, "#cr-name", f"{p}-work")
    browser.find_element(By.ID, "cr-fifo").click()
    _type(browser, "#cr-VisibilityTimeout", "45")
    browser.find_element(By.ID, "cr-cbd").click()
    _type(browser, "#cr-dlq", dead)
    _type(browser, "#cr-mrc", "3")
    _type(browser, "#cr-tags", "team=data")
    _click(browser, "#create-form button[type=submit]")
    _until(browser, lambda d: d.execute_script("return location.hash") == f"#/queue/{work}")
    a = _attrs(sqs, work)
    assert a["FifoQueue"] == "true" and a["VisibilityTimeout"] == "45", a
    assert a["ContentBasedDeduplication"] == "true", a
    policy = json.loads(a["RedrivePolicy"])
    assert policy["deadLetterTargetArn"].endswith(dead) and int(policy["maxReceiveCount"]) == 3, policy
    wurl = sqs.get_queue_url(QueueName=work)["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=wurl)["Tags"] == {"team": "data"}

    # Its page: the attributes, the tag, the Lambda note.
    _wait_text(browser, "#qp-details", "VisibilityTimeout")
    assert _js_text(browser, '#qp-details [data-attr="VisibilityTimeout"]') == "VisibilityTimeout45"
    assert "Lambda API" in _js_text(browser, "#qp-lambda")
    assert "team" in _js_text(browser, "#qp-tags")

    # Edit the visibility timeout and the retention period.
    _click(browser, "#qp-edit")
    _type(browser, "#ed-VisibilityTimeout", "60")
    _type(browser, "#ed-MessageRetentionPeriod", "3600")
    _click(browser, "#edit-form button[type=submit]")
    _wait_text(browser, "#edit-result", "Saved")
    a = _attrs(sqs, work)
    assert a["VisibilityTimeout"] == "60" and a["MessageRetentionPeriod"] == "3600", a
    _wait_text(browser, '#qp-details [data-attr="VisibilityTimeout"]', "60")

    # Add a tag, remove the first.
    _type(browser, "#tag-key", "env")
    _type(browser, "#tag-value", "test")
    _click(browser, "#tag-form button[type=submit]")
    _wait_text(browser, "#qp-tags", "env")
    assert sqs.list_queue_tags(QueueUrl=wurl)["Tags"] == {"team": "data", "env": "test"}
    _click(browser, '#qp-tags button[data-tag="team"]')
    _until(browser, lambda d: "team" not in _js_text(d, "#qp-tags"))
    assert sqs.list_queue_tags(QueueUrl=wurl)["Tags"] == {"env": "test"}
    SHOTS.mkdir(parents=True, exist_ok=True)
    if not c["moto"]:  # the images of docs/CONSOLE.md: the embedded endpoint's
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(SHOTS / "console-queue.png"))

    # Send a message with an attribute; poll it; delete it.
    _click(browser, "#qp-send")
    _type(browser, "#send-body", "hello from the page")
    _type(browser, "#send-attrs .at-name", "colour")
    _type(browser, "#send-attrs .at-value", "blue")
    _type(browser, "#send-group", "g1")
    _click(browser, "#send-form button[type=submit]")
    _wait_text(browser, "#send-result", "Sent")
    _until(browser, lambda d: _attrs(sqs, work)["ApproximateNumberOfMessages"] == "1", 10)
    _type(browser, "#poll-secs", "2")
    _click(browser, "#poll-form button[type=submit]")
    _wait_text(browser, "#poll-result", "in flight")
    assert "60 s" in _js_text(browser, "#poll-result")  # the visibility timeout
    row = "#poll-messages tbody tr"
    assert _js_text(browser, f"{row} td.body") == "hello from the page"
    assert _js_text(browser, f"{row} td.mattrs") == "colour = blue (String)"
    assert _js_text(browser, f"{row} td.receive-count") == "1"
    assert _js_text(browser, f"{row} td:nth-child(5)").endswith(" UTC")
    assert _attrs(sqs, work)["ApproximateNumberOfMessagesNotVisible"] == "1"
    _click(browser, f"{row} input.pick-message")
    if not c["moto"]:
        browser.execute_script("document.activeElement.blur();"
                               "document.querySelector('#qp-messages').scrollIntoView()")
        browser.save_screenshot(str(SHOTS / "console-messages.png"))
    _click(browser, "#delete-messages")
    _wait_text(browser, "#poll-result", "1 message(s) deleted")
    _until(browser, lambda d: (x := _attrs(sqs, work))["ApproximateNumberOfMessages"] == "0"
           and x["ApproximateNumberOfMessagesNotVisible"] == "0", 10)

    # Purge, typing the queue's name.
    sqs.send_message(QueueUrl=wurl, MessageBody="to purge", MessageGroupId="g")
    _remove(browser, "purge", work)
    _wait_text(browser, "#notice", "Purged")
    _until(browser, lambda d: _attrs(sqs, work)["ApproximateNumberOfMessages"] == "0", 65)

    # A barrier's check-in queue: refused without the acknowledgement.
    barrier = f"{p}-b"
    subprocess.run([str(_server_binary()), "setup", "--barrier", barrier, "--parties", "2",
                    "--members", "a,b"], env=c["env"], check=True, capture_output=True, timeout=30)
    c["barriers"].append(barrier)
    checkin = f"{barrier}-checkin"
    # In the table, its rows name the barrier and the role.
    browser.get(url)
    _until(browser, lambda d: len(_queue_rows(d)) == 8)
    rows = {r[0]: r[-1] for r in _queue_rows(browser)}
    assert rows[checkin] == f"{barrier} (check-in)" and rows[work] == "", rows
    _click(browser, f'#queues tr[data-queue="{checkin}"] input[type=checkbox]')
    assert browser.find_element(By.ID, "q-delete").is_enabled()
    if not c["moto"]:
        browser.execute_script("document.activeElement.blur();"
                               "document.querySelector('.filter').previousElementSibling.scrollIntoView()")
        browser.save_screenshot(str(SHOTS / "console-queues.png"))
    # The table's Delete opens the same dialog, which names the barrier; so
    # does the row's quick-actions menu.
    _click(browser, "#q-delete")
    _wait_text(browser, "#rm-effect", "check-in queue of barrier")
    _click(browser, "#rm-cancel")
    _click(browser, f'#queues tr[data-queue="{checkin}"] details.qa summary')
    _click(browser, f'#queues tr[data-queue="{checkin}"] button[data-qa="purge"]')
    _wait_text(browser, "#rm-effect", "purging it loses the arrivals")
    _click(browser, "#rm-cancel")
    browser.get(url + f"#/queue/{checkin}")
    _wait_text(browser, "#qp-barrier", "check-in queue")
    assert "sqs-barrier teardown" in _js_text(browser, "#qp-barrier")
    assert "coordinated by" in _js_text(browser, "#qp-barrier").lower()
    # Its name typed, the acknowledgement not ticked: Confirm stays disabled.
    _click(browser, "#qp-delete")
    _wait_text(browser, "#rm-effect", "teardown")
    assert browser.find_element(By.ID, "rm-ack").is_displayed()
    _type(browser, "#rm-confirm", checkin)
    go = browser.find_element(By.ID, "rm-go")
    assert not go.is_enabled()
    # A page that let it through (the button enabled by a script) is
    # refused by the API, and says why.
    browser.execute_script("document.querySelector('#rm-go').disabled = false")
    go.click()
    _wait_text(browser, "#rm-error", "barrier_ack")
    assert not go.is_enabled()
    assert _exists(sqs, checkin)
    _click(browser, "#rm-cancel")

    # Delete the work queue, typing its name: back to the table.
    browser.get(url + f"#/queue/{work}")
    _wait_text(browser, "#qp-details", "VisibilityTimeout")
    _remove(browser, "delete", work)
    _until(browser, lambda d: d.execute_script("return location.hash") == "#/")
    _until(browser, lambda d: not _exists(sqs, work), 10)

    # Redrive: on the embedded endpoint started and cancelled; moto has none,
    # and says so in plain words.
    src, dlq = f"{p}-r-src", f"{p}-r-dlq"
    dlq_url = sqs.create_queue(QueueName=dlq)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=src, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})})
    for i in range(4):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=f"dead {i}")
    browser.get(url + f"#/queue/{dlq}")
    _wait_text(browser, "#redrive-sources", src)
    _type(browser, "#redrive-dest", src)
    _type(browser, "#redrive-rate", "1")
    _click(browser, "#redrive-form button[type=submit]")
    if c["moto"]:
        _wait_text(browser, "#redrive-result", "does not implement dead-letter redrive")
    else:
        _wait_text(browser, "#redrive-result", "Redrive started")
        _wait_text(browser, "#redrive-tasks", "RUNNING")
        _click(browser, "#redrive-tasks button.cancel-task")
        _wait_text(browser, "#redrive-result", "Redrive cancelled")
        tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        assert tasks[0]["Status"] in ("CANCELLING", "CANCELLED"), tasks
        _until(browser, lambda d: "CANCELLED" in _js_text(d, "#redrive-tasks"))


def test_purging_a_barriers_dead_letter_queue_needs_the_acknowledgement(queue_console, browser):
    """A barrier's own queue, set up with the CLI: with its name typed but the
    acknowledgement not ticked, Confirm stays disabled (and the API refuses
    such a request); ticked, the purge empties that queue and no other of
    the barrier's."""
    c = queue_console
    sqs, p, url = c["sqs"], c["prefix"], c["url"]
    barrier = f"{p}-b"
    subprocess.run([str(_server_binary()), "setup", "--barrier", barrier, "--parties", "2",
                    "--members", "a,b"], env=c["env"], check=True, capture_output=True, timeout=30)
    c["barriers"].append(barrier)
    dlq = f"{barrier}-dlq"
    others = [f"{barrier}-{s}" for s in ("checkin", "release-0", "release-1", "state", "lease.fifo")]
    urls = {n: sqs.get_queue_url(QueueName=n)["QueueUrl"] for n in [dlq, *others]}
    sqs.send_message(QueueUrl=urls[dlq], MessageBody="a rejected check-in")
    sqs.send_message(QueueUrl=urls[f"{barrier}-release-0"], MessageBody="a marker")
    before = {n: _attrs(sqs, n) for n in others}
    assert int(before[f"{barrier}-release-0"]["ApproximateNumberOfMessages"]) == 1
    assert _count(sqs, dlq) == 1

    browser.get(url + f"#/queue/{dlq}")
    _wait_text(browser, "#qp-barrier", "dead-letter queue")
    _wait_text(browser, '#qp-details [data-attr="ApproximateNumberOfMessages"]',
               "ApproximateNumberOfMessages1")
    _click(browser, "#qp-purge")
    _until(browser, lambda d: d.find_element(By.ID, "confirm-dialog").is_displayed())
    _wait_text(browser, "#rm-effect", "loses the rejected messages")
    assert f"sqs-barrier teardown {barrier}" in _js_text(browser, "#rm-effect")
    ack, go = browser.find_element(By.ID, "rm-ack"), browser.find_element(By.ID, "rm-go")
    assert ack.is_displayed() and not ack.is_selected()
    # The name typed, not acknowledged: Confirm stays disabled, and Enter
    # in the name's field does nothing.
    box = _type(browser, "#rm-confirm", dlq)
    assert not go.is_enabled()
    box.send_keys(Keys.ENTER)
    time.sleep(0.5)
    assert browser.find_element(By.ID, "confirm-dialog").is_displayed()
    assert _js_text(browser, "#rm-error") == ""
    assert _count(sqs, dlq) == 1
    # The API refuses the same request without the acknowledgement.
    token = browser.execute_script("return token")
    status, answer = _post(url + f"api/queues/{dlq}/purge", {"confirm": dlq},
                           {"Content-Type": "application/json", "X-Console-Token": token})
    assert status == 409 and "barrier_ack" in answer["error"], answer
    assert answer["details"]["role"] == "dead-letter", answer
    assert _count(sqs, dlq) == 1
    # Ticked, then unticked: enabled, then disabled again.
    ack.click()
    assert go.is_enabled()
    ack.click()
    assert not go.is_enabled()
    # Acknowledged, with the name typed: purged.
    ack.click()
    _type(browser, "#rm-confirm", dlq[:-1])
    assert not go.is_enabled()  # acknowledged, the name not whole
    box.send_keys(dlq[-1])
    assert go.is_enabled()
    go.click()
    _wait_text(browser, "#notice", f"Purged \u2068{dlq}\u2069")
    assert not browser.find_element(By.ID, "confirm-dialog").is_displayed()
    _until(browser, lambda d: _count(sqs, dlq) == 0, 10)
    assert not sqs.receive_message(QueueUrl=urls[dlq], WaitTimeSeconds=1).get("Messages")
    # Its page shows the count read after the purge.
    _wait_text(browser, '#qp-details [data-attr="ApproximateNumberOfMessages"]',
               "ApproximateNumberOfMessages0", 3)
    # The barrier's other queues: there, with what they held.
    for n in others:
        after = _attrs(sqs, n)
        for a in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                  "ApproximateNumberOfMessagesDelayed", "CreatedTimestamp"):
            assert after.get(a) == before[n].get(a), (n, a, before[n], after)
    # And its table: the dead-letter queue's row reads 0.
    _click(browser, "#queue-page a[href='#/']")
    _until(browser, lambda d: (r := _row(d, dlq)) and r[5:8] == ["0", "0", "0"], 3)
    assert _row(browser, f"{barrier}-release-0")[5] == "1"


def test_a_queues_counts_in_the_table_follow_an_action_at_once(sqs_url, browser):
    """After an action on a queue the table shows its counts at once, read
    after the action, not at the console's next read of SQS (60 s here) or
    the table's (every 10 s): a message sent with a delivery delay of 60 s
    from the queue's page is in Delayed, one without it in Available; a
    purge from the table's menu empties both."""
    sqs = make_client(sqs_url)
    prefix = f"qc-{uuid.uuid4().hex[:8]}"
    q = f"{prefix}-counts"
    qurl = sqs.create_queue(QueueName=q)["QueueUrl"]
    sqs.send_message(QueueUrl=qurl, MessageBody="before the console")
    with _console(sqs_url, prefix, "--interval", "60") as url:
        browser.get(url)
        _until(browser, lambda d: (r := _row(d, q)) and r[5:8] == ["1", "0", "0"])
        # Its page, from the row's menu; two messages sent.
        _click(browser, f'#queues tr[data-queue="{q}"] details.qa summary')
        _click(browser, f'#queues tr[data-queue="{q}"] button[data-qa="messages"]')
        _wait_text(browser, "#qp-details", "VisibilityTimeout")
        _type(browser, "#send-body", "now")
        _click(browser, "#send-form button[type=submit]")
        _wait_text(browser, "#send-result", "Sent")
        _type(browser, "#send-body", "in a minute")
        _type(browser, "#send-delay", "60")
        _click(browser, "#send-form button[type=submit]")
        _wait_text(browser, "#send-result", "Sent")
        sent = time.monotonic()
        assert _attrs(sqs, q)["ApproximateNumberOfMessagesDelayed"] == "1"
        # The page's counts, and the table's, within 3 s of the send.
        _wait_text(browser, '#qp-details [data-attr="ApproximateNumberOfMessagesDelayed"]',
                   "ApproximateNumberOfMessagesDelayed1", 3)
        _click(browser, "#queue-page a[href='#/']")
        _until(browser, lambda d: (r := _row(d, q)) and r[5:8] == ["2", "0", "1"],
               max(0.1, 3 - (time.monotonic() - sent)))
        # A purge from the table's menu: 0 everywhere, within 3 s.
        _click(browser, f'#queues tr[data-queue="{q}"] details.qa summary')
        _click(browser, f'#queues tr[data-queue="{q}"] button[data-qa="purge"]')
        _until(browser, lambda d: d.find_element(By.ID, "confirm-dialog").is_displayed())
        _type(browser, "#rm-confirm", q)
        _click(browser, "#rm-go")
        _wait_text(browser, "#notice", "Purged")
        purged = time.monotonic()
        _until(browser, lambda d: (r := _row(d, q)) and r[5:8] == ["0", "0", "0"],
               max(0.1, 3 - (time.monotonic() - purged)))
        a = _attrs(sqs, q)
        assert (a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesDelayed"]) == ("0", "0"), a
    sqs.delete_queue(QueueUrl=qurl)


def test_queue_table_sorts_and_pages(queue_console, browser):
    c = queue_console
    sqs, p = c["sqs"], c["prefix"]
    names = [f"{p}-s-{i:02}" for i in range(25)]
    urls = {n: sqs.create_queue(QueueName=n)["QueueUrl"] for n in names}
    for n, count in ((names[7], 3), (names[13], 2), (names[21], 1)):
        for i in range(count):
            sqs.send_message(QueueUrl=urls[n], MessageBody=str(i))
    browser.get(c["url"])
    _until(browser, lambda d: len(_queue_rows(d)) == 25)
    shown = lambda d: [r[0] for r in _queue_rows(d)]  # noqa: E731
    assert shown(browser) == names
    assert _js_text(browser, "#queue-count") == "1–25 of 25 queues"

    # Pages of 10: next, next (the last), previous.
    Select(browser.find_element(By.ID, "page-size")).select_by_visible_text("10")
    _until(browser, lambda d: shown(d) == names[:10])
    _click(browser, "#next-page")
    _until(browser, lambda d: shown(d) == names[10:20])
    _click(browser, "#next-page")
    _until(browser, lambda d: shown(d) == names[20:])
    assert not browser.find_element(By.ID, "next-page").is_enabled()
    assert _js_text(browser, "#queue-count") == "21–25 of 25 queues"
    _click(browser, "#prev-page")
    _until(browser, lambda d: shown(d) == names[10:20])

    # Sorting (from the first page): by name, descending; by messages
    # available, descending, as boto3 counts them.
    _click(browser, '#queues th[data-sort="name"] button')
    _until(browser, lambda d: shown(d) == names[::-1][:10])
    assert browser.find_element(By.CSS_SELECTOR, '#queues th[data-sort="name"]').get_attribute("aria-sort") == "descending"
    counts = {n: int(_attrs(sqs, n)["ApproximateNumberOfMessages"]) for n in names}
    expected = sorted(names, key=lambda n: (counts[n], n), reverse=True)[:10]
    _click(browser, '#queues th[data-sort="visible"] button')
    _until(browser, lambda d: d.find_element(By.CSS_SELECTOR, '#queues th[data-sort="visible"]').get_attribute("aria-sort") == "ascending")
    _click(browser, '#queues th[data-sort="visible"] button')
    _until(browser, lambda d: shown(d) == expected)
    assert expected[:3] == [names[7], names[13], names[21]]
    assert [r[5] for r in _queue_rows(browser)[:3]] == ["3", "2", "1"]
    # The search by prefix, from the first page.
    _search(browser, f"{p}-s-1")
    _until(browser, lambda d: sorted(shown(d)) == names[10:20])


def test_a_read_only_console_offers_no_queue_action(endpoint_url, browser):
    exe = str(_server_binary())
    env = cli_env(endpoint_url)
    name = f"ro-{uuid.uuid4().hex[:8]}"
    sqs = make_client(endpoint_url)
    sqs.create_queue(QueueName=name)
    console = subprocess.Popen(
        [exe, "console", "--bind", "127.0.0.1:0", "--prefix", name, "--read-only"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )
    try:
        url = _url_in(_line_with(console.stdout, "sqs-barrier console:"))
        browser.get(url)
        _until(browser, lambda d: [r[0] for r in _queue_rows(d)] == [name])
        assert not browser.find_element(By.ID, "queue-actions").is_displayed()
        assert not browser.find_element(By.CSS_SELECTOR, "#queues td.pick input").is_displayed()
        assert not browser.find_elements(By.CSS_SELECTOR, "#queues details.qa")
        browser.get(url + f"#/queue/{name}")
        _wait_text(browser, "#qp-details", "VisibilityTimeout")
        for sel in ("#qp-edit", "#qp-purge", "#qp-delete", "#qp-edit-box", "#qp-messages",
                    "#tag-form", "#redrive-form"):
            assert not browser.find_element(By.CSS_SELECTOR, sel).is_displayed(), sel
        assert not browser.find_elements(By.CSS_SELECTOR, "button.untag, button.cancel-task")
        browser.get(url + "#/create")
        time.sleep(0.5)
        assert not browser.find_element(By.ID, "create-page").is_displayed()
        assert browser.find_element(By.ID, "home").is_displayed()
    finally:
        console.terminate()
        console.wait(timeout=10)


# --------------------------------------------------------------------------
# The gate, attacked by other pages in the browser.

# A page of another origin than the console's, as an attacker would serve
# it; the test calls its functions with the console's address.
ATTACKER_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Another site</title>
<iframe name="sink"></iframe>
<script>
"use strict";
// Tries to read the console's page (its token), a token, and the state.
async function steal(base) {
  const out = {};
  for (const path of ["", "api/token", "api/state"]) {
    try {
      const r = await fetch(base + path, {cache: "no-store"});
      out["/" + path] = "read " + r.status + ": " + (await r.text()).slice(0, 300);
    } catch (e) { out["/" + path] = "unreadable"; }
  }
  return out;
}

// Submits a form to `url` in the frame; resolves once the frame has loaded.
function post(url, enctype, fields) {
  return new Promise(resolve => {
    const frame = document.querySelector("iframe[name=sink]");
    const timer = setTimeout(() => resolve("no load event"), 5000);
    frame.onload = () => { clearTimeout(timer); resolve("submitted"); };
    const form = document.createElement("form");
    form.method = "POST"; form.action = url; form.target = "sink"; form.enctype = enctype;
    for (const [k, v] of Object.entries(fields)) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = k; input.value = v;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
    form.remove();
  });
}

// Sends the action `body` to `url` every way a page can.
async function attack(url, body, token) {
  const json = JSON.stringify(body), out = {};
  // JSON with a token: not a simple request, so the browser asks first (a
  // CORS preflight) and sends it only if the console allows it.
  try {
    const r = await fetch(url, {method: "POST", body: json,
      headers: {"Content-Type": "application/json", "X-Console-Token": token}});
    out.json = "answered " + r.status;
  } catch (e) { out.json = "blocked"; }
  // A simple request (no-cors): sent without asking, the headers a page may
  // not set dropped, the body as text/plain; the answer cannot be read.
  try {
    const r = await fetch(url, {method: "POST", mode: "no-cors", body: json,
      headers: {"Content-Type": "application/json", "X-Console-Token": token}});
    out.simple = r.type;
  } catch (e) { out.simple = "error: " + e; }
  // Forms: the fields urlencoded, and a text/plain form whose body reads
  // as the JSON (NAME=VALUE with the name `{...,"x":"` and the value `"}`).
  out.form = await post(url, "application/x-www-form-urlencoded", body);
  out.plain_form = await post(url, "text/plain", {[json.slice(0, -1) + ',"x":"']: '"}'});
  return out;
}

// `n` GETs of the console's page and of /api/token at once; how they ended.
async function flood(base, n) {
  const one = path => fetch(base + path, {mode: "no-cors", cache: "no-store"})
    .then(r => r.type, () => "error");
  const all = await Promise.all(Array.from({length: n}, () => [one(""), one("api/token")]).flat());
  const counts = {};
  for (const t of all) counts[t] = (counts[t] || 0) + 1;
  return counts;
}
</script>
"""


# A page token: expiry, nonce, HMAC-SHA256 (see crates/console/src/guard.rs).
TOKEN = re.compile(r"\d+\.[0-9a-f]{16}\.[0-9a-f]{64}")


@contextlib.contextmanager
def _attacker_site():
    """Serves ATTACKER_PAGE at / on a free loopback port (another origin
    than the console's); yields the port."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            found = self.path == "/"
            body = ATTACKER_PAGE.encode() if found else b"not found\n"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8" if found else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _run(driver, call, *args):
    """Awaits `call` (a function of the open page, with `args`) in the page;
    returns its result."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"{call}(...[...arguments].slice(0, -1)).then(done, e => done('failed: ' + e));",
        *args,
    )


def _logged(log: Path, message: str) -> list[dict]:
    """The console's log lines with `message`, as {field: value}."""
    lines = [line for line in log.read_text().splitlines() if message in line]
    return [
        {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line)} for line in lines
    ]


def test_other_pages_cannot_act_through_the_console(sqs_url, tmp_path):
    """The gate against real pages in Chromium, on both endpoints (what the
    gate refuses does not depend on the endpoint; what a refusal leaves
    unchanged is read back from each). A console watches a barrier whose
    member waits and a queue holding a message:

    * A page of another origin (the same host on another port, and another
      site) tries to abort the barrier and to purge the queue with a valid
      token it was given: JSON with the token (the CORS preflight fails: the
      POST is never sent), a no-cors POST, and form posts (urlencoded, and
      text/plain shaped as JSON). The console refuses each request sent
      (403, logged with `code="cross-origin"`); the member still waits, the
      message is still there. The page can read neither the console's page,
      nor a token, nor the state.
    * A rebinding name (Chromium resolves evil.example to 127.0.0.1): the
      page at http://evil.example:PORT/ is the console's 421, without a
      token; its own same-origin fetches of the state, a token and the page,
      and the abort and purge with the valid token, are all answered 421
      and logged.
    * A flood: 300 no-cors GETs of the console's page and 300 of /api/token
      from the other origin; then the console's page, opened before, aborts
      the barrier (the member fails with code 4) and purges the queue with
      the token it was served, never renewed.
    """
    exe = str(_server_binary())
    env = cli_env(sqs_url)
    env.pop("SQS_BARRIER_LOG", None)  # the console's default level logs refusals
    sqs = make_client(sqs_url)
    prefix = f"gate-{uuid.uuid4().hex[:8]}"
    barrier, queue = f"{prefix}-b", f"{prefix}-q"
    subprocess.run([exe, "setup", "--barrier", barrier, "--parties", "2", "--members", "a,b"],
                   env=env, check=True, capture_output=True, timeout=30)
    qurl = sqs.create_queue(QueueName=queue)["QueueUrl"]
    sqs.send_message(QueueUrl=qurl, MessageBody="keep me")
    log = tmp_path / "console.log"
    procs = []

    def spawn(*args, **kw):
        p = subprocess.Popen([exe, *args], env=env, stdin=subprocess.DEVNULL, text=True, **kw)
        procs.append(p)
        return p

    def unchanged():
        assert member.poll() is None, "the member must still wait"
        st = json.loads(subprocess.run(
            [exe, "status", "--barrier", barrier, "--json", "--no-probe"],
            env=env, check=True, capture_output=True, text=True, timeout=30).stdout)
        assert st["broken"] is None and st["arrived"] == ["a"], st
        assert _count(sqs, queue) == 1

    driver = None
    try:
        spawn("coordinator", "--barrier", barrier, "--heartbeat", "2", stderr=subprocess.DEVNULL)
        member = spawn("wait", "--barrier", barrier, "--id", "a", "--phase", "0",
                       "--timeout", "120", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with open(log, "w") as err:
            console = spawn("console", "--bind", "127.0.0.1:0", "--prefix", prefix,
                            stdout=subprocess.PIPE, stderr=err)
        url = _url_in(_line_with(console.stdout, "sqs-barrier console:"))
        port = urllib.parse.urlsplit(url).port
        # A valid token, as if it had leaked to the other pages.
        leaked = json.loads(_get(url + "api/token"))["token"]
        assert TOKEN.fullmatch(leaked), leaked
        abort = ("api/abort", {"barrier": barrier, "reason": "from another page"})
        purge = (f"api/queues/{queue}/purge", {"confirm": queue})
        driver = _chromium(
            "--host-resolver-rules=MAP evil.example 127.0.0.1, MAP attacker.example 127.0.0.1",
            "--no-proxy-server",
        )
        driver.set_script_timeout(60)
        with _attacker_site() as aport:
            # The console's own page, opened first: the member has arrived.
            driver.get(url)
            _until(driver, lambda d: _chips(d, barrier, "arrived") == ["a"], 30)
            served = driver.execute_script("return token")
            console_tab = driver.current_window_handle

            # 1. Pages of another origin: the same host on another port
            # (same site), and another site.
            driver.switch_to.new_window("tab")
            for origin in (f"http://127.0.0.1:{aport}/", f"http://attacker.example:{aport}/"):
                driver.get(origin)
                stolen = _run(driver, "steal", url)
                assert set(stolen.values()) == {"unreadable"}, stolen
                for path, body in (abort, purge):
                    out = _run(driver, "attack", url + path, body, leaked)
                    assert out == {"json": "blocked", "simple": "opaque", "form": "submitted",
                                   "plain_form": "submitted"}, (origin, path, out)
            refused = _logged(log, "console request refused")
            for path, _ in (abort, purge):
                lines = [r for r in refused if r.get("path") == "/" + path]
                # The no-cors POST and the two forms, from each origin.
                assert len(lines) == 6 and {r["code"] for r in lines} == {"cross-origin"}, lines
            assert not _logged(log, "console action"), log.read_text()
            unchanged()

            # 2. A rebinding name: the console's port under another name.
            evil = f"http://evil.example:{port}/"
            driver.get(evil)
            status, text, meta = driver.execute_script(
                "return [performance.getEntriesByType('navigation')[0].responseStatus,"
                " document.body.innerText, !!document.querySelector('meta[name=console-token]')]")
            assert status == 421 and not meta, (status, text)
            assert "does not answer for the host name" in text and not TOKEN.search(text), text
            answers = driver.execute_async_script(
                """const done = arguments[arguments.length - 1];
                (async () => {
                  const out = {};
                  for (const [path, body] of arguments[0]) {
                    const init = body === null ? {cache: "no-store"} : {method: "POST",
                      headers: {"Content-Type": "application/json", "X-Console-Token": arguments[1]},
                      body: JSON.stringify(body)};
                    try { const r = await fetch(path, init); out[path] = [r.status, await r.text()]; }
                    catch (e) { out[path] = ["failed", String(e)]; }
                  }
                  return out;
                })().then(done);""",
                [["/api/state", None], ["/api/token", None], ["/", None],
                 ["/" + abort[0], abort[1]], ["/" + purge[0], purge[1]]],
                leaked,
            )
            for path, (code, body) in answers.items():
                assert code == 421 and "does not answer for the host name" in body, (path, code, body)
                assert barrier not in body and not TOKEN.search(body), (path, body)
            # Each logged (twice: Chromium sends a request again once on a 421).
            hosts = _logged(log, "a Host it does not answer for")
            assert {r["path"] for r in hosts} >= {"/", "/api/state", "/api/token", "/" + abort[0],
                                                  "/" + purge[0]}, hosts
            assert {r["host"] for r in hosts} == {f"evil.example:{port}"}, hosts
            unchanged()

            # 3. A flood from the other origin.
            driver.get(f"http://127.0.0.1:{aport}/")
            assert _run(driver, "flood", url, 300) == {"opaque": 600}
            driver.close()
            unchanged()

        # The page opened before the flood acts with the token it was served.
        driver.switch_to.window(console_tab)
        card = _card(driver, barrier)
        card.find_element(By.CSS_SELECTOR, ".abort-form input[name=reason]").send_keys("after the flood")
        card.find_element(By.CSS_SELECTOR, ".abort-form button[type=submit]").click()
        card.find_element(By.CSS_SELECTOR, ".confirm .yes").click()
        _until(driver, lambda d: "abort sent" in _text(d, barrier, ".abort-result"))
        code, err = member.wait(timeout=60), member.stderr.read()
        assert code == 4 and "after the flood" in err, err
        # The purge the other pages tried, through the page's own act().
        answer = _run(driver, "act", "/" + purge[0], purge[1])
        assert answer["ok"], answer
        assert driver.execute_script("return token") == served
        assert not [r for r in _logged(log, "console request refused") if r.get("code") == "token"]
        actions = _logged(log, "console action")
        assert [r["action"] for r in actions] == ["abort", "purge"], actions
        _until(driver, lambda d: _count(sqs, queue) == 0, 10)
    finally:
        if driver is not None:
            driver.quit()
        _end(procs, exe, barrier, env)
        with contextlib.suppress(Exception):
            sqs.delete_queue(QueueUrl=qurl)
