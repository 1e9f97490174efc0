"""`make bench` (third part): the live page at engine speed, in a real browser, in one run on one machine.

Measured, in this order (one `streamlit run app.py`, headless, process backend, Debian's Chromium):

(a) CLI: ``python -m tl_engine race`` with the defaults, in a fresh interpreter: wall time from launch to exit
    and its first-epoch time (launch until all three strategies' epoch-1 lines are printed).
(e) first paint of the race page (title and the "Train all three" button visible, from navigation start):
    the first load on a freshly started server (cold) and three more, each in a new browser context (warm).
(c) an idle tab (no race) kept open for 60 s, after the server's one-off warm-up (reported apart): CPU seconds
    of the server's process tree and of Chromium's renderer processes, as a share of one core.
(b) the same default race pressed in the browser: from the click to the first points of all three strategies
    in the race chart, and to the result verdict. Reported against (a): browser / CLI wall time, and first
    points minus the CLI's first epoch.
(d) four tabs (browser contexts) pressing "Train all three" with the same settings at once, on a second
    server: all must finish; their total time against (b)'s one race (the scheduler joins them into one job).

Nothing is answered from the results store: (b) runs on a server whose store is a fresh empty folder, and
(d) on a second server with another fresh folder (checked afterwards: each store holds exactly one race, with
the CLI's config). Targets: browser/CLI <= 1.2, first points - CLI first epoch <= 2 s, idle < 3 % of one
core, four tabs <= 1.5x one race, warm first paint < 2 s. Writes ``benchmarks/results/page.json``.

    python -m benchmarks.bench_page
    python -m benchmarks.bench_page --quick   # smoke test: tiny races, 10 s idle; writes to a temp folder
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import web, write_results
from tl_engine.config import RunConfig
from tl_engine.store import ResultStore

RESULTS = Path(__file__).parent / "results"
EPOCH1 = re.compile(r"^\s*(scratch|frozen|finetune)\s+epoch\s+1/")


def cli_race(args: list[str], work: Path) -> dict:
    """(a) the CLI's race: wall time launch -> exit, first epoch = launch -> all three epoch-1 lines."""
    out_json = work / "cli.json"
    env = {**os.environ, "TL_RACE_DATA": str(work / "cli-store")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tl_engine", "race", *args, "--json", str(out_json)], cwd=web.ROOT,
                            env=env, stdout=subprocess.PIPE, text=True, bufsize=1)
    seen, first = set(), None
    for line in proc.stdout:
        m = EPOCH1.match(line)
        if m:
            seen.add(m.group(1))
            if len(seen) == 3 and first is None:
                first = time.perf_counter() - t0
    rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"the CLI race failed (exit code {rc})")
    result = json.loads(out_json.read_text())
    return {"wall_seconds": wall, "first_epoch_seconds": first, "race_wall_seconds": result["wall_seconds"],
            "config": result["config"]}


def stored(store_file: Path) -> list[dict]:
    return [{"config": r.config.to_dict(), "completed": r.completed} for r in ResultStore(store_file).all()]


async def measure_browser(a, work: Path) -> dict:
    from playwright.async_api import async_playwright

    q = web.query(web.QUICK_QUERY if a.quick else {})
    out: dict = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=web.CHROMIUM, args=web.CHROMIUM_ARGS)
        with web.streamlit_server(work / "store-b", work / "server-b.log") as srv:
            # (e) first paint: cold, then warm (each load its own context = its own session)
            loads = []
            for i in range(4):
                page, t = await web.open_race_page(browser, srv.url + q)
                loads.append(t)
                print(f"(e) load {i + 1} ({'cold' if i == 0 else 'warm'}): title {t['title']:.2f} s, "
                      f"button {t['button']:.2f} s", flush=True)
                await web.wait_idle(page)
                await page.context.close()
            out["first_paint"] = {"cold": loads[0], "warm": loads[1:],
                                  "warm_median_button": statistics.median(x["button"] for x in loads[1:])}

            # (c) an idle tab, once the server's one-off warm-up (the workers' fork server) is over: reported apart
            page, _ = await web.open_race_page(browser, srv.url + q)
            await web.wait_idle(page)
            out["warmup"] = await web.wait_warm(srv.pid)
            print(f"(c) the server's one-off warm-up: {out['warmup']}", flush=True)
            await page.wait_for_timeout(2000)
            meter = web.CpuMeter(srv.pid)
            meter.start()
            await page.wait_for_timeout(a.idle * 1000)
            idle = meter.stop()
            out["idle"] = idle
            print(f"(c) idle {idle['wall_seconds']:.0f} s: server tree {idle['server']['percent_of_one_core']:.2f} % "
                  f"of one core, Chromium renderers {idle['renderers']['percent_of_one_core']:.2f} % "
                  f"(all Chromium {idle['chromium']['percent_of_one_core']:.2f} %)", flush=True)

            # (b) one race pressed in this tab
            meter = web.CpuMeter(srv.pid)
            meter.start()
            t_click = await web.press_train(page)
            race = await web.watch_race(page, t_click, a.timeout)
            race["cpu"] = meter.stop()  # the server's tree includes its worker: the page's share is told apart below
            out["one_race"] = race
            print(f"(b) one race: first points {race['first_points']} s, verdict {race['verdict']} s; "
                  f"server process {race['cpu']['server_main']['percent_of_one_core']:.1f} % of one core (its tree, "
                  f"worker included: {race['cpu']['server']['percent_of_one_core']:.0f} %), "
                  f"Chromium renderers {race['cpu']['renderers']['percent_of_one_core']:.1f} %", flush=True)
            await page.context.close()
        out["one_race"]["store"] = stored(srv.store_file)

        with web.streamlit_server(work / "store-d", work / "server-d.log") as srv:
            # (d) four tabs, same settings, pressed at once
            opened = await asyncio.gather(*(web.open_race_page(browser, srv.url + q) for _ in range(4)))
            pages = [pg for pg, _ in opened]
            await asyncio.gather(*(web.wait_idle(pg) for pg in pages))
            t0 = time.perf_counter()
            clicks = await asyncio.gather(*(web.press_train(pg) for pg in pages))
            races = await asyncio.gather(*(web.watch_race(pg, t, a.timeout) for pg, t in zip(pages, clicks)))
            done = [t - t0 + r["verdict"] for r, t in zip(races, clicks) if r["verdict"] is not None]
            out["four_tabs"] = {"tabs": races, "all_finished": len(done) == 4,
                                "total_seconds": max(done) if done else None,
                                "page_loads": [t for _, t in opened]}
            print(f"(d) four tabs: {len(done)} of 4 finished, total {out['four_tabs']['total_seconds']} s", flush=True)
        out["four_tabs"]["store"] = stored(srv.store_file)
        await browser.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny races (20 train, 200 test, 2 epochs, "
                                                         "32 px), 10 s idle; writes to a temp folder")
    ap.add_argument("--idle", type=float, help="seconds the idle tab stays open (default 60; 10 with --quick)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds a race may take in the browser")
    ap.add_argument("--out", type=Path, help="where to write the JSON (default benchmarks/results/page.json)")
    a = ap.parse_args()
    a.idle = a.idle or (10 if a.quick else 60)
    why = web.check_chromium()
    if why:
        print(f"skipped: {why}")
        return 0
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tl-bench-page-") as tmp:
        work = Path(tmp)
        cli = cli_race(web.QUICK_CLI if a.quick else [], work)
        print(f"(a) CLI race: {cli['wall_seconds']:.1f} s launch to exit, first epoch of all three at "
              f"{cli['first_epoch_seconds']:.1f} s", flush=True)
        out = asyncio.run(measure_browser(a, work))
    out["cli"] = cli

    one, four = out["one_race"], out["four_tabs"]
    cfg_ok = [s["config"] for s in one["store"]] == [cli["config"]] == [s["config"] for s in four["store"]]
    checks = {"nothing answered from the store (each store holds one race, the CLI's config)": cfg_ok,
              "warm first paint (title + button) < 2 s": out["first_paint"]["warm_median_button"] < 2.0,
              "idle tab: server + renderers < 3 % of one core": (
                  out["idle"]["server"]["percent_of_one_core"] + out["idle"]["renderers"]["percent_of_one_core"]) < 3}
    if one["verdict"] is not None:
        out["browser_cli_ratio"] = one["verdict"] / cli["wall_seconds"]
        out["first_points_minus_cli_first_epoch"] = one["first_points"] - cli["first_epoch_seconds"]
        checks["browser / CLI wall time <= 1.2"] = out["browser_cli_ratio"] <= 1.2
        checks["first points - CLI first epoch <= 2 s"] = out["first_points_minus_cli_first_epoch"] <= 2
        print(f"browser / CLI = {one['verdict']:.1f} / {cli['wall_seconds']:.1f} s = {out['browser_cli_ratio']:.2f}; "
              f"first points - CLI first epoch = {out['first_points_minus_cli_first_epoch']:+.1f} s")
    else:
        checks["the browser race finished"] = False
    if four["total_seconds"] is not None and one["verdict"] is not None:
        out["four_tabs_ratio"] = four["total_seconds"] / one["verdict"]
        print(f"four tabs: {four['total_seconds']:.1f} s = {out['four_tabs_ratio']:.2f}x one race")
        checks["four tabs all finish, <= 1.5x one race"] = four["all_finished"] and out["four_tabs_ratio"] <= 1.5
    else:
        checks["four tabs all finish, <= 1.5x one race"] = False
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    out["checks"] = checks
    out["config"] = RunConfig.from_dict(cli["config"]).to_dict()
    out["quick"] = a.quick
    out["when"] = time.strftime("%Y-%m-%d %H:%M")
    out["loadavg_before"], out["loadavg_after"] = load_before, os.getloadavg()
    out["bench_wall_seconds"] = time.perf_counter() - t_start
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    path = a.out or (Path(tempfile.gettempdir()) / "tl-bench" / "page.json" if a.quick else RESULTS / "page.json")
    write_results(path, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
