"""What the metrics cost: the sampler's CPU at 10 and 100 services, the request log's CPU per
request, the engine figures' CPU per instance, and the idle memory of `baepo up`.

1. The sampler, against a real HAProxy (`HAProxyRouter`) routing N services, each a backend
   with two servers on loopback addresses where nothing listens (no health checks: HAProxy
   sends them nothing). For `--seconds`, `Sampler` reads `router.load()` once a second and
   feeds a real `Scaling` and `MetricsStore`, as in `baepo up`. Printed: this process's CPU
   time over the wall time, in % of one core, and HAProxy's (its worker answers `show stat`);
   reference in the same run: the same loop over a `load()` that hands back the last reading
   without asking HAProxy, i.e. the sampler's own work (deltas, autoscaler, store).
2. The request log: 100,000 of HAProxy's datagrams parsed and recorded into the store
   in-process: CPU per request, and what 1,000 requests/s cost.
3. The engine's figures: one `UsageReader` reading (a list of the instances, one one-shot
   stats call each) of N running containers on the real engine: CPU and wall time, with
   every service busy (each instance asked every 10 s) and idle (asked once a minute).
4. `baepo up` on a fresh data directory (no services): RSS 6 s after start, after a first
   API request, then after the first `GET /metrics` (prometheus-client is imported then, not
   at start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import BaepoProcess, free_port

from baepo.clock import SystemClock
from baepo.control import Bounds, Scaling
from baepo.metrics import MetricsStore, Sampler, UsageReader
from baepo.router import (
    HAProxyRouter,
    LocalCA,
    Route,
    RouterSettings,
    RoutingTable,
    Server,
    ServiceStats,
    parse_access_record,
)
from baepo.runtime import LABEL_INSTANCE, LABEL_SERVICE, ContainerSpec, DockerEngine

TICK = 100  # Linux clock ticks per second, as /proc/<pid>/stat counts


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def sample_for(
    load: Callable[[], Mapping[str, ServiceStats]], services: int, seconds: float
) -> float:
    """Run a Sampler over `load` for `seconds`; this process's CPU in % of a core."""
    clock = SystemClock()
    scaling = Scaling(clock)
    store = MetricsStore(clock)
    bounds = Bounds(min_instances=1, max_instances=10, max_concurrency=100)
    for i in range(services):
        scaling.want(f"s{i}", bounds, ready=2)  # each service has its autoscaler, as in Baepo
    sampler = Sampler(load, clock, scaling.observe, record=store.record_samples)

    async def run() -> float:
        task = asyncio.create_task(sampler.run())
        await asyncio.sleep(1.5)  # the first readings (thread start, imports) left out
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        used = time.process_time() - cpu
        elapsed = time.monotonic() - wall
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return 100 * used / elapsed

    return asyncio.run(run())


def sampler_cost(root: Path, services: int, seconds: float) -> tuple[float, float, float]:
    """(sampler %, HAProxy worker %, reference %) of a core, with `services` routed."""
    router = HAProxyRouter(
        RouterSettings(
            state_dir=root / f"router-{services}",
            domain="bench.test",
            http_port=free_port(),
            https_port=free_port(),
            run_dir=root / f"run-{services}",
        ),
        LocalCA(root / "ca", SystemClock()),
        SystemClock(),
    )
    router.start()
    try:
        router.apply(
            RoutingTable(
                tuple(
                    Route(
                        f"s{i}",
                        (f"s{i}.bench.test",),
                        tuple(Server(n, f"127.0.0.{n}:{1000 + i}") for n in ("2", "3")),
                    )
                    for i in range(services)
                )
            )
        )
        assert len(router.load()) == services
        worker = router.processes().workers[0]
        before = process_cpu_s(worker)
        started = time.monotonic()
        sampler = sample_for(router.load, services, seconds)
        haproxy = 100 * (process_cpu_s(worker) - before) / (time.monotonic() - started)
        reading = router.load()
        reference = sample_for(lambda: reading, services, seconds)
        return sampler, haproxy, reference
    finally:
        router.stop()


def usage_cost(instances: int, rounds: int = 3) -> tuple[float, float, float]:
    """One `UsageReader` reading of `instances` running containers (busybox httpd) on the real
    engine, best of `rounds`: (CPU ms and wall s when every service is busy, CPU ms of a
    reading between two of an idle service's, which only lists the instances)."""
    engine = DockerEngine(os.environ.get("DOCKER_HOST", "unix:///run/baepo-engine/docker.sock"))
    labels = {"baepo.bench": uuid.uuid4().hex}
    network = engine.ensure_network(f"baepo-bench-{labels['baepo.bench'][:8]}", labels).name
    try:
        for i in range(instances):
            engine.run(
                ContainerSpec(
                    image="baepo-test/hello:1",
                    port=8080,
                    network=network,
                    labels={**labels, LABEL_SERVICE: f"s{i % 10}", LABEL_INSTANCE: f"i{i}"},
                )
            )

        def best_of(reader: UsageReader) -> tuple[float, float]:
            best = (math.inf, math.inf)
            for _ in range(rounds):
                cpu, wall = time.process_time(), time.monotonic()
                found = asyncio.run(reader.read())
                assert found is not None and len(found) == instances, found
                best = min(best, (1000 * (time.process_time() - cpu), time.monotonic() - wall))
            return best

        busy_ms, busy_s = best_of(UsageReader(engine, labels, SystemClock(), read_timeout_s=120))
        idle = UsageReader(engine, labels, SystemClock(), read_timeout_s=120, busy=lambda s: False)
        asyncio.run(idle.read())  # the first reading asks every instance
        idle_ms, _ = best_of(idle)
        return busy_ms, busy_s, idle_ms
    finally:
        for instance in engine.list(labels):
            engine.remove(instance.id)
        engine.remove_network(network)


def request_log_cost(count: int = 100_000) -> float:
    """CPU µs to parse and record one request's datagram."""
    store = MetricsStore(SystemClock())
    datagrams = [f"svc_s{i % 100} 200 {i % 97} {i % 101}\n".encode() for i in range(count)]
    started = time.process_time()
    for datagram in datagrams:
        record = parse_access_record(datagram)
        assert record is not None
        store.record_request(record)
    return 1e6 * (time.process_time() - started) / count


def idle_memory(root: Path) -> tuple[float, float, float]:
    """RSS (MiB) of a fresh `baepo up` 6 s after it answers, after a first API request (an
    authenticated list of services), and after the first `GET /metrics`."""
    (root / "baepo").mkdir()
    server = BaepoProcess(root / "baepo" / "data")
    server.start()
    try:
        assert server.process is not None
        pid = server.process.pid
        time.sleep(6)
        idle = rss_mib(pid)
        with server.api() as api:
            api.get("/api/v1/services").raise_for_status()
            time.sleep(1)
            asked = rss_mib(pid)
            api.get("/metrics").raise_for_status()
        time.sleep(1)
        return idle, asked, rss_mib(pid)
    finally:
        server.stop()
        server.stop_data_plane()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--services", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--instances", type=int, nargs="*", default=[10, 30])
    parser.add_argument("--skip-sampler", action="store_true", help="only the other figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baepo-bm-", dir="/tmp") as tmp:
        root = Path(tmp)
        print(f"sampler, one reading a second for {args.seconds:.0f} s (% of one core):")
        print("services  sampler  HAProxy's show stat  sampler without HAProxy (reference)")
        for n in [] if args.skip_sampler else args.services:
            sampler, haproxy, reference = sampler_cost(root, n, args.seconds)
            print(f"{n:>8}  {sampler:>6.2f}%  {haproxy:>18.2f}%  {reference:>8.2f}%")
        per_request = request_log_cost()
        print(
            f"request log: {per_request:.1f} us CPU a request "
            f"({per_request * 1000 / 1e4:.2f}% of a core at 1,000 requests/s)"
        )
        for n in args.instances:
            busy_ms, busy_s, idle_ms = usage_cost(n)
            # An idle service's instances: listed every 10 s, asked once a minute.
            idle_share = (idle_ms + (busy_ms - idle_ms) / 6) / 100
            print(
                f"engine usage, {n} instances: {busy_ms:.0f} ms CPU and {busy_s:.1f} s a reading, "
                f"{busy_ms / 100:.2f}% of a core busy (a reading every 10 s), "
                f"{idle_share:.2f}% idle (listed every 10 s, asked every 60 s)"
            )
        idle, asked, scraped = idle_memory(root)
        print(
            f"baepo up, no services: {idle:.1f} MiB idle, {asked:.1f} MiB after a first API "
            f"request, {scraped:.1f} MiB after the first GET /metrics"
        )


if __name__ == "__main__":
    main()
