"""Router throughput and p99: Baepo's router vs. nginx as a reverse proxy vs. direct.

One backend (nginx on loopback serving a 1 KB body, like a small app's answer) and three ways
to reach it, each driven by wrk (keep-alive, same threads and connections):
  direct   http://127.0.0.1:<backend>/
  baepo    https through Baepo's router: the HAProxy that `HAProxyRouter` renders and runs,
           with a route for the service and the backend as its one server (in the file)
  baepo-rt the same, to a service whose server was added at runtime (as a deploy adds one)
  nginx    https through nginx as a reverse proxy (upstream keepalive), same certificate,
           as many worker processes as the router has threads (the same CPU budget)
Two loads: a moderate one (8 connections) and a saturating one (32). Prints requests/s,
p99 latency and the ratios. Goals: baepo >= 1.0x nginx's throughput, p99 within 1 ms of
direct.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import free_port

from baepo.clock import SystemClock
from baepo.router import HAProxyRouter, LocalCA, Route, RouterSettings, RoutingTable, Server

HOST = "app.bench.test"
LIVE = "live.bench.test"


def nginx(conf: Path, body: str) -> subprocess.Popen[bytes]:
    conf.write_text(body)
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc


def wait_http(url: str, verify: object = False, host: str | None = None) -> None:
    headers = {"Host": host} if host else {}
    for _ in range(200):
        try:
            if httpx.get(url, verify=verify, headers=headers, timeout=1).status_code == 200:  # type: ignore[arg-type]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def wrk(url: str, seconds: int, connections: int, host: str = HOST) -> tuple[float, float]:
    """(requests/s, p99 ms)."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Host: {host}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return rps, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="baepo-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx workers run as www-data
        (root / "www").mkdir()
        (root / "www/index.html").write_text("x" * 1024)
        backend, proxy_port = free_port(), free_port()
        common = (
            f"pid {root}/%s.pid; error_log {root}/%s.err; worker_processes %d;"
            "events { worker_connections 4096; }"
        )
        procs.append(
            nginx(
                root / "backend.conf",
                common % ("b", "b", 1)
                + f"""
            http {{ access_log off; keepalive_requests 1000000;
              server {{ listen 127.0.0.1:{backend}; root {root}/www; }} }}""",
            )
        )
        wait_http(f"http://127.0.0.1:{backend}/")

        ca = LocalCA(root / "ca", SystemClock())
        router = HAProxyRouter(
            RouterSettings(
                state_dir=root / "router",
                domain="bench.test",
                http_port=free_port(),
                https_port=free_port(),
                run_dir=root / "run",
            ),
            ca,
            SystemClock(),
        )
        router.start()
        router.apply(
            RoutingTable((Route("app", (HOST,), (Server("app-1", f"127.0.0.1:{backend}"),)),))
        )
        # A second service whose server is added at runtime, as a deploy adds instances.
        router.put(Route("live", (LIVE,)))
        router.put(Route("live", (LIVE,), (Server("live-1", f"127.0.0.1:{backend}"),)))
        issued = ca.issue([HOST])
        (root / "proxy.pem").write_text(issued.pem)
        threads = router.settings.threads
        procs.append(
            nginx(
                root / "proxy.conf",
                common % ("p", "p", threads)
                + f"""
            http {{ access_log off; keepalive_requests 1000000;
              upstream app {{ server 127.0.0.1:{backend}; keepalive 64; }}
              server {{ listen 127.0.0.1:{proxy_port} ssl http2;
                ssl_certificate {root}/proxy.pem; ssl_certificate_key {root}/proxy.pem;
                location / {{ proxy_pass http://app; proxy_http_version 1.1;
                              proxy_set_header Connection ""; proxy_set_header Host $host; }}
              }} }}""",
            )
        )
        https = router.settings.https_port
        targets = {
            "direct": (f"http://127.0.0.1:{backend}/", HOST),
            "baepo": (f"https://127.0.0.1:{https}/", HOST),
            "baepo-rt": (f"https://127.0.0.1:{https}/", LIVE),
            "nginx": (f"https://127.0.0.1:{proxy_port}/", HOST),
        }
        for url, host in targets.values():
            wait_http(url, host=host)
        results: dict[tuple[int, str], tuple[float, float]] = {}
        try:
            for _ in range(args.rounds):
                for connections in args.connections:
                    for name, (url, host) in targets.items():
                        rps, p99 = wrk(url, args.seconds, connections, host)
                        best = results.get((connections, name))
                        if best is None or rps > best[0]:
                            results[(connections, name)] = (rps, p99)
        finally:
            router.stop()
            for proc in procs:
                proc.send_signal(signal.SIGQUIT)
                proc.wait(timeout=10)
    print(
        f"router threads = nginx workers = {threads}; 1 KB body; best of {args.rounds} "
        f"rounds of {args.seconds} s; wrk 2 threads"
    )
    print(f"{'conns':>5} {'target':<8} {'requests/s':>12} {'p99':>10}")
    for connections in args.connections:
        for name in targets:
            rps, p99 = results[(connections, name)]
            print(f"{connections:>5} {name:<8} {rps:>12,.0f} {p99:>8.2f}ms")
        baepo, live, nginx_, direct = (
            results[(connections, n)] for n in ("baepo", "baepo-rt", "nginx", "direct")
        )
        print(
            f"{connections:>5} baepo/nginx throughput {baepo[0] / nginx_[0]:.2f}x"
            f" (server added at runtime: {live[0] / nginx_[0]:.2f}x);"
            f" p99 over direct: baepo {baepo[1] - direct[1]:+.2f} ms"
            f" (runtime {live[1] - direct[1]:+.2f} ms), nginx {nginx_[1] - direct[1]:+.2f} ms"
        )


if __name__ == "__main__":
    main()
