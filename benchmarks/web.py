"""Shared pieces of the browser benchmarks (bench_page, bench_load): a real `streamlit run app.py` with a private
results store and the process backend, Debian's Chromium driven by Playwright's async API, and CPU / memory
read from /proc (no psutil: it is not a dependency).

Never Playwright's own browser download: /usr/bin/chromium or nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TRAIN = "▷ Train all three"
TITLE = "Transfer learning race"
VIEWPORT = {"width": 1600, "height": 1000}
# The classroom default and a tiny race for smoke tests (the page offers 200 test images at least).
QUICK_QUERY = {"train": "20", "test": "200", "epochs": "2", "res": "32"}
QUICK_CLI = ["--train-size", "20", "--test-size", "200", "--epochs", "2", "--resolution", "32"]

# True once the race chart (the figure whose y axis is test accuracy) has a point in each of its three traces.
RACE_POINTS_JS = """() => {
  for (const p of document.querySelectorAll('.js-plotly-plot')) {
    const title = p.layout && p.layout.yaxis && p.layout.yaxis.title && p.layout.yaxis.title.text;
    if (p.data && title === 'test accuracy (%)') {
      const n = p.data.filter(t => (t.x || []).length > 0).length;
      return n >= 3;
    }
  }
  return false;
}"""

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(params: dict[str, str]) -> str:
    return "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""


# ---- /proc -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime (the last two: children it has reaped)
    rss: int  # bytes
    cmdline: str


def processes() -> dict[int, Proc]:
    """Every process we can read, by pid (one snapshot of /proc)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        rest = stat[stat.rfind(")") + 2:].split()
        out[int(d)] = Proc(int(d), int(rest[1]), sum(int(x) for x in rest[11:15]), int(rest[21]) * PAGE, cmd)
    return out


def tree(root: int, procs: dict[int, Proc]) -> list[Proc]:
    """``root`` and all its descendants."""
    kids: dict[int, list[int]] = {}
    for p in procs.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out.append(procs[pid])
        todo.extend(kids.get(pid, []))
    return out


async def wait_warm(server_pid: int, timeout: float = 60) -> dict:
    """Until the server's one-off warm-up is over: the worker processes' fork server, which the race page starts
    once the server has been quiet for a few seconds (tl_ui.jobs), has started and stopped using CPU. Returns
    its wall and CPU seconds (CPU: the server's whole tree meanwhile), or ``warm: False`` if none started."""
    import asyncio

    meter, t0, last = CpuMeter(server_pid), time.perf_counter(), None
    meter.start()
    while time.perf_counter() - t0 < timeout:
        await asyncio.sleep(1.0)
        fork = [p for p in tree(server_pid, processes()) if "forkserver" in p.cmdline]
        ticks = sum(p.cpu_ticks for p in fork)
        if fork and ticks == last:  # started, and idle for a second: imports done
            break
        last = ticks if fork else None
    used = meter.stop()
    return {"warm": bool(fork), "wall_seconds": used["wall_seconds"], "cpu_seconds": used["server"]["cpu_seconds"]}


def chromium_procs(procs: dict[int, Proc], exclude: set[int], renderer_only: bool) -> list[Proc]:
    """Chromium processes started by this benchmark (descendants of it, not of the server)."""
    mine = [p for p in tree(os.getpid(), procs) if p.pid not in exclude and "chrom" in p.cmdline.split(" ")[0]]
    return [p for p in mine if "--type=renderer" in p.cmdline] if renderer_only else mine


class CpuMeter:
    """CPU seconds used between :meth:`start` and :meth:`stop` by a server's process tree and by Chromium."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def _sample(self) -> dict[str, dict[int, int]]:
        procs = processes()
        server = {p.pid: p.cpu_ticks for p in tree(self.server_pid, procs)}
        main = procs.get(self.server_pid)
        return {"server": server, "server_main": {main.pid: main.cpu_ticks} if main else {},
                "renderers": {p.pid: p.cpu_ticks for p in chromium_procs(procs, set(server), True)},
                "chromium": {p.pid: p.cpu_ticks for p in chromium_procs(procs, set(server), False)}}

    def start(self) -> None:
        self.t0, self.s0 = time.perf_counter(), self._sample()

    def stop(self) -> dict:
        wall, s1 = time.perf_counter() - self.t0, self._sample()
        out: dict = {"wall_seconds": wall}
        for k in s1:  # processes that appeared count from zero; ones that vanished are lost (none expected idle)
            used = sum(t - self.s0[k].get(pid, 0) for pid, t in s1[k].items()) / CLK_TCK
            out[k] = {"cpu_seconds": used, "percent_of_one_core": 100 * used / wall, "processes": len(s1[k])}
        return out


class RssSampler:
    """Peak of the summed RSS of a process tree, sampled in a thread (shared pages count once per process:
    the sum is an upper bound of what the tree really holds)."""

    def __init__(self, root: int, every: float = 0.5):
        self.root, self.every, self.peak, self.peak_processes = root, every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = tree(self.root, processes())
            total = sum(p.rss for p in t)
            if total > self.peak:
                self.peak, self.peak_processes = total, len(t)
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ---- the server ------------------------------------------------------------------------------------------

@dataclass
class Server:
    url: str
    pid: int
    store: Path  # its TL_RACE_DATA folder

    @property
    def store_file(self) -> Path:
        return self.store / "results.sqlite"


@contextmanager
def streamlit_server(store: Path, log: Path, timeout: float = 120) -> Iterator[Server]:
    """`streamlit run app.py` (headless, free port, private TL_RACE_DATA, process backend); killed afterwards."""
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "TL_RACE_DATA": str(store), "TL_RACE_BACKEND": "process"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                 "--server.port", str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + timeout
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"streamlit did not start (exit code {proc.poll()}); see {log}") from None
                    time.sleep(0.2)
            yield Server(url, proc.pid, store)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)


def check_chromium() -> str | None:
    """Why the browser benchmarks cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (Debian package `chromium`)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "python package playwright is not installed (requirements-dev.txt)"
    return None


# ---- pages (Playwright async API) ------------------------------------------------------------------------

async def open_race_page(browser, url: str, timeout: float = 120) -> tuple[object, dict]:
    """A new context (its own session) on the race page; returns (page, {title, button} seconds from goto)."""
    ctx = await browser.new_context(viewport=VIEWPORT)
    page = await ctx.new_page()
    t = time.perf_counter()
    await page.goto(url, timeout=timeout * 1000)
    await page.get_by_text(TITLE).first.wait_for(timeout=timeout * 1000)
    title = time.perf_counter() - t
    await page.get_by_role("button", name=TRAIN).wait_for(timeout=timeout * 1000)
    return page, {"title": title, "button": time.perf_counter() - t}


async def wait_idle(page, timeout: float = 120) -> None:
    """Until Streamlit's script run has finished (its status widget gone)."""
    await page.wait_for_timeout(300)
    await page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout * 1000)


async def press_train(page) -> float:
    """Click "Train all three"; returns the perf_counter time just before the click."""
    t = time.perf_counter()
    await page.get_by_role("button", name=TRAIN).click()
    return t


async def watch_race(page, t_click: float, timeout: float, polling_ms: int = 100) -> dict:
    """Seconds from the click to the first points of all three strategies and to the result verdict
    (``None`` for what did not happen within ``timeout`` seconds of the click)."""
    out: dict = {"first_points": None, "verdict": None}
    left = lambda: max(1.0, timeout - (time.perf_counter() - t_click))  # noqa: E731
    try:
        await page.wait_for_function(RACE_POINTS_JS, polling=polling_ms, timeout=left() * 1000)
        out["first_points"] = time.perf_counter() - t_click
        await page.locator(".tl-verdict").first.wait_for(timeout=left() * 1000)
        out["verdict"] = time.perf_counter() - t_click
    except Exception as e:  # a timeout: recorded as missing, the benchmark goes on
        out["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        try:  # what the tab showed instead, for diagnosis
            out["page_text"] = (await page.evaluate("document.querySelector('[data-testid=\"stMain\"]')"
                                                    "?.innerText ?? document.body.innerText"))[:600]
            out["plotly_charts"] = await page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        except Exception as e2:
            out["page_text"] = f"unreadable: {type(e2).__name__}"
    return out
