"""The local CA in a child process: what it signs, its protocol, and how it fails and ends."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from baepo.clock import FakeClock, SystemClock
from baepo.router.certificates import CertificateNotes, LocalCA
from baepo.router.errors import CertificateError
from baepo.router.signer import RequestClock, answer
from baepo.router.signing import SigningChild, SigningRequest

NOW = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.UTC)

# The real signer, except for a few hostnames that make it misbehave the ways a child can.
MISBEHAVING = """
import json, os, signal, sys, time
from pathlib import Path
from baepo.router import signer

def answer(ca, clock, line):
    names = json.loads(line).get("issue") or []
    if "exit.localhost" in names:
        print("signer: the disk is on fire", file=sys.stderr, flush=True)
        os._exit(3)
    if "kill.localhost" in names:
        print("signer: about to be killed", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    if "garbage.localhost" in names:
        print("signer: answering html", file=sys.stderr, flush=True)
        return "<html>502 Bad Gateway</html>"
    if "hang.localhost" in names:
        print("signer: stuck", file=sys.stderr, flush=True)
        (ca.directory / "stuck").write_text(str(os.getpid()))
        time.sleep(600)
    return real(ca, clock, line)

real, signer.answer = signer.answer, answer
sys.exit(signer.main())
"""


def leaf_of(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem.encode())[0]


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie nobody reaped yet has ended too)."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# A request's bound here, a new child's start included: a child imports the signer (~0.7 s of
# CPU), which took over 5 s on a 2-core machine running other suites' tests beside these. A
# hung child costs its test twice this (the request is tried once more with a new child).
MISBEHAVING_TIMEOUT_S = 10


@pytest.fixture
def misbehaving(tmp_path: Path) -> Iterator[SigningChild]:
    signer = SigningChild(
        tmp_path / "ca",
        SystemClock(),
        timeout_s=MISBEHAVING_TIMEOUT_S,
        command=[sys.executable, "-c", MISBEHAVING],
    )
    yield signer
    signer.close()


@pytest.fixture
def signer(tmp_path: Path) -> Iterator[SigningChild]:
    child = SigningChild(tmp_path / "ca", FakeClock(NOW))
    yield child
    pid = child.pid
    child.close()
    assert pid is None or gone(pid)


# --- what it signs ------------------------------------------------------------------------


def test_the_child_signs_what_a_local_ca_signs(tmp_path: Path, signer: SigningChild) -> None:
    names = ["app.localhost", "*.app.localhost", "www.example.com"]
    mine = signer.issue(names)
    theirs = LocalCA(tmp_path / "local", FakeClock(NOW)).issue(names)
    root_pem = signer.ca_pem()
    root = x509.load_pem_x509_certificate(root_pem.encode())
    leaf, reference = leaf_of(mine.pem), leaf_of(theirs.pem)
    leaf.verify_directly_issued_by(root)
    assert mine.hostnames == theirs.hostnames == tuple(names)
    assert mine.not_after == theirs.not_after == leaf.not_valid_after_utc  # the server's clock
    assert leaf.not_valid_before_utc == reference.not_valid_before_utc
    assert leaf.subject == reference.subject
    by_kind = {type(e.value): e for e in reference.extensions}
    for extension in leaf.extensions:
        if not isinstance(extension.value, x509.AuthorityKeyIdentifier):  # each its own root
            assert extension == by_kind[type(extension.value)]
    assert len(leaf.extensions) == len(reference.extensions)
    assert CertificateNotes.of(mine.pem) == CertificateNotes.of(theirs.pem)
    chain = x509.load_pem_x509_certificates(mine.pem.encode())
    assert len(chain) == 2 and chain[1] == root  # leaf, then the root: what HAProxy sends
    assert "-----BEGIN PRIVATE KEY-----" in mine.pem


def test_the_root_is_created_at_first_use_as_local_ca_makes_it(
    tmp_path: Path, signer: SigningChild
) -> None:
    directory = tmp_path / "ca"
    assert not directory.exists()
    issued = signer.issue(["app.localhost"])
    assert (directory / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (directory / "ca.pem").stat().st_mode & 0o777 == 0o644
    root = LocalCA(directory, FakeClock(NOW)).ca_pem()  # the same files LocalCA reads
    assert signer.ca_pem() == root
    leaf_of(issued.pem).verify_directly_issued_by(x509.load_pem_x509_certificate(root.encode()))
    assert x509.load_pem_x509_certificate(root.encode()).not_valid_before_utc == NOW - dt.timedelta(
        hours=1
    )


def test_the_root_is_read_from_its_file_without_a_child(tmp_path: Path) -> None:
    first = SigningChild(tmp_path / "ca", SystemClock())
    made = first.ca_pem()  # no root yet: the child makes it
    assert first.pid is not None
    first.close()
    again = SigningChild(tmp_path / "ca", SystemClock())
    assert again.ca_pem() == made
    assert again.pid is None  # read from ca.pem, no child started


def test_the_server_side_loads_no_cryptography(tmp_path: Path) -> None:
    program = (
        "import sys\n"
        "from pathlib import Path\n"
        "from baepo.clock import SystemClock\n"
        "from baepo.router import SigningChild\n"
        "signer = SigningChild(Path(sys.argv[1]), SystemClock())\n"
        "assert 'BEGIN CERTIFICATE' in signer.issue(['app.localhost']).pem\n"
        "assert 'BEGIN CERTIFICATE' in signer.ca_pem()\n"
        "signer.close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path / "ca")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_requests_from_many_threads_share_one_child(signer: SigningChild) -> None:
    results: dict[int, str] = {}

    def issue(n: int) -> None:
        results[n] = signer.issue([f"app{n}.localhost"]).pem

    threads = [threading.Thread(target=issue, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == list(range(8))
    for n, pem in results.items():
        assert CertificateNotes.of(pem).names == (f"app{n}.localhost",)
    pid = signer.pid
    signer.issue(["later.localhost"])
    assert signer.pid == pid


# --- the protocol -------------------------------------------------------------------------


def test_a_request_reads_back_as_it_was_written() -> None:
    for request in (
        SigningRequest(("a.localhost", "*.a.localhost"), NOW),
        SigningRequest(None, NOW),
    ):
        assert SigningRequest.parse(request.line()) == request


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[1, 2]",
        '{"issue": ["a.localhost"]}',
        '{"issue": ["a.localhost"], "now": "yesterday"}',
        '{"issue": ["a.localhost"], "now": "2026-05-06T07:08:09"}',
        '{"issue": "a.localhost", "now": "2026-05-06T07:08:09+00:00"}',
        '{"issue": [1], "now": "2026-05-06T07:08:09+00:00"}',
        '{"now": "2026-05-06T07:08:09+00:00"}',
    ],
)
def test_the_child_answers_an_unreadable_request_with_an_error(tmp_path: Path, line: str) -> None:
    found = json.loads(answer(LocalCA(tmp_path, RequestClock()), RequestClock(), line))
    assert set(found) == {"error"}
    assert not tmp_path.joinpath("ca.key").exists()


def test_the_child_signs_as_of_the_time_in_the_request(tmp_path: Path) -> None:
    clock = RequestClock()
    ca = LocalCA(tmp_path, clock)
    found = json.loads(answer(ca, clock, SigningRequest(("a.localhost",), NOW).line()))
    assert dt.datetime.fromisoformat(found["not_after"]) == NOW + dt.timedelta(days=90)


def test_a_local_ca_error_is_the_callers_and_the_child_stays(signer: SigningChild) -> None:
    signer.issue(["app.localhost"])
    pid = signer.pid
    with pytest.raises(CertificateError, match="at least one hostname"):
        signer.issue([])
    with pytest.raises(CertificateError, match="cannot issue a certificate"):
        signer.issue(["ü.localhost"])  # not an A-label
    assert signer.pid == pid


# --- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "how", "said"),
    [
        ("exit.localhost", "exited with status 3", "the disk is on fire"),
        ("kill.localhost", "was killed by SIGKILL", "about to be killed"),
        ("garbage.localhost", "answered '<html>502 Bad Gateway</html>'", "answering html"),
    ],
)
def test_a_child_that_fails_mid_request_is_an_error_and_the_next_request_gets_a_new_one(
    misbehaving: SigningChild, hostname: str, how: str, said: str
) -> None:
    misbehaving.issue(["app.localhost"])
    first = misbehaving.pid
    assert first is not None
    with pytest.raises(CertificateError) as failed:
        misbehaving.issue([hostname])
    message = str(failed.value)
    # A child that was already running gets one more try with a new one (it may have died
    # between requests): the error names the child that failed last.
    named = re.search(r"\(pid (\d+)\) ", message)
    assert named is not None and f") {how}" in message and said in message, message
    assert hostname in message
    assert misbehaving.pid is None and gone(first) and gone(int(named.group(1)))
    assert "BEGIN CERTIFICATE" in misbehaving.issue(["app.localhost"]).pem
    assert misbehaving.pid not in (None, first, int(named.group(1)))


def test_a_hung_child_is_killed_at_the_timeout(misbehaving: SigningChild) -> None:
    misbehaving.issue(["app.localhost"])  # started, so the timeout counts the request alone
    first = misbehaving.pid
    assert first is not None
    started = time.monotonic()
    with pytest.raises(CertificateError) as failed:
        misbehaving.issue(["hang.localhost"])
    assert MISBEHAVING_TIMEOUT_S <= time.monotonic() - started < 3 * MISBEHAVING_TIMEOUT_S
    assert f"did not answer within {MISBEHAVING_TIMEOUT_S} s and was killed" in str(failed.value)
    assert "signer: stuck" in str(failed.value)
    assert gone(first)
    assert "BEGIN CERTIFICATE" in misbehaving.issue(["app.localhost"]).pem


def test_a_child_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    broken = SigningChild(tmp_path, SystemClock(), command=[str(tmp_path / "no-such-python")])
    with pytest.raises(CertificateError, match="cannot start the local CA's signer"):
        broken.issue(["app.localhost"])
    crashing = SigningChild(tmp_path, SystemClock(), command=[sys.executable, "-c", "1/0"])
    with pytest.raises(CertificateError, match=r"(?s)exited with status 1.*ZeroDivisionError"):
        crashing.issue(["app.localhost"])


def test_a_child_killed_between_requests_is_replaced(signer: SigningChild) -> None:
    signer.issue(["app.localhost"])
    first = signer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: gone(first))
    assert "BEGIN CERTIFICATE" in signer.issue(["app.localhost"]).pem
    assert signer.pid not in (None, first)


# --- lifetime -----------------------------------------------------------------------------


def test_an_idle_child_is_closed_and_the_next_request_starts_another(tmp_path: Path) -> None:
    signer = SigningChild(tmp_path / "ca", SystemClock(), idle_s=0.5)
    try:
        signer.issue(["app.localhost"])
        first = signer.pid
        assert first is not None
        wait_until(lambda: signer.pid is None)
        assert gone(first)
        assert "BEGIN CERTIFICATE" in signer.issue(["app.localhost"]).pem
        assert signer.pid not in (None, first)
    finally:
        signer.close()


def test_a_busy_child_is_not_closed_for_idleness(tmp_path: Path) -> None:
    signer = SigningChild(tmp_path / "ca", SystemClock(), idle_s=1.0)
    try:
        signer.issue(["app.localhost"])
        first = signer.pid
        deadline = time.monotonic() + 2.5  # more than twice the idle time, always busy
        while time.monotonic() < deadline:
            signer.issue(["app.localhost"])
            assert signer.pid == first
            time.sleep(0.2)
    finally:
        signer.close()


# The "server": starts a signer, prints its pid, and dies by SIGKILL (no chance to clean up),
# with the child idle or stuck in a request.
SERVER = """
import os, signal, sys, threading, time
from pathlib import Path
from baepo.clock import SystemClock
from baepo.router import SigningChild

directory, command, hostname = Path(sys.argv[1]), sys.argv[2:3], sys.argv[3]
signer = SigningChild(directory, SystemClock(), command=[sys.executable, "-c", command[0]])
signer.issue(["app.localhost"])
print(signer.pid, flush=True)
if hostname != "-":
    threading.Thread(target=signer.issue, args=([hostname],), daemon=True).start()
    while not (directory / "stuck").exists():
        time.sleep(0.02)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("hostname", ["-", "hang.localhost"], ids=["idle", "stuck"])
def test_the_child_never_outlives_the_server(tmp_path: Path, hostname: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVER, str(tmp_path / "ca"), MISBEHAVING, hostname],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    child = int(done.stdout.split()[0])
    try:
        wait_until(lambda: gone(child))
    finally:
        if not gone(child):  # the test failed: nothing left behind all the same
            os.kill(child, signal.SIGKILL)
