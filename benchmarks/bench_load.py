"""`make bench-load`: a class on one server. 20 browser contexts (tabs with their own sessions) in one Chromium.

Half of the tabs press "▷ Train all three" with the default settings (one race: the scheduler joins them), the
other half with ten different settings (seeds 1..10: ten more races, queued). Measured:

- the baseline first: one race pressed alone in one tab on its own fresh server (click -> result verdict);
- then, on a second server with a fresh, empty results store (so nothing is answered from it): one warm-up
  page load (the teacher's tab, reported as "cold");
- the same 20 loads at once without a browser on this machine (:mod:`benchmarks.bare_sessions`: the HTTP
  requests and the websocket script run a browser asks for, no rendering): first visits (every static file)
  and return visits (a browser's cache holds the static files): what the server needs when the browsers are
  on the students' laptops;
- then the 20 tabs opened at once in Chromium: page load times (title and button visible; target: all < 2 s);
- all 20 pressing at once: every race must finish (its verdict appears in every tab); the total time from the
  clicks to the last verdict, against the one race (and per distinct race);
- the server's peak RSS (summed over its process tree: workers included; shared pages count per process);
- afterwards the store (``ResultStore`` on the server's TL_RACE_DATA) must hold the 11 distinct finished races.

Bounded: stops by itself after ``--max-minutes`` (default 60), recording what had not finished.
Writes ``benchmarks/results/load.json``.

    python -m benchmarks.bench_load
    python -m benchmarks.bench_load --quick   # smoke test: tiny races (20 train, 200 test, 2 epochs, 32 px)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import bare_sessions, web, write_results
from tl_engine.store import ResultStore

RESULTS = Path(__file__).parent / "results"


async def one_race(browser, url: str, timeout: float) -> dict:
    page, load = await web.open_race_page(browser, url)
    await web.wait_idle(page)
    t = await web.press_train(page)
    race = await web.watch_race(page, t, timeout)
    await page.context.close()
    return {**race, "page_load": load}


async def open_tab(browser, url: str) -> tuple[object | None, dict]:
    """A tab on the race page, or (None, the error) when it did not load within 2 minutes."""
    try:
        return await web.open_race_page(browser, url, timeout=120)
    except Exception as e:  # recorded: a tab that never loads is a result, not a crash
        return None, {"title": None, "button": None, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}


async def server_only_loads(browser, srv: web.Server, settings: list[dict]) -> dict:
    """The same 20 loads at once with no browser on this machine (:mod:`benchmarks.bare_sessions`): what the
    server alone needs when each student's browser is on its own laptop. First visits fetch every static file;
    return visits only what a browser's cache asks for again."""
    assets = await bare_sessions.record_assets(browser, srv.url + web.query(settings[0]))
    out: dict = {"static_files": len(assets)}
    for visit, paths in (("first_visit", assets), ("return_visit", bare_sessions.return_visit(assets))):
        meter, client = web.CpuMeter(srv.pid), time.process_time()
        meter.start()
        loads = await bare_sessions.many(srv.url, paths, [web.query(s) for s in settings])
        cpu = meter.stop()
        secs = sorted(x["seconds"] for x in loads if x["seconds"] is not None)
        out[visit] = {"loads": loads, "ok": len(secs), "median_seconds": statistics.median(secs) if secs else None,
                      "slowest_seconds": secs[-1] if secs else None,
                      "server_cpu_seconds": cpu["server_main"]["cpu_seconds"],
                      "client_cpu_seconds": time.process_time() - client}
        print(f"{len(settings)} sessions at once without a browser ({visit.replace('_', ' ')}): {len(secs)} loaded, "
              f"slowest {out[visit]['slowest_seconds']:.2f} s; server CPU {cpu['server_main']['cpu_seconds']:.1f} s, "
              f"this client {out[visit]['client_cpu_seconds']:.1f} s", flush=True)
    return out


async def run(a, work: Path, deadline: float) -> dict:
    from playwright.async_api import async_playwright

    base = dict(web.QUICK_QUERY if a.quick else {})
    half = a.tabs // 2
    settings = [base] * (a.tabs - half) + [{**base, "seed": str(i)} for i in range(1, half + 1)]
    out: dict = {"tabs": a.tabs, "settings": [web.query(s) for s in settings]}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=web.CHROMIUM, args=web.CHROMIUM_ARGS)
        with web.streamlit_server(work / "store-baseline", work / "server-baseline.log") as srv:
            out["baseline"] = await one_race(browser, srv.url + web.query(base), deadline - time.perf_counter())
        one = out["baseline"]["verdict"]
        print(f"baseline: one race alone, click -> verdict {one} s", flush=True)

        with web.streamlit_server(work / "store-load", work / "server-load.log") as srv, \
                web.RssSampler(srv.pid) as rss:
            page, cold = await web.open_race_page(browser, srv.url + web.query(base))
            await web.wait_idle(page)
            await page.context.close()
            out["warmup_load"] = cold
            print(f"warm-up load (cold server): button after {cold['button']:.2f} s", flush=True)
            out["server_only_loads"] = await server_only_loads(browser, srv, settings)

            meter = web.CpuMeter(srv.pid)  # who does the work of 20 loads at once: the server or the browsers
            meter.start()
            opened = await asyncio.gather(*(open_tab(browser, srv.url + web.query(s)) for s in settings))
            out["page_load_cpu"] = meter.stop()
            loads = [t for _, t in opened]
            out["page_loads"] = loads
            ok = sorted(t["button"] for t in loads if t["button"] is not None)
            cpu = out["page_load_cpu"]
            print(f"{a.tabs} tabs opened at once: {len(ok)} loaded; slowest button after {max(ok, default=0):.2f} s, "
                  f"median {ok[len(ok) // 2] if ok else float('nan'):.2f} s; CPU meanwhile: server process "
                  f"{cpu['server_main']['cpu_seconds']:.1f} s, Chromium {cpu['chromium']['cpu_seconds']:.1f} s",
                  flush=True)
            loaded = [s for (pg, _), s in zip(opened, settings) if pg is not None]
            pages = [pg for pg, _ in opened if pg is not None]
            await asyncio.gather(*(web.wait_idle(pg, timeout=300) for pg in pages))

            t0 = time.perf_counter()
            clicks = await asyncio.gather(*(web.press_train(pg) for pg in pages))
            left = deadline - time.perf_counter()
            races = await asyncio.gather(*(web.watch_race(pg, t, left, polling_ms=250) for pg, t in zip(pages, clicks)))
            done = [t - t0 + r["verdict"] for r, t in zip(races, clicks) if r["verdict"] is not None]
            out["races"] = [{"query": web.query(s), **r} for s, r in zip(loaded, races)]
            out["finished"] = len(done)
            out["total_seconds"] = max(done) if len(done) == len(races) else None
            print(f"{len(done)} of {a.tabs} tabs saw their verdict; last after "
                  f"{max(done) if done else float('nan'):.1f} s", flush=True)
        out["server_peak_rss_mb"] = rss.peak / 2**20
        out["server_peak_processes"] = rss.peak_processes
        await browser.close()
    results = ResultStore(work / "store-load" / "results.sqlite").all()
    ids = {r.extras["id"] for r in results if r.completed}
    out["store"] = {"finished_races": len(ids), "rows": len(results),
                    "seeds": sorted(r.config.seed for r in results if r.completed)}
    out["expected_races"] = len({json.dumps(s, sort_keys=True) for s in settings})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny races; writes to a temp folder")
    ap.add_argument("--tabs", type=int, default=20, help="browser contexts (default 20; half default settings)")
    ap.add_argument("--max-minutes", type=float, default=60, help="stop by itself after this long (default 60)")
    ap.add_argument("--out", type=Path, help="where to write the JSON (default benchmarks/results/load.json)")
    a = ap.parse_args()
    why = web.check_chromium()
    if why:
        print(f"skipped: {why}")
        return 0
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    deadline = t_start + a.max_minutes * 60
    with tempfile.TemporaryDirectory(prefix="tl-bench-load-") as tmp:
        out = asyncio.run(run(a, Path(tmp), deadline))
    one, total = out["baseline"]["verdict"], out["total_seconds"]
    if one and total:
        out["ratio_to_one_race"] = total / one
        out["ratio_per_distinct_race"] = total / (one * out["expected_races"])
        print(f"total {total:.1f} s = {out['ratio_to_one_race']:.2f}x one race ({one:.1f} s) = "
              f"{out['ratio_per_distinct_race']:.2f}x per distinct race ({out['expected_races']} races)")
    print(f"server peak RSS {out['server_peak_rss_mb']:.0f} MB over {out['server_peak_processes']} processes; "
          f"store: {out['store']['finished_races']} finished races (seeds {out['store']['seeds']})")
    bare = out["server_only_loads"]
    checks = {"every page load < 2 s": all(t["button"] is not None and t["button"] < 2.0 for t in out["page_loads"]),
              "without browsers on this machine: every return visit < 2 s": (
                  bare["return_visit"]["ok"] == a.tabs and bare["return_visit"]["slowest_seconds"] < 2.0),
              "without browsers on this machine: every first visit < 2 s": (
                  bare["first_visit"]["ok"] == a.tabs and bare["first_visit"]["slowest_seconds"] < 2.0),
              "every tab saw its verdict": out["finished"] == a.tabs,
              f"store holds the {out['expected_races']} distinct finished races": (
                  out["store"]["finished_races"] == out["expected_races"] == out["store"]["rows"])}
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    out.update(checks=checks, quick=a.quick, when=time.strftime("%Y-%m-%d %H:%M"), loadavg_before=load_before,
               loadavg_after=os.getloadavg(), bench_wall_seconds=time.perf_counter() - t_start,
               cpus=os.cpu_count())
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    path = a.out or (Path(tempfile.gettempdir()) / "tl-bench" / "load.json" if a.quick else RESULTS / "load.json")
    write_results(path, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
