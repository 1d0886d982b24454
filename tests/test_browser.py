"""The simulator in a real browser: `steward demo` as a process, Debian's Chromium driving /sim.

Playwright (the Python package) drives the `chromium` Debian package, headless, each test in a
fresh profile; `playwright install` is never run. Where chromium is missing (make test installs
it with apt where it can) the browser tests are skipped with the reason. Waiting is Playwright's
own: each expectation polls the page until it holds or its deadline passes.

Run as a module it writes the README's screenshot from a demo of its own (or a running one):
`python -m tests.test_browser --out docs/simulator.png [--url http://127.0.0.1:8000/sim]`.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
DEADLINE_MS = 15_000
URL_LINE = re.compile(r"simulator on: (http://\S+/sim)")

pytestmark = pytest.mark.process
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (make test installs it with apt where it can)",
)

# Demo people the tests act as, one each so that no test reads another's messages.
WANG, ZHANG, LIU = "+8613922011101", "+8613922011201", "+8613922011102"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_demo(folder: Path, port: int, timeout: float = 120.0) -> Iterator[str]:
    """`steward demo` in `folder` (its data/ there); yield the URL it prints once serving."""
    # Whatever TIMEZONE says (tortoise sets UTC in any process that connected, as this one may
    # have), the demo street keeps Tianjin's days.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING", "TIMEZONE": "UTC"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "steward.cli", "demo", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:  # keeps the pipe drained for as long as the demo runs
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=timeout)
            assert line is not None, "steward demo exited:\n" + "".join(seen)
            seen.append(line)
            if match := URL_LINE.search(line):
                yield match.group(1)
                return
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_demo(tmp_path_factory.mktemp("demo"), free_port()) as url:
        yield url


def api(url: str, path: str, body: dict[str, str] | None = None) -> Any:
    """Call the demo's JSON API (what a script or a trainer's tool would do)."""
    base = url.removesuffix("/sim")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_page(browser: Any, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A page in a context of its own: a fresh profile (no cookies, storage or cache shared)."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    context.set_default_timeout(DEADLINE_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def demo_day(url: str) -> str:
    """The simulator's local day as the office group's digest names it, e.g. "12月2日"."""
    day = str(api(url, "/sim/api/clock")["local"])[:10]
    return f"{int(day[5:7])}月{int(day[8:10])}日"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def newest(page: Any, panel: str) -> Any:
    return page.locator(f"#{panel} .msg").last


def test_the_printed_url_shows_the_demo_street(demo_url: str) -> None:
    with urllib.request.urlopen(demo_url, timeout=10) as response:
        page = response.read().decode()
    assert "SIMULATOR" in page and "新开河街" in page
    for name in ("王秀英", "赵建国", "钱丽华", "Li Wei"):
        assert name in page
    clock = api(demo_url, "/sim/api/clock")
    assert clock["timezone"] == "Asia/Shanghai"
    history = api(demo_url, f"/sim/api/threads/{WANG}")
    assert len(history) > 20 and {m["direction"] for m in history} == {"in", "out"}


@needs_chromium
def test_a_volunteer_checks_in_and_sees_the_reply(demo_url: str, browser: Any) -> None:
    with fresh_page(browser, width=390, height=844) as page:  # a phone's screen
        page.goto(demo_url)
        page.locator("#phone select.who").select_option(WANG)
        page.locator("#phone .keys button", has_text="签到").click()
        expect(newest(page, "phone")).to_contain_text("签到成功")
        expect(page.locator("#phone .msg.in").last).to_have_text(re.compile("^签到"))
        assert "1 seg" in newest(page, "phone").inner_text()
        # Nothing wider than the phone: the panels stack.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390


@needs_chromium
def test_a_report_through_the_guided_menu(demo_url: str, browser: Any) -> None:
    with fresh_page(browser) as page:
        page.goto(demo_url)
        page.locator("#phone select.who").select_option(ZHANG)
        page.locator("#phone .keys button", has_text="上报").click()
        expect(newest(page, "phone")).to_contain_text("请回复类别数字")
        box = page.locator("#phone form.compose input")
        box.fill("1")
        box.press("Enter")
        expect(newest(page, "phone")).to_contain_text("请用一条短信说明情况和地点")
        box.fill("西巷口垃圾两天没人清运")
        box.press("Enter")
        expect(newest(page, "phone")).to_contain_text(re.compile(r"已收到上报#\d+（环境卫生）"))


@needs_chromium
def test_the_lead_acknowledges_and_the_phone_shows_it(demo_url: str, browser: Any) -> None:
    api(demo_url, "/sim/api/messages", {"from": LIU, "text": "报 2 振华里东巷路灯不亮"})
    with fresh_page(browser) as page:
        page.goto(demo_url)
        page.locator("#phone select.who").select_option(LIU)
        filed = newest(page, "phone")
        expect(filed).to_contain_text("已收到上报#")
        number = re.search(r"#(\d+)", filed.inner_text())
        assert number is not None
        n = number.group(1)
        # 振华里's lead group, 赵建国 speaking (the first of each list).
        expect(page.locator("#lead select.speaker")).to_contain_text("赵建国")
        card = page.locator("#lead .msg.out", has_text=f"新上报#{n}【设施损坏】")
        card.locator("button", has_text="受理").click()
        expect(card).to_contain_text("— 已受理（赵建国）")
        expect(card.locator("button", has_text="受理")).to_have_count(0)
        expect(newest(page, "phone")).to_contain_text(f"您的上报#{n}已受理")


@needs_chromium
def test_the_clock_panel_runs_the_digest_for_the_office(demo_url: str, browser: Any) -> None:
    day = demo_day(demo_url)
    with fresh_page(browser) as page:
        page.goto(demo_url)
        page.locator("#presets button", has_text="digest 18:00").click()
        page.locator("#run").click()
        expect(page.locator("#result")).to_contain_text("queued → 钱丽华")
        # The office group gets the whole digest, then the week's chart as a photo.
        digest = page.locator("#office .msg.out", has_text=f"新开河街日报 {day}")
        expect(digest).to_contain_text("巡查：应巡")
        expect(newest(page, "office")).to_contain_text("图表 chart")
        expect(page.locator("#now")).to_contain_text("18:")


def screenshot(url: str, out: Path) -> None:
    """The README's picture: a check-in, the lead's cards, the office's digest."""
    day = demo_day(url)
    with chromium() as browser, fresh_page(browser, 1440, 960) as page:
        page.goto(url)
        page.locator("#phone select.who").select_option(WANG)
        page.locator("#phone .keys button", has_text="签到").click()
        expect(newest(page, "phone")).to_contain_text("签到成功")
        box = page.locator("#phone form.compose input")
        box.fill("报 1 5号楼门口垃圾又堆起来了")
        box.press("Enter")
        expect(newest(page, "lead")).to_contain_text("5号楼门口垃圾又堆起来了")
        page.locator("#presets button", has_text="digest 18:00").click()
        page.locator("#run").click()
        expect(page.locator("#office .msg.out", has_text=f"日报 {day}")).to_have_count(1)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a screenshot of the simulator.")
    parser.add_argument("--out", type=Path, default=Path("docs/simulator.png"))
    parser.add_argument("--url", help="a running demo's /sim (default: start one of our own)")
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("chromium is not installed: apt-get install -y chromium fonts-wqy-zenhei")
    if args.url:
        screenshot(args.url, args.out)
    else:
        with (
            tempfile.TemporaryDirectory() as folder,
            running_demo(Path(folder), free_port()) as url,
        ):
            screenshot(url, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
