"""`make bench`: Consent Gate's verify path against a bare Flask endpoint, served the same way, in one run.

Both are served by gunicorn with the same workers and driven by the same load generator (wrk) with the
same request bodies. Every figure is printed beside its target from DESIGN.md, as a ratio measured in
this run, so the machine's own speed cancels out. Beside them, for information, the CPU each verification
costs the app and its database against a bare request's (bench/cpu.py), and what the machine's cores did
meanwhile: what is left between the servers' CPU and the cores is the machine's noise, not the service.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.cpu import CpuMeter, not_other_database, postmaster_of

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SEEDED = int(os.environ.get("BENCH_SUBJECTS", "2000"))
GROWTH = (10_000, int(os.environ.get("BENCH_GROWTH_TOTAL", "1000000")))
PG_ADMIN = os.environ.get("CONSENT_GATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

LUA = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian's packages ...", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )
    return shutil.which("wrk") or "wrk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not ready: {url}")


def serve(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}/healthz", process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def parse_duration(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def warm(wrk: str, url: str, script: Path) -> None:
    """Drive a fresh server until it is in its steady state: every worker has seen the key and the tokens
    (a signature verified once is not checked again; a gate sees the same people every day)."""
    _wrk(wrk, url, script, 32, WARMUP)


def run_wrk(
    wrk: str, url: str, script: Path, connections: int, seconds: int = SECONDS, meter: CpuMeter | None = None
) -> dict[str, float]:
    """A second to settle at this concurrency, then the measured run (with the servers' CPU per request
    over it, when given a meter)."""
    _wrk(wrk, url, script, connections, 1)
    if meter is None:
        return _wrk(wrk, url, script, connections, seconds)
    before = meter.read()
    result = _wrk(wrk, url, script, connections, seconds)
    return {**result, **meter.per_request(before, meter.read(), int(result["requests"]))}


def _wrk(wrk: str, url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    threads = min(connections, 2)
    out = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in ", out).group(1))  # type: ignore[union-attr]
    p50 = parse_duration(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = parse_duration(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests against {url}:\n{out}")
    return {"rps": rps, "p50": p50, "p99": p99, "requests": requests}


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds."""
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def write_script(folder: Path, name: str, bodies: list[str], key: str) -> Path:
    body_file = folder / f"{name}.jsonl"
    body_file.write_text("\n".join(bodies) + "\n")
    script = folder / f"{name}.lua"
    script.write_text(LUA % {"bodies": body_file, "key": key})
    return script


def make_app(url: str, instance: Path, public_url: str) -> Any:
    from service import create_app
    from service.db.migrate import upgrade

    app = create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "PUBLIC_URL": public_url,
            "ENV": "development",
            "DB_TIMEOUT_MS": 600_000,  # bulk seeding runs long statements
        }
    )
    upgrade(app.extensions["consent_gate.engine"])
    return app


def local_postmaster() -> int | None:
    """The PostgreSQL server's postmaster, when it runs on this machine (found through a backend's parent)."""
    import psycopg

    with psycopg.connect(PG_ADMIN) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        return postmaster_of(int(row[0])) if row else None


def backend_run(kind: str, wrk: str, folder: Path, results: dict[str, Any]) -> None:
    from bench.seed import bulk_subjects, drop_pg_database, new_pg_database, seed
    from service.server import WORKER_TMP_DIR  # the same server settings for both

    instance = folder / f"instance-{kind}"
    instance.mkdir()
    pg_name = None
    if kind == "sqlite":
        url = f"sqlite:///{instance}/bench.sqlite3"
    else:
        pg_name = new_pg_database(PG_ADMIN)
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + pg_name
    app_port, bare_port = free_port(), free_port()
    public = f"http://127.0.0.1:{app_port}"
    try:
        app = make_app(url, instance, public)
        print(f"[{kind}] seeding {SEEDED} people with consent ...", flush=True)
        data = seed(app, SEEDED)
        env = {
            **os.environ,
            "CONSENT_GATE_DATABASE_URL": url,
            "CONSENT_GATE_INSTANCE_PATH": str(instance),
            "CONSENT_GATE_PUBLIC_URL": public,
            "CONSENT_GATE_ENV": "development",
        }
        single = [json.dumps({"purpose": "door_access", "token": t}) for t in data["tokens"]]
        items = [json.loads(b) for b in single]
        batch = [json.dumps({"items": [items[(i + j) % len(items)] for j in range(100)]}) for i in range(0, 1000, 100)]
        single_script = write_script(folder, f"{kind}-single", single, data["key"])
        batch_script = write_script(folder, f"{kind}-batch", batch, data["key"])
        server = serve(
            [
                str(BIN / "consent-gate"),
                "serve",
                "--port",
                str(app_port),
                "--workers",
                str(WORKERS),
                "--threads",
                str(THREADS),
            ],
            env,
            app_port,
            folder / f"{kind}-app.log",
        )
        bare = serve(
            [
                str(BIN / "gunicorn"),
                "-w",
                str(WORKERS),
                "--threads",
                str(THREADS),
                "-b",
                f"127.0.0.1:{bare_port}",
                *(["--worker-tmp-dir", WORKER_TMP_DIR] if os.path.isdir(WORKER_TMP_DIR) else []),
                "bench.bare:app",
            ],
            env,
            bare_port,
            folder / f"{kind}-bare.log",
        )
        if pg_name:
            postmaster = local_postmaster()
            if postmaster is None:
                print(f"[{kind}] PostgreSQL is not on this machine: its CPU is not measured", flush=True)
            app_meter = CpuMeter(server.pid, postmaster, not_other_database(pg_name))
        else:
            app_meter = CpuMeter(server.pid, db_in_app=True)
        bare_meter = CpuMeter(bare.pid)
        try:
            print(f"[{kind}] warming up both servers ...", flush=True)
            warm(wrk, f"{public}/v1/verifications", single_script)
            warm(wrk, f"http://127.0.0.1:{bare_port}/v1/verifications", single_script)
            for connections in (32, 1):
                print(f"[{kind}] wrk {connections} connections, {ROUNDS} rounds ...", flush=True)
                verify, bare_runs = [], []
                for _ in range(ROUNDS):  # interleaved, so that both see the machine's same moods
                    verify.append(
                        run_wrk(wrk, f"{public}/v1/verifications", single_script, connections, meter=app_meter)
                    )
                    bare_runs.append(
                        run_wrk(
                            wrk,
                            f"http://127.0.0.1:{bare_port}/v1/verifications",
                            single_script,
                            connections,
                            meter=bare_meter,
                        )
                    )
                results[f"{kind}-verify-{connections}"] = median_run(verify)
                results[f"{kind}-bare-{connections}"] = median_run(bare_runs)
            print(f"[{kind}] batch of 100 ...", flush=True)
            batch_result = run_wrk(wrk, f"{public}/v1/verifications/batch", batch_script, 32)
            results[f"{kind}-batch"] = {**batch_result, "decisions": batch_result["rps"] * 100}
            if kind == "postgresql":
                for total in GROWTH:
                    print(f"[{kind}] growing to {total} people ...", flush=True)
                    bulk_subjects(app, data["org_id"], total)
                    results[f"growth-{total}"] = run_wrk(wrk, f"{public}/v1/verifications", single_script, 1)
        finally:
            stop(server)
            stop(bare)
        app.extensions["consent_gate.engine"].dispose()
        results[f"{kind}-offline"] = offline_run(app, data, public) if kind == "sqlite" else None
    finally:
        if pg_name:
            drop_pg_database(PG_ADMIN, pg_name)


def offline_run(app: Any, data: dict[str, Any], public: str) -> dict[str, float]:
    """The offline verifier against a bare PyJWT ES256 decode of the same tokens, in this process."""
    import jwt

    from service.offline import OfflineVerifier

    client = app.test_client()

    def fetch(url: str, _timeout: float) -> bytes:
        return bytes(client.get(url[len(public) :]).data)

    verifier = OfflineVerifier(public, audience=data["org_id"], fetch=fetch)
    tokens = data["tokens"][:500]
    public_keys = app.extensions["consent_gate.keyring"].current().public_keys
    key = next(iter(public_keys.values()))
    assert all(verifier.verify(t, purpose="door_access").allowed for t in tokens)

    def rate(call: Any) -> float:
        best = 0.0
        for _ in range(3):
            started = time.perf_counter()
            for token in tokens:
                call(token)
            best = max(best, len(tokens) / (time.perf_counter() - started))
        return best

    bare = rate(lambda t: jwt.decode(t, key, algorithms=["ES256"], audience=data["org_id"]))
    offline = rate(lambda t: verifier.verify(t, purpose="door_access"))
    return {"bare": bare, "offline": offline}


def report(results: dict[str, Any]) -> str:
    rows = ["| measure | result | target | met |", "|---|---|---|---|"]

    def line(measure: str, value: str, target: str, met: bool) -> None:
        rows.append(f"| {measure} | {value} | {target} | {'yes' if met else 'NO'} |")

    def info(measure: str, value: str) -> None:
        rows.append(f"| {measure} | {value} | info | - |")

    for kind in ("sqlite", "postgresql"):
        if f"{kind}-verify-32" not in results:
            continue
        v32, b32 = results[f"{kind}-verify-32"], results[f"{kind}-bare-32"]
        v1, b1 = results[f"{kind}-verify-1"], results[f"{kind}-bare-1"]
        ratio = v32["rps"] / b32["rps"]
        line(
            f"{kind}: verify / bare throughput, 32 conn",
            f"{v32['rps']:.0f} / {b32['rps']:.0f} req/s = {ratio:.2f}x",
            ">= 0.5x",
            ratio >= 0.5,
        )
        p99_ratio = v32["p99"] / b32["p99"]
        line(
            f"{kind}: p50 / p99 at 32 conn (bare)",
            f"{v32['p50']:.2f} / {v32['p99']:.2f} ms ({b32['p50']:.2f} / {b32['p99']:.2f} ms) = p99 {p99_ratio:.2f}x",
            "p99 <= 2x bare",
            p99_ratio <= 2.0,
        )
        line(
            f"{kind}: p50 / p99 at 1 conn (bare)",
            f"{v1['p50']:.2f} / {v1['p99']:.2f} ms ({b1['p50']:.2f} / {b1['p99']:.2f} ms)",
            "p99 <= 2 ms",
            v1["p99"] <= 2.0,
        )
        batch = results[f"{kind}-batch"]["decisions"] / v32["rps"]
        line(
            f"{kind}: batch (100/request) / single decisions per second",
            f"{results[f'{kind}-batch']['decisions']:.0f} / {v32['rps']:.0f} = {batch:.1f}x",
            ">= 10x",
            batch >= 10,
        )
        for connections in (32, 1):
            verify, bare = results[f"{kind}-verify-{connections}"], results[f"{kind}-bare-{connections}"]
            info(
                f"{kind}: CPU per verification at {connections} conn, app + db (bare)",
                cpu_per_request(kind, verify, bare),
            )
        db = kind != "sqlite" and "db_cpu_us" in v32  # a database of its own, measured
        busy = f"{cores_busy(v32, db=db)} of {os.cpu_count()} ({cores_busy(b32, db=False)})"
        if max(v32["steal_cores"], b32["steal_cores"]) >= 0.005:  # the hypervisor's share, on a VM
            busy += f", steal {v32['steal_cores']:.2f} ({b32['steal_cores']:.2f})"
        info(f"{kind}: cores busy at 32 conn, app{' + db' if db else ''} + wrk + rest (bare: app + wrk + rest)", busy)
    offline = results.get("sqlite-offline")
    if offline:
        ratio = offline["offline"] / offline["bare"]
        line(
            "offline verifier / bare PyJWT ES256 decode",
            f"{offline['offline']:.0f} / {offline['bare']:.0f} per s = {ratio:.2f}x",
            ">= 0.8x",
            ratio >= 0.8,
        )
    small, large = (results.get(f"growth-{n}") for n in GROWTH)
    if small and large:
        ratio = large["p50"] / small["p50"]
        line(
            f"postgresql: verify p50 at {GROWTH[1]:,} vs {GROWTH[0]:,} people (1 conn)",
            f"{large['p50']:.2f} / {small['p50']:.2f} ms = {ratio:.2f}x",
            "<= 1.5x",
            ratio <= 1.5,
        )
    return "\n".join(rows)


def cpu_per_request(kind: str, verify: dict[str, float], bare: dict[str, float]) -> str:
    """CPU per request, medians over the rounds: "410 + 230 = 640 us (bare 180 us) = 3.56x bare"."""
    app, base = verify["app_cpu_us"], bare["app_cpu_us"]
    if kind == "sqlite":
        return f"{app:.0f} us + db in app (bare {base:.0f} us) = {app / base:.2f}x bare"
    if "db_cpu_us" not in verify:
        return f"{app:.0f} us + db not measured (bare {base:.0f} us) = app {app / base:.2f}x bare"
    db = verify["db_cpu_us"]
    return f"{app:.0f} + {db:.0f} = {app + db:.0f} us (bare {base:.0f} us) = {(app + db) / base:.2f}x bare"


def cores_busy(run: dict[str, float], *, db: bool) -> str:
    """What the machine's cores did over a run: the servers and wrk (CPU per request x requests per second),
    and the rest of the machine's busy time (other processes, interrupts not charged to a process)."""
    parts = [run["app_cpu_us"], *([run["db_cpu_us"]] if db else []), run["wrk_cpu_us"]]
    cores = [us * run["rps"] / 1e6 for us in parts]
    text = " + ".join(f"{value:.2f}" for value in [*cores, run["busy_cores"] - sum(cores)])
    return f"{text} = {run['busy_cores']:.2f}"


def main() -> None:
    wrk = ensure_wrk()
    results: dict[str, Any] = {}
    kinds = os.environ.get("BENCH_BACKENDS", "sqlite,postgresql").split(",")
    tmp = Path(tempfile.mkdtemp(prefix="consent-gate-bench-"))
    print(f"working in {tmp}", flush=True)
    try:
        for kind in kinds:
            backend_run(kind, wrk, tmp, results)
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
    table = report(results)
    print()
    kind = f"{WORKERS} workers x {THREADS} threads (gthread)" if THREADS > 1 else f"{WORKERS} sync workers"
    print(f"Consent Gate benchmark: {os.cpu_count()} cores, gunicorn {kind}, wrk {SECONDS} s per run")
    print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    (out / "latest.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
