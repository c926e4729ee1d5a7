"""Open report.html from disk in headless Chromium and check that it renders, offline and without errors.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages separated by NUL bytes, commands on the child's fd 3, replies
on fd 4), with the standard library only. Every network request the page
makes is recorded (``Network.requestWillBeSent``); console errors and
uncaught exceptions too. The screenshot is kept in ``tests/artifacts/``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from codecbench.render.report import build_report
from test_report import synthetic_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-pipe", "--window-size=1400,1000",
)
ARTIFACTS = Path(__file__).parent / "artifacts"


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium found on PATH (CI: apt-get install chromium)")


def _high_fd(fd: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered 10 or more; ``fd`` is closed."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class DevTools:
    """A headless Chromium and its DevTools connection over a pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        # Move the child's ends above fd 10 first, so that dup2 onto 3 and 4 never meets one of them.
        to_child_read, self._to_child = os.pipe()
        self._from_child, from_child_write = os.pipe()
        to_child_read, from_child_write = (_high_fd(fd) for fd in (to_child_read, from_child_write))

        def give_child_fds_3_and_4() -> None:
            os.dup2(to_child_read, 3)
            os.dup2(from_child_write, 4)

        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=give_child_fds_3_and_4, close_fds=False,
        )
        os.close(to_child_read)
        os.close(from_child_write)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._reply_ready = threading.Condition()
        self.events: queue.Queue[dict] = queue.Queue()
        self.all_events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_child, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        with self._reply_ready:
                            self._replies[message["id"]] = message
                            self._reply_ready.notify_all()
                    else:
                        self.all_events.append(message)
                        self.events.put(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._reply_ready:
            while self._next_id not in self._replies:
                if not self._reply_ready.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"no reply to {method} within {timeout} s")
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)


@pytest.fixture(scope="module")
def rendered_page(tmp_path_factory):
    """Build a report from a synthetic store, load it from disk, wait until every plot is drawn."""
    executable = chromium_path()
    root = tmp_path_factory.mktemp("browser")
    store = synthetic_store(root / "results", n_images=6, crops=2, targets=(0.5,))
    # every metric in the tables: the widest BD tables a report makes
    report = build_report(store.root, root / "report", metrics=("psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db",
                                                                "lpips"))
    browser = DevTools(executable, root / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": report.html_path.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", timeout=60)

        def evaluate(expression: str):
            result = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                       "awaitPromise": True}, session=session)
            if "exceptionDetails" in result:
                raise AssertionError(f"{expression}: {result['exceptionDetails']}")
            return result["result"].get("value")

        deadline = time.monotonic() + 60
        while evaluate("document.body.dataset.ready") != "1":
            assert time.monotonic() < deadline, "the report's script did not finish drawing within 60 s"
            time.sleep(0.2)
        yield browser, session, evaluate, report
    finally:
        browser.close()


def test_plots_render(rendered_page):
    _, _, evaluate, report = rendered_page
    metrics = report.datasets["kodak"].metrics
    assert evaluate("document.querySelectorAll('#rd-plots .js-plotly-plot .main-svg').length") >= len(metrics)
    assert evaluate("document.querySelectorAll('#time-plots .js-plotly-plot .main-svg').length") >= 2
    # every codec has a trace with points in the PSNR plot
    names = evaluate("document.getElementById('plot-psnr_rgb').data.map(t => t.name)")
    assert set(report.datasets["kodak"].codecs) <= set(names)
    assert evaluate("document.querySelectorAll('#crops img').length") == 1 + len(report.datasets["kodak"].codecs)
    assert evaluate("Array.from(document.querySelectorAll('#crops img')).every(i => i.complete && i.naturalWidth > 0)")


def test_controls_switch_image_and_log_scale(rendered_page):
    _, _, evaluate, report = rendered_page
    results = report.datasets["kodak"]
    mean_x = evaluate("document.getElementById('plot-psnr_rgb').data[0].x")
    np_mean = results.codecs["jpeg"].mean.bpp
    assert mean_x == pytest.approx(list(np_mean), rel=1e-5)
    evaluate("(() => { const s = document.getElementById('image-select'); s.value = '2';"
             " s.dispatchEvent(new Event('change')); })()")
    time.sleep(0.5)
    image_x = evaluate("document.getElementById('plot-psnr_rgb').data[0].x")
    image = results.images[2]
    assert image_x == pytest.approx(list(results.codecs["jpeg"].per_image[image.sha256].bpp), rel=1e-5)
    evaluate("(() => { const c = document.getElementById('logx'); c.checked = true;"
             " c.dispatchEvent(new Event('change')); })()")
    time.sleep(0.5)
    assert evaluate("document.getElementById('plot-psnr_rgb').layout.xaxis.type") == "log"


def test_tables_fit_the_window(rendered_page):
    _, _, evaluate, _ = rendered_page
    width = evaluate("window.innerWidth")
    rights = evaluate("Array.from(document.querySelectorAll('table')).map(t => t.getBoundingClientRect().right)")
    assert len(rights) >= 4 and max(rights) <= width


def test_no_network_request_and_no_console_error(rendered_page):
    browser, session, _, _ = rendered_page
    events = browser.all_events
    urls = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert urls, "the page load itself should be recorded"
    off_disk = [url for url in urls if not url.startswith(("file:", "data:", "blob:", "about:"))]
    assert off_disk == []
    errors = [e["params"] for e in events
              if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []


def test_screenshot(rendered_page):
    browser, session, evaluate, _ = rendered_page
    evaluate("(() => { const s = document.getElementById('image-select'), c = document.getElementById('logx');"
             " s.value = '-1'; c.checked = false; s.dispatchEvent(new Event('change'));"
             " c.dispatchEvent(new Event('change')); })()")
    time.sleep(0.5)
    height = evaluate("document.documentElement.scrollHeight")
    shot = browser.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 1400, "height": min(height, 6000), "scale": 1},
    }, session=session)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "report.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot: {path}")
    assert path.stat().st_size > 50_000  # a blank page compresses to a few kB
