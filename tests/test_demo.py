"""`python -m demo` as a person sees it: the page in a real headless Chromium (Debian's,
through its chromedriver), the celebrity button and key pressed, the figures appearing for
all three designs and changing, /live keyed by design, and everything stopped on SIGTERM."""

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path

import httpx
import psutil
import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from demo.live import AppWindow, FeedTail, tweets_per_second
from rig.processes import ROOT, free_port, wait_until

APPS = ("join", "fanout", "hybrid")
FIGURES = ("read_p50_ms", "read_p99_ms", "reads_per_s", "tweets_per_s")
NUMBER = re.compile(r"^[\d,]+(\.\d+)?$")
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo on a free port, at a light rate; stopped by SIGTERM, as a supervisor would."""
    work = tmp_path_factory.mktemp("demo")
    port = free_port()
    with open(work / "demo.out", "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "demo", "--port", str(port), "--rate", "30", "--work", str(work)],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: first_figures(process, url, work), 60, "the demo's first live figures", 0.5)
        yield url, process, work
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def first_figures(process: subprocess.Popen, url: str, work: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the demo exited: {(work / 'demo.out').read_text(errors='replace')[-3000:]}")
    try:
        return httpx.get(f"{url}/live", timeout=2).json()["meta"]["first_figures_s"] is not None
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(
            "chromium and chromedriver are needed: run scripts/ensure-chromium "
            "(as root it installs Debian's chromium and chromium-driver)"
        )
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def cell(driver, app: str, key: str) -> str:
    return driver.find_element(By.ID, f"{app}-{key}").text


def figures(driver) -> dict[str, tuple[str, ...]]:
    return {app: tuple(cell(driver, app, key) for key in FIGURES) for app in APPS}


def numbers_for_all(driver) -> dict | None:
    shown = figures(driver)
    return shown if all(NUMBER.match(text) for texts in shown.values() for text in texts) else None


def test_the_page_shows_all_three_live_and_the_celebrity_tweet(demo, browser):
    url, _, _ = demo
    browser.get(url)
    first = wait_until(lambda: numbers_for_all(browser), 15, "numbers for all three designs", 0.2)

    browser.find_element(By.ID, "celebrity").click()
    visible = wait_until(
        lambda: (
            all(NUMBER.match(cell(browser, app, "celebrity_visible")) for app in APPS)
            and cell(browser, "hybrid", "celebrity_fanout") == "none: pulled at read"
            and NUMBER.match(cell(browser, "fanout", "celebrity_fanout"))
        ),
        20,
        "the celebrity's tweet seen on all three",
        0.2,
    )
    assert visible
    # Fanout-on-write delivered it to every follower, which took time; the hybrid never fanned it out.
    assert float(cell(browser, "fanout", "celebrity_fanout").replace(",", "")) > 0

    # Every design's figures move with the sliding window.
    wait_until(
        lambda: all(figures(browser)[app] != first[app] for app in APPS),
        20,
        "the figures of all three to change",
        0.5,
    )

    presses = httpx.get(f"{url}/live").json()["meta"]["presses"]
    browser.find_element(By.TAG_NAME, "body").send_keys("c")  # the key the page names
    wait_until(
        lambda: httpx.get(f"{url}/live").json()["meta"]["presses"] == presses + 1,
        5,
        "the key c to press the button",
    )


def test_live_is_keyed_by_design(demo):
    url, _, _ = demo
    live = httpx.get(f"{url}/live").json()
    assert set(APPS) <= set(live)
    for app in APPS:
        assert live[app]["read_p50_ms"] > 0
        assert live[app]["read_p99_ms"] >= live[app]["read_p50_ms"]
        assert live[app]["errors"] == 0
    assert live["join"]["fanout_backlog"] is None  # join-on-read owes nothing
    assert live["fanout"]["fanout_backlog"] >= 0
    assert httpx.get(f"{url}/celebrity").status_code == 405


def test_sigterm_stops_everything_it_started(demo):
    url, process, work = demo
    meta = httpx.get(f"{url}/live").json()["meta"]
    assert processes_mentioning(work)  # the three Locusts, to be stopped
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    output = (work / "demo.out").read_text()
    assert "stopped" in output.splitlines()[-1]
    for app_url in meta["apps"].values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{app_url}/health", timeout=2)
    with pytest.raises(redis.ConnectionError), redis.Redis.from_url(meta["redis"]) as client:
        client.ping()
    assert not processes_mentioning(work)


def processes_mentioning(work: Path) -> list[psutil.Process]:
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if any(str(work) in part for part in process.info["cmdline"] or ())
    ]


def test_a_half_flushed_feed_line_waits_for_the_next_read(tmp_path):
    feed = tmp_path / "feed.csv"
    feed.write_text("100.000,read,1.500,1\n100.100,tweet,3.0")
    tail = FeedTail(feed)
    assert tail.new_rows() == [(100.0, "read", 1.5, True)]
    with open(feed, "a") as more:
        more.write("00,0\n")
    assert tail.new_rows() == [(100.1, "tweet", 3.0, False)]
    assert tail.new_rows() == []


def test_the_window_keeps_the_last_ten_seconds_of_reads(tmp_path):
    feed = tmp_path / "feed.csv"
    feed.write_text("".join(f"{100 + t}.000,read,{t}.000,1\n" for t in range(20)) + "119.500,read,99,0\n")
    window = AppWindow(tmp_path / "unused.db", FeedTail(feed))
    window.take_feed(now=120.0)
    assert window.reads.values() == list(map(float, range(10, 20)))  # 110 s onwards; the failure apart
    assert window.figures(120.0, fanout=False)["read_p50_ms"] == 14.5
    assert window.figures(120.0, fanout=False)["errors"] == 1


def test_tweets_per_second_is_the_apps_count_over_the_window():
    assert tweets_per_second(deque([(100.0, 50), (104.0, 58)])) == 2.0
    assert tweets_per_second(deque([(100.0, 50)])) is None
