"""Registry throughput: Baepo vs. CNCF distribution (Debian's docker-registry), same run.

Two workloads, each pushed (OCI layout → registry) and pulled (registry → OCI layout) with
skopeo, several rounds, best round kept:
  big   one image with a single 100 MB layer
  many  one image with 50 layers of 1 MB
and two with many clients at once (httpx, one connection per client):
  manifests  32 clients PUT 2,000 small manifests (distinct tags) over the same two blobs
  pulls      32 clients GET one 50 MB blob, 4 times each
Also reports Baepo's resident memory: idle after start-up, its peak, and idle after the runs.

With `--s3`: Baepo on the filesystem vs. Baepo on S3 (a SeaweedFS on loopback, started as the
tests start it; blobs streamed through Baepo, and with `--s3-redirect`) in the same run: the
big and many pushes and pulls, and the 32 clients pulling one blob.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.clients import OciLayout
from tests.conftest import BaepoProcess, free_port
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server

MB = 1_000_000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_distribution(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"127.0.0.1:{port}"
    for _ in range(200):
        if (
            subprocess.run(["curl", "-sf", f"http://{host}/v2/"], capture_output=True).returncode
            == 0
        ):
            return proc, host
        time.sleep(0.05)
    raise RuntimeError("docker-registry did not start")


def timed(*cmd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def run_round(
    host: str, creds: list[str], layout: Path, tag: str, work: Path, n: int
) -> tuple[float, float]:
    repo = f"docker://{host}/bench/{tag}-{n}:1"
    push = timed(
        "skopeo",
        "copy",
        "--dest-tls-verify=false",
        *[f"--dest-{c}" for c in creds],
        f"oci:{layout}:{tag}",
        repo,
    )
    out = work / f"pull-{tag}-{n}"
    pull = timed(
        "skopeo",
        "copy",
        "--src-tls-verify=false",
        *[f"--src-{c}" for c in creds],
        repo,
        f"oci:{out}:{tag}",
    )
    shutil.rmtree(out)
    return push, pull


def copy_round(
    targets: dict[str, tuple[str, list[str]]],
    work: Path,
    n: int,
    results: dict[tuple[str, str, str], float],
) -> None:
    """Round `n` of the big and many pushes and pulls against every target (host, skopeo
    credentials), in alternating order; each time kept in `results` if it is the best yet.
    Fresh content every round: skopeo remembers where blobs live and would otherwise mount
    them instead of uploading."""
    layout = OciLayout(work / f"layout-{n}")
    layout.tag(layout.image("amd64", layer_bytes=100 * MB, layers=1), "big")
    layout.tag(layout.image("amd64", layer_bytes=1 * MB, layers=50), "many")
    order = sorted(targets.items(), reverse=bool(n % 2))
    for tag in ("big", "many"):
        for name, (host, creds) in order:
            push, pull = run_round(host, creds, layout.root, tag, work, n)
            for kind, secs in (("push", push), ("pull", pull)):
                key = (name, tag, kind)
                results[key] = min(results.get(key, float("inf")), secs)
    shutil.rmtree(layout.root)


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    started.raise_for_status()
    location = started.headers["location"]  # distribution's carries a _state query: keep it
    joiner = "&" if "?" in location else "?"
    client.put(f"{location}{joiner}digest={digest}", content=data).raise_for_status()
    return digest


def manifest_puts(url: str, auth: tuple[str, str] | None, clients: int, total: int) -> float:
    """Manifests per second, `clients` at once, each a distinct tag over the same blobs."""
    repo = "bench/manifests"
    with httpx.Client(base_url=url, auth=auth, timeout=60) as setup:
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        layer = os.urandom(1024)
        descriptors = [
            ("application/vnd.oci.image.config.v1+json", config, push_blob(setup, repo, config)),
            ("application/vnd.oci.image.layer.v1.tar", layer, push_blob(setup, repo, layer)),
        ]
    (ctype, cdata, cdigest), (ltype, ldata, ldigest) = descriptors

    def document(n: int) -> bytes:
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": ctype, "digest": cdigest, "size": len(cdata)},
                "layers": [{"mediaType": ltype, "digest": ldigest, "size": len(ldata)}],
                "annotations": {"n": str(n)},
            }
        ).encode()

    def worker(first: int) -> None:
        with httpx.Client(base_url=url, auth=auth, timeout=60) as client:
            for n in range(first, total, clients):
                client.put(
                    f"/v2/{repo}/manifests/t{n}",
                    content=document(n),
                    headers={"Content-Type": OCI_MANIFEST},
                ).raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    return total / (time.perf_counter() - start)


def blob_pulls(url: str, auth: tuple[str, str] | None, clients: int, each: int) -> float:
    """MB/s of `clients` pulling one 50 MB blob at once, `each` times each."""
    repo = "bench/pulls"
    data = os.urandom(50 * MB)
    with httpx.Client(base_url=url, auth=auth, timeout=120) as setup:
        digest = push_blob(setup, repo, data)

    def worker(_: int) -> int:
        got = 0
        # A registry may answer 307 to where the blob is (Baepo with --s3-redirect): httpx
        # follows it without the credentials, which are for the registry only.
        with httpx.Client(base_url=url, auth=auth, timeout=120, follow_redirects=True) as client:
            for _ in range(each):
                with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as answer:
                    answer.raise_for_status()
                    for chunk in answer.iter_bytes(1 << 20):
                        got += len(chunk)
        return got

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(worker, range(clients)))
    return total / (time.perf_counter() - start) / MB


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def s3_comparison(rounds: int, clients: int) -> None:
    """Baepo on the filesystem vs. on S3, the same workloads in alternating order, best kept."""
    sizes = {"big": 100 * MB, "many": 50 * MB}
    with tempfile.TemporaryDirectory(prefix="baepo-bench-s3-") as tmp:
        work = Path(tmp)
        (work / "s3").mkdir()
        s3 = S3Server(work / "s3")
        s3.start()
        servers: dict[str, BaepoProcess] = {"filesystem": BaepoProcess(work / "fs")}
        for name, more in (("s3", ()), ("s3-redirect", ("--s3-redirect",))):
            servers[name] = BaepoProcess(
                work / name,
                extra_args=(
                    "--storage", "s3", "--s3-endpoint", s3.endpoint, "--s3-bucket", s3.bucket(),
                    "--s3-access-key", ACCESS_KEY, "--s3-secret-key", SECRET_KEY, *more,
                ),
            )  # fmt: skip
        results: dict[tuple[str, str, str], float] = {}
        pulls: dict[str, float] = {}
        raw = 0.0
        try:
            for server in servers.values():
                server.start(timeout=60)
            targets = {
                name: (server.host, [f"creds=admin:{server.password}"])
                for name, server in servers.items()
            }
            for n in range(rounds):
                copy_round(targets, work, n, results)
                for name, server in sorted(servers.items(), reverse=bool(n % 2)):
                    rate = blob_pulls(server.url, ("admin", server.password), clients, 4)
                    pulls[name] = max(pulls.get(name, 0.0), rate)
                raw = max(raw, s3_put_rate(s3))
        finally:
            for server in servers.values():
                server.stop()
                server.stop_data_plane()
            s3.stop()

    names = list(servers)
    print(f"{'workload':<10} {'dir':<5} " + " ".join(f"{n:>14}" for n in names) + "  s3/fs")
    for tag in ("big", "many"):
        for kind in ("push", "pull"):
            rates = [sizes[tag] / results[(n, tag, kind)] / MB for n in names]
            cells = " ".join(f"{r:>9.1f} MB/s" for r in rates)
            print(f"{tag:<10} {kind:<5} {cells} {rates[1] / rates[0]:>6.2f}x")
    rates = [pulls[n] for n in names]
    cells = " ".join(f"{r:>9.1f} MB/s" for r in rates)
    print(f"{'pulls':<10} {clients:<5} {cells} {rates[1] / rates[0]:>6.2f}x")
    print(
        f"SeaweedFS alone: one 100 MB PutObject at {raw:.1f} MB/s"
        f" (same machine, cpu count {os.cpu_count()})"
    )


def s3_put_rate(s3: S3Server) -> float:
    """MB/s of one boto3 PutObject of 100 MB: what the S3 server takes in, Baepo aside."""
    client, bucket, data = s3.client(), s3.bucket(), os.urandom(100 * MB)
    start = time.perf_counter()
    client.put_object(Bucket=bucket, Key="raw", Body=data)
    return 100 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--s3", action="store_true", help="filesystem vs. S3 (SeaweedFS)")
    args = parser.parse_args()
    if args.s3:
        s3_comparison(args.rounds, args.clients)
        return
    with tempfile.TemporaryDirectory(prefix="baepo-bench-") as tmp:
        work = Path(tmp)
        sizes = {"big": 100 * MB, "many": 50 * MB}

        baepo = BaepoProcess(work / "baepo")
        baepo.start()
        assert baepo.process is not None
        time.sleep(1)
        idle_start = rss_mib(baepo.process.pid)
        dist, dist_host = start_distribution(work / "dist")
        targets = {
            "distribution": (dist_host, []),
            "baepo": (baepo.host, [f"creds=admin:{baepo.password}"]),
        }
        results: dict[tuple[str, str, str], float] = {}
        many: dict[tuple[str, str], float] = {}
        try:
            for n in range(args.rounds):
                copy_round(targets, work, n, results)
            admin = ("admin", baepo.password)
            urls = {"distribution": (f"http://{dist_host}", None), "baepo": (baepo.url, admin)}
            # Rounds in alternating order, the best of each kept: the machine's other work
            # weighs on both alike.
            for n in range(args.rounds):
                for name, (url, auth) in sorted(urls.items(), reverse=bool(n % 2)):
                    for workload, rate in (
                        ("manifests", manifest_puts(url, auth, args.clients, 2000)),
                        ("pulls", blob_pulls(url, auth, args.clients, 4)),
                    ):
                        many[(name, workload)] = max(many.get((name, workload), 0.0), rate)
            peak = peak_mib(baepo.process.pid)
            time.sleep(20)  # Baepo gives freed memory back every 15 s
            idle_after = rss_mib(baepo.process.pid)
        finally:
            baepo.stop()
            baepo.stop_data_plane()  # its HAProxy outlives it by design
            dist.send_signal(signal.SIGTERM)
            dist.wait()

    print(f"{'workload':<10} {'dir':<5} {'distribution':>14} {'baepo':>12} {'ratio':>7}")
    for tag in ("big", "many"):
        for kind in ("push", "pull"):
            d = sizes[tag] / results[("distribution", tag, kind)] / MB
            b = sizes[tag] / results[("baepo", tag, kind)] / MB
            print(f"{tag:<10} {kind:<5} {d:>9.1f} MB/s {b:>7.1f} MB/s {b / d:>6.2f}x")
    for workload, unit in (("manifests", "PUT/s"), ("pulls", "MB/s")):
        d, b = many[("distribution", workload)], many[("baepo", workload)]
        print(
            f"{workload:<10} {args.clients:<5} {d:>8.1f} {unit:<5}"
            f" {b:>6.1f} {unit:<5} {b / d:>5.2f}x"
        )
    print(
        f"baepo RSS: {idle_start:.1f} MiB idle after start, {peak:.1f} MiB at its peak,"
        f" {idle_after:.1f} MiB idle after the runs (cpu count {os.cpu_count()})"
    )


if __name__ == "__main__":
    main()
