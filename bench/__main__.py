"""`make bench`: Consent Gate's verify path against a bare Flask endpoint, served the same way, in one run.

Both are served by gunicorn with the same workers and driven by the same load generator (wrk) with the
same request bodies. Every figure is printed beside its target from DESIGN.md, as a ratio measured in
this run, so the machine's own speed cancels out.
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


def run_wrk(wrk: str, url: str, script: Path, connections: int, seconds: int = SECONDS) -> dict[str, float]:
    """A second to settle at this concurrency, then the measured run."""
    _wrk(wrk, url, script, connections, 1)
    return _wrk(wrk, url, script, connections, seconds)


def _wrk(wrk: str, url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    threads = min(connections, 2)
    out = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = parse_duration(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = parse_duration(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests against {url}:\n{out}")
    return {"rps": rps, "p50": p50, "p99": p99}


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
        try:
            print(f"[{kind}] warming up both servers ...", flush=True)
            warm(wrk, f"{public}/v1/verifications", single_script)
            warm(wrk, f"http://127.0.0.1:{bare_port}/v1/verifications", single_script)
            for connections in (32, 1):
                print(f"[{kind}] wrk {connections} connections, {ROUNDS} rounds ...", flush=True)
                verify, bare_runs = [], []
                for _ in range(ROUNDS):  # interleaved, so that both see the machine's same moods
                    verify.append(run_wrk(wrk, f"{public}/v1/verifications", single_script, connections))
                    bare_runs.append(
                        run_wrk(wrk, f"http://127.0.0.1:{bare_port}/v1/verifications", single_script, connections)
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
