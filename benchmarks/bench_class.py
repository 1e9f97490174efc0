"""`make class` under a class's first visits: 20 page loads at once through Caddy, against Streamlit served directly.

One `scripts/class_server.py` (what `make class` runs: Streamlit on 127.0.0.1 with Caddy in front, https) with a
fresh results store. The same 20 loads as `bench_load`'s browser-free ones (:mod:`benchmarks.bare_sessions`:
every static file a real Chromium fetched, the websocket script run, the images; no rendering; 10 default
settings, 10 with seeds 1..10) go, in alternating rounds, once straight to Streamlit's own port (http, every
static file through Python) and once through Caddy (https: TLS handshakes included, ``/static/`` from disk),
first visits then return visits (a browser's cache holds ``/static/``). Both paths hit the same server process
in the same minutes, so the ratio is fair on a busy machine even when the seconds are not quiet-machine figures.
CPU per process tree (Streamlit, Caddy) and of this client is recorded. Writes ``benchmarks/results/class.json``.

    python -m benchmarks.bench_class [--rounds 2] [--tabs 20] [--race]

``--race`` adds one default race pressed in Chromium straight at Streamlit and one through Caddy (different
seeds, so neither is answered from the store): the race must not be slower behind the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import bare_sessions, web, write_results

RESULTS = Path(__file__).parent / "results"


def start_front(data: Path, log: Path) -> tuple[subprocess.Popen, int, int]:
    """`scripts/class_server.py` on free ports; returns (process, https port, Streamlit's port) once both answer."""
    port, sport = web.free_port(), web.free_port()
    env = {**os.environ, "TL_RACE_DATA": str(data), "TL_RACE_BACKEND": "process"}
    proc = subprocess.Popen([sys.executable, "scripts/class_server.py", "--port", str(port), "--host", "localhost",
                             "--streamlit-port", str(sport)], cwd=web.ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while not (data / "class" / "address.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"class_server did not start (exit {proc.poll()}); see {log}")
        time.sleep(0.5)
    return proc, port, sport


def pids(front: int) -> dict[str, int]:
    """The Streamlit and Caddy processes the launcher started."""
    kids = [p for p in web.processes().values() if p.ppid == front]
    return {name: next(p.pid for p in kids if name in p.cmdline) for name in ("streamlit", "caddy")}


async def loads(base: str, paths: list[str], queries: list[str], who: dict[str, int]) -> dict:
    meters = {k: web.CpuMeter(pid) for k, pid in who.items()}
    for m in meters.values():
        m.start()
    client = time.process_time()
    got = await bare_sessions.many(base, paths, queries)
    cpu = {k: m.stop()["server"]["cpu_seconds"] for k, m in meters.items()}
    secs = sorted(x["seconds"] for x in got if x["seconds"] is not None)
    static = [x["static_seconds"] for x in got if x["seconds"] is not None]
    return {"ok": len(secs), "median_seconds": statistics.median(secs) if secs else None,
            "slowest_static_seconds": max(static, default=None),
            "slowest_seconds": secs[-1] if secs else None, "cpu_seconds": cpu,
            "client_cpu_seconds": time.process_time() - client,
            "errors": [x["error"] for x in got if x["seconds"] is None][:3]}


async def idle_worker(server_pid: int, timeout: float = 900) -> None:
    """Until no job's worker runs under the server (only the fork server itself, if any, is left)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fork = [p for p in web.tree(server_pid, web.processes()) if "forkserver" in p.cmdline]
        if len(fork) <= 1:
            return
        await asyncio.sleep(1.0)


async def race_pair(direct: str, front: str, timeout: float, query: str = "", who: dict[str, int] | None = None,
                    front_first: bool = False, seeds: tuple[int, int] = (11, 12)) -> dict:
    """The default race pressed in a browser straight at Streamlit, then through Caddy (seeds 11 and 12: the
    same work, nothing answered from the store): click -> first points and -> verdict, and their ratio."""
    from playwright.async_api import async_playwright

    out: dict = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=web.CHROMIUM,
                                          args=[*web.CHROMIUM_ARGS, "--ignore-certificate-errors"])
        order = [("direct", direct, seeds[0]), ("front", front, seeds[1])]
        for name, base, seed in reversed(order) if front_first else order:
            if who:
                await idle_worker(who["streamlit"])  # the last race's worker exports its models after the verdict
            page, load = await web.open_race_page(browser, f"{base}/?seed={seed}" + (f"&{query}" if query else ""))
            await web.wait_idle(page)
            meters = {k: web.CpuMeter(pid) for k, pid in (who or {}).items()}
            for m in meters.values():
                m.start()
            t = await web.press_train(page)
            out[name] = {**await web.watch_race(page, t, timeout), "seed": seed, "page_load": load}
            used = {k: m.stop() for k, m in meters.items()}  # the server's tree holds the race's worker
            out[name]["cpu_seconds"] = {k: u["server"]["cpu_seconds"] for k, u in used.items()}
            if used:  # the server process alone (its page runs and websocket), and the browser
                out[name]["cpu_seconds"]["streamlit_main"] = used["streamlit"]["server_main"]["cpu_seconds"]
                out[name]["cpu_seconds"]["chromium"] = next(iter(used.values()))["chromium"]["cpu_seconds"]
            await page.context.close()
            print(f"race in the browser, {name}: click -> verdict {out[name]['verdict']} s; CPU "
                  f"{out[name]['cpu_seconds']}", flush=True)
        await browser.close()
    if out["direct"]["verdict"] and out["front"]["verdict"]:
        out["ratio_front_to_direct"] = out["front"]["verdict"] / out["direct"]["verdict"]
    return out


async def run(a, work: Path) -> dict:
    from playwright.async_api import async_playwright

    half = a.tabs // 2
    queries = [""] * (a.tabs - half) + [f"?seed={i}" for i in range(1, half + 1)]
    proc, port, sport = start_front(work / "data", work / "class-server.log")
    try:
        who = pids(proc.pid)
        ca = work / "data" / "class" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        bare_sessions.TLS = ssl.create_default_context(cafile=str(ca))  # the certificate is checked
        direct, front = f"http://127.0.0.1:{sport}", f"https://localhost:{port}"
        out: dict = {"tabs": a.tabs, "settings": queries, "direct": direct, "front": front, "rounds": []}
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=web.CHROMIUM,
                                              args=[*web.CHROMIUM_ARGS, "--ignore-certificate-errors"])
            page, cold = await web.open_race_page(browser, front)  # the teacher's tab, through Caddy
            await web.wait_idle(page)
            await page.context.close()
            out["warmup_load_through_front"] = cold
            assets = await bare_sessions.record_assets(browser, direct)
            await browser.close()
        out["warm"] = await web.wait_warm(who["streamlit"], timeout=30)
        out["static_files"] = len(assets)
        for r in range(a.rounds):
            row = {}
            for visit, paths in (("first_visit", assets), ("return_visit", bare_sessions.return_visit(assets))):
                order = (("direct", direct), ("front", front)) if r % 2 == 0 else (("front", front), ("direct", direct))
                for name, base in order:
                    row[f"{name}_{visit}"] = res = await loads(base, paths, queries, who)
                    print(f"round {r + 1} {name:6} {visit.replace('_', ' '):12}: {res['ok']}/{a.tabs} loaded, "
                          f"slowest {res['slowest_seconds'] or float('nan'):.2f} s; CPU streamlit "
                          f"{res['cpu_seconds']['streamlit']:.1f} s, caddy {res['cpu_seconds']['caddy']:.1f} s, "
                          f"client {res['client_cpu_seconds']:.1f} s", flush=True)
            out["rounds"].append(row)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({**out, "partial": "the loads only: written before the races",
                                     "when": time.strftime("%Y-%m-%d %H:%M"), "loadavg_now": os.getloadavg()},
                                    indent=1))
        if a.race:
            out["races"] = [{"query": a.race_query, "front_first": bool(a.front_first ^ (i % 2)), "seed_offset": i,
                             **await race_pair(direct, front, 1800, a.race_query, who, bool(a.front_first ^ (i % 2)),
                                               seeds=(11 + 2 * i, 12 + 2 * i))}
                            for i in range(a.race_pairs)]
        return out
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tabs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of direct and front (default 2)")
    ap.add_argument("--race", action="store_true", help="also one default race in the browser direct, one through "
                    "Caddy (minutes)")
    ap.add_argument("--race-query", default="", help="settings of those races, e.g. 'train=100&epochs=3' "
                    "(default: the default race)")
    ap.add_argument("--front-first", action="store_true", help="race through Caddy first, then direct")
    ap.add_argument("--race-pairs", type=int, default=1, help="pairs of races, alternating which goes first")
    ap.add_argument("--out", type=Path, help="where to write the JSON (default benchmarks/results/class.json)")
    a = ap.parse_args()
    why = web.check_chromium()
    if why:
        print(f"skipped: {why}")
        return 0
    a.out = a.out or RESULTS / "class.json"
    load_before, t0 = os.getloadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tl-bench-class-") as tmp:
        out = asyncio.run(run(a, Path(tmp)))
    rounds = out["rounds"]
    best = {k: min(r[k]["slowest_seconds"] or float("inf") for r in rounds) for k in (rounds[0] if rounds else {})}
    worst = {k: max(r[k]["slowest_seconds"] or float("inf") for r in rounds) for k in (rounds[0] if rounds else {})}
    out["slowest_seconds_over_rounds"] = worst
    checks = {}
    if rounds:
        checks[f"through Caddy: every first visit of {a.tabs} at once < 2 s (every round)"] = (
            worst["front_first_visit"] < 2.0)
        checks[f"through Caddy: every return visit of {a.tabs} at once < 2 s (every round)"] = (
            worst["front_return_visit"] < 2.0)
    if "races" in out:
        ratios = [r.get("ratio_front_to_direct") for r in out["races"]]
        checks["races in the browser through Caddy within 1.2x of direct"] = all(r is not None and r <= 1.2
                                                                                  for r in ratios)
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    if rounds:
        print(f"first visits, slowest of {a.tabs}: direct {best['direct_first_visit']:.2f}-"
              f"{worst['direct_first_visit']:.2f} s, through Caddy {best['front_first_visit']:.2f}-"
              f"{worst['front_first_visit']:.2f} s")
    out.update(checks=checks, when=time.strftime("%Y-%m-%d %H:%M"), loadavg_before=load_before,
               loadavg_after=os.getloadavg(), bench_wall_seconds=time.perf_counter() - t0, cpus=os.cpu_count(),
               caddy=subprocess.run(["caddy", "version"], capture_output=True, text=True).stdout.strip())
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    path = a.out
    write_results(path, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
