"""What a `git push` asks of the pipelines: the push endpoint's logic, behind api/git.py.

The gateway (api/git.py) gives each push a ticket: an id and a secret, bound to the service
and to who pushes, valid while the push lasts. The pre-receive hook (hook.py) posts each pushed
branch's tree to `/internal/pipelines/pushes/<ticket id>` with the secret; the endpoint answers

    no pipeline for branch B (and B is not the deploy branch)   → the result at once: accepted
    otherwise → `Runs.submit`, then the run's log lines as they come, then the result line

and the result line (hook.RESULT_MARK + JSON) is what the hook decides on: only a SUCCEEDED
run lets the push in. A branch is "wanted" (`wanted`) when it is the service's deploy branch,
or when its `baepo.yaml` has a step that runs on it (a pipeline file that does not parse is
wanted too: its run fails with the parser's words, which the pusher should read).

The answer is read in a worker thread (following a run blocks); `PushAnswer.close()` from any
other thread stops it when the pusher goes away. The run itself goes on: it was submitted, and
like a run a webhook started it ends on its own (the ref is not updated: the push was cut).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from baepo.control import Caller
from baepo.pipelines.hook import RESULT_MARK, STAGE, Result

log = logging.getLogger(__name__)

PIPELINE_FILE = "baepo.yaml"
PIPELINE_FILE_MAX = 1024 * 1024
SUCCEEDED = "SUCCEEDED"
TRIGGER = "push"


# -- what a push needs of the runs (pipelines/runs.py's Runs) -----------------------------


class RunSummary(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def message(self) -> str: ...


class RunLines(Protocol):
    """A run's log from its start, then live, ending when the run ends."""

    def __iter__(self) -> Iterator[str]: ...
    def close(self) -> None: ...


class PushRuns(Protocol):
    def submit(
        self,
        service: str,
        *,
        source: Path,
        branch: str,
        commit: str,
        trigger: str,
        caller: Caller,
    ) -> RunSummary: ...

    def follow(self, run_id: str, *, caller: Caller, from_start: bool = True) -> RunLines: ...

    def get(self, run_id: str, *, caller: Caller) -> RunSummary: ...


# -- which branches run anything -------------------------------------------------------------


class StepLike(Protocol):
    def runs_on(self, branch: str) -> bool: ...


class PipelineLike(Protocol):
    @property
    def steps(self) -> Sequence[StepLike]: ...


BranchWanted = Callable[[str, Path, str], bool]
"""(service, source tar, branch) → whether a push of the branch runs the pipeline."""


def wanted(
    source_tar: Path,
    branch: str,
    deploy_branch: str,
    *,
    parse: Callable[[str], PipelineLike],
    invalid: tuple[type[Exception], ...] = (ValueError,),
) -> bool:
    """Whether a push of `branch` with this tree runs the pipeline: the deploy branch always;
    another only if its pipeline file has a step that runs on it (or does not parse)."""
    if branch == deploy_branch:
        return True
    text = pipeline_file(source_tar)
    if text is None:
        return False
    try:
        spec = parse(text)
    except invalid:
        return True
    return any(step.runs_on(branch) for step in spec.steps)


def branch_filter(
    deploy_branch: Callable[[str], str],
    parse: Callable[[str], PipelineLike],
    invalid: tuple[type[Exception], ...] = (ValueError,),
) -> BranchWanted:
    """`wanted` for a service, its deploy branch looked up by `deploy_branch(service)`."""

    def branch_wanted(service: str, source_tar: Path, branch: str) -> bool:
        return wanted(source_tar, branch, deploy_branch(service), parse=parse, invalid=invalid)

    return branch_wanted


def pipeline_file(source_tar: Path) -> str | None:
    """The text of the tree's `baepo.yaml`; None when absent or not a regular file."""
    try:
        with tarfile.open(source_tar, mode="r:") as tar:
            try:
                member = tar.getmember(PIPELINE_FILE)
            except KeyError:
                return None
            if not member.isfile():
                return None
            if member.size > PIPELINE_FILE_MAX:
                raise PushRefused(f"{PIPELINE_FILE} is larger than {PIPELINE_FILE_MAX} bytes")
            extracted = tar.extractfile(member)
            assert extracted is not None
            return extracted.read().decode("utf-8", errors="replace")
    except (tarfile.TarError, OSError) as exc:
        raise PushRefused(f"the pushed tree cannot be read: {exc}") from exc


# -- tickets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    id: str
    secret: str
    service: str
    caller: Caller


class PushTickets:
    """The pushes under way: which service and caller each one's hook speaks for."""

    def __init__(self) -> None:
        self._tickets: dict[str, Ticket] = {}
        self._lock = threading.Lock()

    def issue(self, service: str, caller: Caller) -> Ticket:
        ticket = Ticket(secrets.token_hex(12), secrets.token_urlsafe(32), service, caller)
        with self._lock:
            self._tickets[ticket.id] = ticket
        return ticket

    def revoke(self, push_id: str) -> None:
        with self._lock:
            self._tickets.pop(push_id, None)

    def redeem(self, push_id: str, authorization: str | None) -> Ticket | None:
        """The push's ticket if `authorization` is `Bearer <its secret>`; else None."""
        with self._lock:
            ticket = self._tickets.get(push_id)
        presented = (authorization or "").encode()
        expected = f"Bearer {ticket.secret if ticket else secrets.token_urlsafe(32)}".encode()
        if ticket is None or not hmac.compare_digest(presented, expected):
            return None
        return ticket


# -- answers -----------------------------------------------------------------------------


class PushRefused(Exception):
    """A branch's push cannot be taken (the message is for the pusher)."""


class PushAnswer:
    """The lines of one branch's answer: the run's log as it comes, then the result line."""

    def __init__(
        self,
        runs: PushRuns,
        branch_wanted: BranchWanted,
        ticket: Ticket,
        *,
        source: Path,
        branch: str,
        commit: str,
        refused: tuple[type[Exception], ...] = (),
    ) -> None:
        self._runs = runs
        self._wanted = branch_wanted
        self._ticket = ticket
        self._source = source
        self._branch = branch
        self._commit = commit
        self._refused: tuple[type[Exception], ...] = (PushRefused, *refused)
        self._lock = threading.Lock()
        self._closed = False
        self._following: RunLines | None = None

    def close(self) -> None:
        """Stop following (the pusher went away); from any thread."""
        with self._lock:
            self._closed = True
            following = self._following
        if following is not None:
            following.close()

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._lines()
        finally:
            self._source.unlink(missing_ok=True)  # submit moved it away, unless refused

    def _lines(self) -> Iterator[str]:
        service, caller = self._ticket.service, self._ticket.caller
        try:
            if not self._wanted(service, self._source, self._branch):
                message = f"no pipeline for branch {self._branch}: accepted as it is"
                yield Result(ok=True, status="SKIPPED", message=message).line()
                return
            run = self._runs.submit(
                service,
                source=self._source,
                branch=self._branch,
                commit=self._commit,
                trigger=TRIGGER,
                caller=caller,
            )
        except self._refused as exc:
            yield Result(ok=False, status="REFUSED", message=str(exc)).line()
            return
        yield f"{STAGE}run #{run.number} ({run.id}): {self._branch} at {self._commit[:12]}"
        following = self._runs.follow(run.id, caller=caller, from_start=True)
        with self._lock:
            self._following = following
            closed = self._closed
        try:
            if closed:
                return
            for line in following:
                yield line.lstrip(RESULT_MARK)
        finally:
            following.close()
        if self._closed:
            return
        end = self._runs.get(run.id, caller=caller)
        yield Result(
            ok=end.status == SUCCEEDED,
            status=str(end.status),
            message=end.message,
            run=end.id,
            number=end.number,
        ).line()
