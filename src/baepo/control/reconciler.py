"""The reconciler: the loop that makes the engine and the router match the database.

Level-triggered. Each pass (`tick`) reads every live service's change mark in one query
(`records.live_service_marks`), Baepo's containers (by label) and every route's state from
the router (`Router.states`, one `show stat`), and converges each service that needs it:
begins its next pending operation, reads its desired state, takes its health (see below),
asks `planning.plan` for the next actions and applies them in order, stopping at the first
that fails (the next pass observes again and retries). Nothing about instances is remembered
across restarts but health; a new reconciler adopts what runs.

Cost grows with changes, not with services. A service whose last pass found nothing to do is
passed over while what that pass read is unchanged: its mark (its row, its operations), its
containers, its route and the router's health verdicts, and the autoscaler's count. The
container listing itself is reused while the engine's event stream is open and quiet. Every
`FULL_PASS_S` a pass converges every service anyway, so a change no mark shows (a database
edited by hand) is still found.

Health: Baepo probes an instance itself only while it starts (the deploy gate, every
`Timing.poll_s`). Once routed, the router's checks decide (HAProxy `check` with the
revision's health check, see `router/configuration.py`): an instance the router finds down is
UNHEALTHY, recorded as an event and replaced. The route carries the check of the newest
revision among its ready servers (`planning`).

Passes come every `Timing.poll_s` while something moves and every `Timing.idle_s` otherwise;
events only wake the loop early: an engine event of a managed container (an instance died) or
an image pushed to Baepo's registry. Auto-deploy follows the registry's durable push log with a
cursor in the database (see `triggers.py`), so a push is never lost to a restart.

Containers are found by the runtime's labels plus `baepo.installation` (this Baepo's key
fingerprint), so two Baepos on one engine never adopt or remove each other's. Containers of this
installation that belong to no live service (a database restored from an older backup) are
stopped and removed, and so are the networks of services that are gone (once no container
holds them): swept at the first pass, after a service went away (again every
`NETWORK_SWEEP_S` while one is still held) and on full passes, not on every idle pass (a
listing of every network costs with every service).

While a new instance waits for its health check, each change in what the probe answers is a
line in the operation's log ("GET /healthz answered HTTP 404"), and the operation's message
says where it stands (at most once a second): a deploy is never silent for minutes. A start
the engine refuses is retried by the next pass; the engine's own words are in the log and, if
the deploy fails for it, in the failure's message.

A service scaled to zero whose requests the router's activator holds (`Scaling.waiting`) gets
its new instance probed every 20 ms by a task of its own (`health.probe_until_healthy`), which
wakes the loop the moment it passes: the held requests wait for the app's start, not for the
next pass.

What an instance wrote outlives its container: the log keeper (`logkeeper.py`) copies its
output when the engine reports that it died and just before the reconciler removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from baepo.clock import Clock
from baepo.control import instances, records, triggers
from baepo.control.changes import ChangeTracker, ServiceKey, signature
from baepo.control.health import HURRY_EVERY_S, HealthTracker, probe_until_healthy, router_check
from baepo.control.images import ImageName, RegistryLink
from baepo.control.instances import LABEL_INSTALLATION, Revision
from baepo.control.lifecycle import Lifecycle, Timing
from baepo.control.logkeeper import LogKeeper
from baepo.control.operations import OperationKind, OperationStatus
from baepo.control.planning import (
    Action,
    Desired,
    DesiredOperation,
    FinishOperation,
    Health,
    Observed,
    ObservedInstance,
    RecordEvent,
    RemoveInstance,
    RemoveRoute,
    SetRoute,
    StartInstance,
    StopInstance,
    plan,
)
from baepo.control.probes import Prober, ProbeResult
from baepo.control.quotas import InstanceLedger, Quota
from baepo.control.scaling import Bounds, Scaling, Wanted
from baepo.control.tables import ServiceRow
from baepo.control.vault import SecretBox
from baepo.events import EventBus, ImagePushed
from baepo.router import Check, Route, Router, RouterError, RouteState, ServerState
from baepo.runtime import (
    LABEL_INSTANCE,
    LABEL_SERVICE,
    ContainerConflict,
    ContainerNotFound,
    Engine,
    EngineError,
    EventStream,
    ImageNotFound,
    Instance,
    StartFailed,
)
from baepo.store import Database

log = logging.getLogger(__name__)

NETWORK_SWEEP_S = 10.0
BEGIN_WAIT_S = 0.5
"""How long a pass waits for an operation to begin (a pull) before going on without it."""
PROGRESS_EVERY_S = 1.0
FULL_PASS_S = 60.0
"""A pass converges every service this often, changed or not: level-triggered correctness does
not hang on an event or a change mark that was missed."""
HURRY_S = 60.0
"""How long a new instance of a service whose requests wait at zero is probed in a hurry (the
router's activator holds a request this long by default)."""


@dataclass(frozen=True)
class _State:
    """One service's desired state as read from the database for one pass."""

    service_id: str
    desired: Desired
    operation_id: str | None
    in_flight: bool
    bounds: Bounds
    owner: str = ""


class Reconciler:
    def __init__(
        self,
        *,
        db: Database,
        engine: Engine,
        router: Router,
        prober: Prober,
        clock: Clock,
        secrets: SecretBox,
        domain: str,
        registry: RegistryLink | None = None,
        timing: Timing | None = None,
        pushes: triggers.PushLog | None = None,
        may_pull: Callable[[str, str], bool] | None = None,
        scaling: Scaling | None = None,
        logs: LogKeeper | None = None,
        quota: Quota | None = None,
    ) -> None:
        self._db = db
        self._scaling = scaling
        self._ledger = InstanceLedger(quota or Quota())  # bounds what the autoscaler starts
        self._engine = engine
        self._router = router
        self._prober = prober
        self._clock = clock
        self._sealer = records.Sealer(secrets)
        self._installation = secrets.fingerprint
        self._domain = domain
        self._registry = registry or RegistryLink()
        self.timing = timing or Timing()
        self._lifecycle = Lifecycle(
            db, engine, self._sealer, clock, self._registry, self.timing, may_pull
        )
        self._health = HealthTracker(clock.monotonic, self.timing.poll_s)
        self._drain_started: dict[tuple[str, str], datetime] = {}
        self._revisions: dict[tuple[str, int], Revision] = {}
        self._last_line: dict[str, str] = {}
        self._networks: set[str] = set()  # made (or found) since this reconciler started
        self._start_errors: dict[str, str] = {}  # service → the engine's last refusal
        self._probe_lines: dict[str, str] = {}  # container → the last probe detail logged
        self._progress: dict[str, tuple[str, float]] = {}  # operation → (message, when)
        self._next_sweep = 0.0
        self._next_full = 0.0
        self._known: set[str] = set()  # the live services' names at the last pass
        self._sweep_pending = True
        self._changes = ChangeTracker()
        self._last_state: dict[str, _State] = {}  # service id → what its last pass wanted
        self._asked: dict[str, int] = {}  # service id → what its autoscaler last wanted
        self._listing: list[Instance] | None = None  # the last listing of our containers
        self._watching = False  # an engine event stream is open: no event, no change
        self._engine_moved = True
        self._busy = True
        self._stops: dict[str, asyncio.Task[None]] = {}  # container → its stop under way
        self._passes: dict[str, asyncio.Task[bool]] = {}  # service id → its convergence
        self._retired: set[str] = set()  # containers we stop, until no listing shows them
        self._begins: dict[str, asyncio.Task[None]] = {}  # service → its next operation's begin
        self._hurries: set[asyncio.Task[None]] = set()  # probes of instances requests wait for
        self._pushes = pushes
        self._logs = logs
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._stream: EventStream | None = None
        self._stream_lock = threading.Lock()

    # -- waking and running --------------------------------------------------------------

    def wake(self) -> None:
        """Run a pass soon. Safe from any thread; a burst of wakes (a push each) before the
        loop has seen the first costs one hand-off to the loop, not one each."""
        loop = self._loop
        if loop is None or self._wakeup is None or loop.is_closed() or self._wake_pending:
            return
        self._wake_pending = True
        loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self._wake_pending = False
        if self._wakeup is not None:
            self._wakeup.set()

    def image_pushed(self, event: ImagePushed) -> None:
        """EventBus handler: wake the loop, which reads the push from the registry's log."""
        self.wake()

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        return bus.subscribe(ImagePushed, self.image_pushed)

    def health(self, container_id: str) -> Health | None:
        return self._health.health(container_id)

    def stop(self) -> None:
        """End `run()` after the pass under way (safe from any thread)."""
        self._stopping.set()
        with self._stream_lock:
            if self._stream is not None:
                self._stream.close()
        self.wake()

    async def run(self) -> None:
        """Converge until `stop()`; a pass that raises is logged and retried."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._wake_pending = False
        watcher = threading.Thread(target=self._watch_engine, name="baepo-engine-events")
        watcher.daemon = True
        watcher.start()
        try:
            while not self._stopping.is_set():
                try:
                    busy = await self.tick()
                except Exception:
                    log.exception("reconcile pass failed")
                    busy = False
                await self._nap(self.timing.poll_s if busy else self.timing.idle_s)
        finally:
            self._stopping.set()
            for task in [*self._passes.values(), *self._hurries]:
                task.cancel()  # a pass stuck on the engine is redone after a restart
            if self._stops:
                # Stops under way finish (bounded); one cut short is redone after a restart.
                await asyncio.wait(list(self._stops.values()), timeout=self.timing.stop_timeout_s)
            self._loop = None

    async def _nap(self, seconds: float) -> None:
        assert self._wakeup is not None
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            self._wakeup.clear()

    def _watch_engine(self) -> None:
        """Wake the loop on every event of a service's container (a crash, a removal)."""
        while not self._stopping.is_set():
            try:
                stream = self._engine.events({LABEL_INSTALLATION: self._installation})
            except EngineError as exc:
                log.warning("cannot watch engine events (%s); retrying", exc)
                self._stopping.wait(5)
                continue
            with self._stream_lock:
                self._stream = stream
            if self._stopping.is_set():
                stream.close()
            self._engine_moved = True  # what happened while no stream was open is unknown
            self._watching = True
            try:
                for event in stream:
                    self._engine_moved = True
                    if LABEL_SERVICE in event.labels:
                        self.wake()
                        if self._logs is not None:
                            self._logs.capture_died(event)
            except EngineError as exc:
                log.warning("engine event stream ended (%s)", exc)
            finally:
                self._watching = False
                stream.close()
                with self._stream_lock:
                    self._stream = None
            self._stopping.wait(1)  # an engine that drops streams at once is not spun on

    # -- one pass ------------------------------------------------------------------------

    async def tick(self) -> bool:
        """One pass; True if something is still in motion. It converges the services that
        changed since their last quiet pass (see `_changed`), or every one on a full pass."""
        busy = False
        if self._pushes is not None:
            busy = await asyncio.to_thread(self._follow_pushes, self._pushes)
        services = await asyncio.to_thread(self._live_services)
        containers = await self._containers(services)
        if containers is None:
            return False
        ours: dict[str, list[Instance]] = {}
        for container in containers:
            if instances.labelled(container):
                ours.setdefault(container.labels[LABEL_SERVICE], []).append(container)
        try:
            routes: dict[str, RouteState] | None = await asyncio.to_thread(self._router.states)
        except RouterError:
            routes = None  # each service asks, and tells its operation why nothing moves
        full = self._clock.monotonic() >= self._next_full
        if full:
            self._next_full = self._clock.monotonic() + FULL_PASS_S
        chosen: list[tuple[ServiceKey, Wanted | None]] = []
        for key in services:
            listed = ours.get(key.name, [])
            route_state = routes.get(key.name) if routes is not None else None
            wanted = self._scaling_moved(key, route_state)
            if full or wanted is not None or self._changed(key, listed, routes):
                chosen.append((key, wanted))
        results = await self._results(self._converge_all(chosen, ours, routes))
        known = {key.name for key in services}
        if self._scaling is not None:
            self._scaling.forget_all_but(known)
        self._changes.forget_all_but(key.id for key in services)
        self._ledger.forget_all_but(key.id for key in services)
        orphans = [c for name, cs in ours.items() if name not in known for c in cs]
        for orphan in orphans:
            self._stop_soon(None, orphan.id, orphan.name, "its service no longer exists")
        self._health.forget_all_but(c.id for c in containers)
        self._retired &= {c.id for c in containers}
        for gone in set(self._probe_lines) - {c.id for c in containers}:
            del self._probe_lines[gone]
        if self._known - known:
            self._sweep_pending = True  # a service went away: its network and logs go too
        self._known = known
        if (self._sweep_pending or full) and self._clock.monotonic() >= self._next_sweep:
            self._next_sweep = self._clock.monotonic() + NETWORK_SWEEP_S
            clean = await asyncio.to_thread(self._sweep_networks, known | set(ours))
            self._sweep_pending = not clean
            if self._logs is not None:
                await asyncio.to_thread(self._logs.retain, known)
        self._busy = busy or any(r is not False for r in results) or bool(orphans)
        return self._busy

    async def _containers(self, services: list[ServiceKey]) -> list[Instance] | None:
        """This installation's containers: listed again only if the engine said something
        since the last listing (or no event stream is open, or the last pass was busy);
        None if the engine does not answer."""
        quiet = self._watching and not self._engine_moved and not self._busy
        if self._listing is not None and quiet and self._clock.monotonic() < self._next_full:
            return self._listing
        self._engine_moved = False  # before listing: an event during it lists again
        try:
            listing = await asyncio.to_thread(
                self._engine.list, {LABEL_INSTALLATION: self._installation}
            )
        except EngineError as exc:
            self._listing = None
            log.warning("cannot list containers: %s", exc)
            line = f"waiting for the engine: {exc}"
            await asyncio.to_thread(self._note_waiting, [k.id for k in services], line)
            return None
        self._listing = listing
        return listing

    def _changed(
        self, key: ServiceKey, containers: list[Instance], routes: Mapping[str, RouteState] | None
    ) -> bool:
        """Whether a service needs a pass: its last one was busy or failed, or what it reads
        (its rows, its containers, its route and the router's verdicts) changed since."""
        if routes is None:
            return True
        return self._changes.changed(key, signature(key, containers, routes.get(key.name)))

    def _scaling_moved(self, key: ServiceKey, route_state: RouteState | None) -> Wanted | None:
        """The autoscaler's answer, if it wants another count than the service's last pass
        used (handed to that service's pass, so that its reason is recorded once)."""
        last = self._last_state.get(key.id)
        if self._scaling is None or last is None:
            return None
        desired = last.desired
        if desired.revision is None or desired.paused or desired.deleting:
            return None
        route = route_state.route if route_state else None
        ready = sum(1 for s in route.servers if s.state is ServerState.READY) if route else 0
        wanted = self._scaling.want(desired.service, last.bounds, ready)
        if wanted.instances == self._asked.get(key.id) and wanted.reason is None:
            return None
        return wanted

    def _converge_all(
        self,
        services: list[tuple[ServiceKey, Wanted | None]],
        ours: dict[str, list[Instance]],
        routes: Mapping[str, RouteState] | None,
    ) -> list[tuple[asyncio.Task[bool], bool]]:
        """Start each service's convergence, unless its last one is still at work (an engine
        call stuck on one container): that service waits, the others go on. Each with whether
        it was started now."""
        passes: list[tuple[asyncio.Task[bool], bool]] = []
        live = {key.id for key, _ in services}
        for sid in [s for s, task in self._passes.items() if s not in live and task.done()]:
            del self._passes[sid]
        for key, wanted in services:
            running = self._passes.get(key.id)
            if running is not None and not running.done():
                passes.append((running, False))
                continue
            listed = ours.get(key.name, [])
            task = asyncio.ensure_future(self._converge(key, listed, routes, wanted))
            # Logged when it ends, also if that is after the pass that waited for it.
            task.add_done_callback(functools.partial(_log_failure, key.name))
            self._passes[key.id] = task
            passes.append((task, True))
        return passes

    async def _results(self, passes: list[tuple[asyncio.Task[bool], bool]]) -> list[object]:
        """Each pass's result, waiting at most `pass_wait_s` for those started now (one that
        lags from an earlier pass is not waited for again); one still at work counts as busy."""
        new = [task for task, fresh in passes if fresh]
        if new:
            await asyncio.wait(new, timeout=self.timing.pass_wait_s)
        results: list[object] = []
        for task, _ in passes:
            if not task.done():
                results.append(True)
            elif task.cancelled():
                results.append(False)
            elif (error := task.exception()) is not None:
                results.append(error)  # logged by `_log_failure`
            else:
                results.append(task.result())
        return results

    def _sweep_networks(self, in_use: set[str]) -> bool:
        """Remove the networks of services that are gone and hold no container any more;
        whether none is left."""
        try:
            networks = self._engine.networks({LABEL_INSTALLATION: self._installation})
        except EngineError as exc:
            log.warning("cannot list networks: %s", exc)
            return False
        clean = True
        for network in networks:
            if network.labels.get(LABEL_SERVICE) in in_use:
                continue
            try:
                self._engine.remove_network(network.name)
            except ContainerConflict:
                clean = False  # something still runs on it; the next sweep looks again
                continue
            except EngineError as exc:
                log.warning("cannot remove network %s: %s", network.name, exc)
                clean = False
                continue
            self._networks.discard(network.name)
            log.info("removed network %s: its service is gone", network.name)
        return clean

    def _follow_pushes(self, log: triggers.PushLog, batch: int = 100) -> bool:
        """Decide the pushes after the cursor, a batch in one transaction with the cursor's
        move; True if any started a deployment (or more are waiting)."""
        with self._db.session() as s, s.begin():
            position = triggers.cursor(s)
        pushes = log.pushes_after(position, batch)
        with self._db.session() as s, s.begin():
            started = triggers.decide_all(s, pushes, self._sealer, self._registry, self._clock)
        return bool(started) or len(pushes) == batch

    def _live_services(self) -> list[ServiceKey]:
        with self._db.session() as s:
            return [ServiceKey(*row) for row in records.live_service_marks(s)]

    async def _converge(
        self,
        key: ServiceKey,
        containers: list[Instance],
        routes: Mapping[str, RouteState] | None,
        wanted: Wanted | None = None,
    ) -> bool:
        service_id, name = key.id, key.name
        self._changes.unsettle(service_id)
        if key.operations:  # none in flight (the mark says): nothing to begin
            await self._begin_next(service_id)
        state = await asyncio.to_thread(self._state, service_id)
        if state is None:
            return False
        try:
            if routes is not None:
                route_state = routes.get(name)
            else:
                route_state = await asyncio.to_thread(self._router.get, name)
        except RouterError as exc:
            await self._note(state, f"cannot read the route: {exc}")
            return True
        instances = await self._observe(state, containers, route_state)
        now = self._clock.now()
        route = route_state.route if route_state else None
        state = await self._scaled(state, route, wanted)
        self._last_state[service_id] = state
        checks = await self._checks(state, instances)
        state = dataclasses.replace(
            state, desired=dataclasses.replace(state.desired, checks=checks)
        )
        drain_started = self._drains(name, route_state, now)
        observed = Observed(
            now=now,
            instances=tuple(instances),
            route=route,
            in_flight=route_state.in_flight if route_state else {},
            drain_started=drain_started,
            start_error=self._start_errors.get(name),
        )
        actions = plan(state.desired, observed)
        for action in actions:
            try:
                await self._apply(state, action)
            except (EngineError, RouterError) as exc:
                await self._note(state, f"{_verb(action)} failed: {exc}")
                log.warning("%s: %s failed: %s", name, _verb(action), exc)
                break
        moving = any(i.running and i.health is Health.STARTING for i in instances)
        draining = route is not None and any(s.state is ServerState.DRAIN for s in route.servers)
        busy = state.in_flight or moving or draining or bool(actions)
        if not busy and routes is not None:
            self._changes.settle(service_id, signature(key, containers, route_state))
        return busy

    async def _checks(self, state: _State, observed: list[ObservedInstance]) -> dict[int, Check]:
        """Revision → the check the router runs, for the revisions that run or should."""
        numbers = {i.revision for i in observed if i.revision is not None}
        if state.desired.revision is not None:
            numbers.add(state.desired.revision)
        checks = {}
        for number in numbers:
            revision = await self._known_revision(state.service_id, number)
            if revision is not None:
                checks[number] = router_check(revision.spec.health_check)
        return checks

    async def _known_revision(self, service_id: str, number: int) -> Revision | None:
        """The revision (cached after the first read), or None if the database has none."""
        cached = self._revisions.get((service_id, number))
        if cached is not None:
            return cached
        try:
            return await asyncio.to_thread(self._revision, service_id, number)
        except Exception:  # an instance of a revision we do not know: never healthy
            return None

    async def _scaled(
        self, state: _State, route: Route | None, decided: Wanted | None = None
    ) -> _State:
        """`state` with the instances its autoscaler wants now (min_instances without one),
        within what the owner's instance quota leaves (`quotas.InstanceLedger`), and the
        scaling recorded as the service's event when the count changes or the quota cuts it.
        `decided`: the autoscaler's answer, if this pass asked already."""
        desired = state.desired
        if self._scaling is None or desired.revision is None or desired.paused or desired.deleting:
            stopped = desired.paused or desired.deleting
            self._ledger.hold(state.service_id, state.owner, 0 if stopped else desired.instances)
            return state
        ready = sum(1 for s in route.servers if s.state is ServerState.READY) if route else 0
        wanted = decided or self._scaling.want(desired.service, state.bounds, ready)
        self._asked[state.service_id] = wanted.instances
        admitted = self._ledger.admit(
            state.service_id, state.owner, state.bounds.min_instances, wanted.instances
        )
        scaled = state
        if admitted.instances != desired.instances:
            scaled = dataclasses.replace(
                state, desired=dataclasses.replace(desired, instances=admitted.instances)
            )
        if wanted.reason is not None:
            await self._event(scaled, "scaled", "", f"scaling: {wanted.reason}")
        if admitted.note is not None:
            await self._event(scaled, "scaled", "", admitted.note)
        return scaled

    def _state(self, service_id: str) -> _State | None:
        with self._db.session() as s:
            service = s.get(ServiceRow, service_id)
            if service is None or service.deleted_at is not None:
                return None
            spec = self._sealer.spec(service.spec)
            op = records.operation_in_flight(s, service_id)
            current = op if op is not None and op.status == OperationStatus.IN_PROGRESS else None
            check = "health check"
            if service.revision is not None:
                revision = self._revision(service_id, service.revision, s)
                check = f"health check ({revision.spec.health_check.describe()})"
            operation = None
            if current is not None:
                assert current.started_at is not None and current.deadline is not None
                operation = DesiredOperation(
                    current.id, OperationKind(current.kind), current.started_at, current.deadline
                )
            desired = Desired(
                service=service.name,
                hostnames=(f"{service.name}.{self._domain}", *spec.custom_domains),
                revision=service.revision,
                instances=spec.min_instances,
                max_concurrency=spec.max_concurrency,
                paused=service.paused,
                deleting=service.deleting,
                operation=operation,
                drain_timeout_s=self.timing.drain_timeout_s,
                check=check,
            )
            bounds = Bounds(spec.min_instances, spec.max_instances, spec.max_concurrency)
            return _State(
                service_id,
                desired,
                current.id if current else None,
                op is not None,
                bounds,
                service.owner,
            )

    def _revision(self, service_id: str, number: int, session: Session | None = None) -> Revision:
        """The revision, read once. Within a session, read in it: a second connection per
        thread, with every worker thread doing the same, would empty the pool (it did, with
        200 services created at once) and each would wait for the others."""
        key = (service_id, number)
        cached = self._revisions.get(key)
        if cached is None:
            with contextlib.nullcontext(session) if session else self._db.session() as s:
                row = records.revision(s, service_id, number)
                run = self._registry.runnable(row.image, row.digest)
                cached = Revision(number, self._sealer.spec(row.spec), row.image, row.digest, run)
            self._revisions[key] = cached
        return cached

    async def _observe(
        self, state: _State, containers: list[Instance], route_state: RouteState | None
    ) -> list[ObservedInstance]:
        """Each container with its health: from the router's checks once it is routed, from
        Baepo's own probes while it starts (the deploy gate)."""
        route = route_state.route if route_state else None
        verdicts = route_state.health if route_state else {}
        checks: list[tuple[Instance, str, Revision]] = []
        for c in containers:
            name = c.labels[LABEL_INSTANCE]
            server = route.server(name) if route else None
            routed = server is not None and server.state is ServerState.READY
            self._health.adopt(c.id, routed)
            number = instances.revision_label(c)
            if number is None:
                continue
            verdict = verdicts.get(name) if routed else None
            if verdict is not None:
                rev = await self._known_revision(state.service_id, number)
                if rev is None:
                    continue
                check = rev.spec.health_check
                change = self._health.router_verdict(c.id, name, check, verdict.up, verdict.detail)
                if change is not None:
                    await self._event(state, "unhealthy", name, change.message)
            elif c.running and c.address and self._health.due(c.id):
                rev = await self._known_revision(state.service_id, number)
                if rev is not None:
                    checks.append((c, c.address, rev))
        results = await asyncio.gather(*(self._probe(address, rev) for _, address, rev in checks))
        for (c, _, rev), result in zip(checks, results, strict=True):
            name = c.labels[LABEL_INSTANCE]
            check = rev.spec.health_check
            change = self._health.record(c.id, name, check, result)
            if change is None:
                if self._health.health(c.id) is Health.STARTING:
                    await self._waiting_for(state, c.id, name, check.healthy_threshold, result)
                continue
            await self._note(state, change.message)
        return [
            ObservedInstance(
                id=c.id,
                name=c.labels[LABEL_INSTANCE],
                revision=instances.revision_label(c),
                # One being stopped counts as running until it is gone: its exit is no crash.
                running=c.running or c.id in self._retired,
                exit_code=c.exit_code,
                address=c.address if c.running else None,
                health=self._health.health(c.id) or Health.STARTING,
                started=c.running or c.started_at is not None,
            )
            for c in containers
        ]

    async def _waiting_for(
        self, state: _State, container_id: str, name: str, needed: int, result: ProbeResult
    ) -> None:
        """Tell the operation what the probe of a starting instance answered."""
        if state.operation_id is None:
            return
        if not result.ok and self._probe_lines.get(container_id) != result.detail:
            self._probe_lines[container_id] = result.detail
            await self._note(state, f"{name}: health check: {result.detail}")
        passing, failing = self._health.streak(container_id)
        message = f"waiting for {name}: {result.detail}, {passing} of {needed} passing" + (
            f" ({failing} failed in a row)" if failing else ""
        )
        op_id, now = state.operation_id, self._clock.monotonic()
        last = self._progress.get(op_id)
        if last is not None and (last[0] == message or now - last[1] < PROGRESS_EVERY_S):
            return
        self._progress[op_id] = (message, now)
        await asyncio.to_thread(self._write_progress, op_id, message)

    async def _probe(self, address: str, revision: Revision) -> ProbeResult:
        check = revision.spec.health_check
        try:
            return await self._prober.probe(address, check)
        except Exception as exc:  # a prober must not raise; if it does, the check failed
            return ProbeResult(False, f"probe error: {exc}")

    def _drains(
        self, service: str, route_state: RouteState | None, now: datetime
    ) -> Mapping[str, datetime]:
        draining = set()
        if route_state is not None:
            draining = {
                s.name for s in route_state.route.servers if s.state is not ServerState.READY
            }
        for key in [k for k in self._drain_started if k[0] == service and k[1] not in draining]:
            del self._drain_started[key]
        for name in draining:
            self._drain_started.setdefault((service, name), now)
        return {name: self._drain_started[(service, name)] for name in draining}

    # -- applying actions ----------------------------------------------------------------

    async def _apply(self, state: _State, action: Action) -> None:
        name = state.desired.service
        if isinstance(action, StartInstance):
            await self._start(state, action.revision)
        elif isinstance(action, StopInstance):
            self._stop_soon(state, action.instance.id, action.instance.name, action.reason)
        elif isinstance(action, RemoveInstance):
            await asyncio.to_thread(self._remove, action.instance.id, state, action.instance.name)
            self._health.forget(action.instance.id)
        elif isinstance(action, SetRoute):
            await asyncio.to_thread(self._router.put, action.route)
            now = self._clock.now()
            for server in action.route.servers:
                if server.state is not ServerState.READY:
                    self._drain_started.setdefault((name, server.name), now)
            for line in action.changes:
                await self._note(state, line)
        elif isinstance(action, RemoveRoute):
            await asyncio.to_thread(self._router.remove, name)
            await self._note(state, f"route of {name} removed")
        elif isinstance(action, RecordEvent):
            await self._event(state, action.kind, action.instance, action.message)
        elif isinstance(action, FinishOperation):
            lines = await asyncio.to_thread(
                instances.logs_of,
                self._engine,
                action.logs_from,
                self.timing.log_tail,
                self._health.detail,
            )
            await asyncio.to_thread(
                self._lifecycle.finish,
                action.operation_id,
                action.succeeded,
                action.message,
                lines,
                action.revert,
            )
            self._last_line.pop(action.operation_id, None)
            self._progress.pop(action.operation_id, None)

    async def _start(self, state: _State, number: int) -> None:
        name = state.desired.service
        revision = await asyncio.to_thread(self._revision, state.service_id, number)
        instance = instances.new_instance_id(name, number)
        container = instances.container_spec(revision, name, instance, self._installation)
        network = container.network
        if network is not None and network not in self._networks:
            labels = instances.network_labels(self._installation, name)
            await asyncio.to_thread(self._engine.ensure_network, network, labels)
            self._networks.add(network)
        try:
            try:
                started = await asyncio.to_thread(self._engine.run, container)
            except ImageNotFound:
                # The image was removed from the engine since it was pinned: fetch it again.
                await self._note(state, f"{revision.run_image} is gone from the engine; pulling it")
                auth = self._registry.auth_for(ImageName.parse(revision.image))
                await asyncio.to_thread(self._engine.pull, revision.run_image, auth)
                started = await asyncio.to_thread(self._engine.run, container)
        except StartFailed as exc:
            # Retried by the next pass; if the network went away behind our back, made again.
            self._networks.discard(network or "")
            self._start_errors[name] = str(exc)
            raise
        self._start_errors.pop(name, None)
        self._health.adopt(started.id, routed=False)
        await self._note(state, f"started instance {instance} of revision {number}")
        if self._scaling is not None and self._scaling.waiting(name) and started.address:
            self._hurry(state, (started.id, instance, started.address), revision)

    def _hurry(self, state: _State, instance: tuple[str, str, str], revision: Revision) -> None:
        """Requests wait at zero for this instance: probe it until healthy, then pass at once."""

        async def hurry() -> None:
            change = await probe_until_healthy(
                self._health,
                self._prober,
                self._clock.sleep,
                instance,
                revision.spec.health_check,
                give_up_after=int(HURRY_S / HURRY_EVERY_S),
            )
            if change is not None:
                self.wake()
                await self._note(state, change.message)

        task = asyncio.create_task(hurry(), name=f"hurry {instance[1]}")
        self._hurries.add(task)
        task.add_done_callback(self._hurries.discard)

    async def _begin_next(self, service_id: str) -> None:
        """Begin the service's next operation: its pull may take minutes (a large image, a
        registry that does not answer), so it runs as a task of its own that this pass waits
        for only briefly; no other service's pass waits for it."""
        task = self._begins.get(service_id)
        if task is None or task.done():

            async def begin() -> None:
                try:
                    if await self._lifecycle.begin_next(service_id):
                        self.wake()
                except Exception:
                    log.exception("cannot begin the next operation of %s", service_id)

            task = asyncio.create_task(begin(), name=f"begin {service_id}")
            self._begins[service_id] = task
        await asyncio.wait({task}, timeout=BEGIN_WAIT_S)

    def _stop_soon(self, state: _State | None, container_id: str, name: str, reason: str) -> None:
        """Stop and remove a container in the background: a stop may take the whole stop
        timeout (an app that ignores SIGTERM), and no pass of any service waits for it. The
        planner asks again each pass until the container is gone; one stop runs at a time."""
        if container_id in self._stops:
            return
        self._retired.add(container_id)

        async def stop() -> None:
            try:
                if state is not None:
                    await self._note(state, f"stopping {name}: {reason}")
                await self._stop(container_id, reason, state, name)
                if state is not None:
                    await self._note(state, f"stopped and removed {name}")
            except EngineError as exc:
                log.warning("stopping %s failed: %s", name, exc)
                if state is not None:
                    await self._note(state, f"stopping {name} failed: {exc}")
            finally:
                self._stops.pop(container_id, None)
                self.wake()

        self._stops[container_id] = asyncio.create_task(stop(), name=f"stop {name}")

    async def _stop(
        self, container_id: str, reason: str, state: _State | None = None, name: str = ""
    ) -> None:
        with contextlib.suppress(ContainerNotFound):
            await asyncio.to_thread(self._engine.stop, container_id, self.timing.stop_timeout_s)
        await asyncio.to_thread(self._remove, container_id, state, name)
        self._health.forget(container_id)
        log.info("stopped %s: %s", container_id[:12], reason)

    def _remove(self, container_id: str, state: _State | None = None, name: str = "") -> None:
        if self._logs is not None and state is not None:
            # What it wrote outlives it (an orphan's service is gone: nobody would read it).
            self._logs.capture(container_id, state.desired.service, name)
        with contextlib.suppress(ContainerNotFound):
            self._engine.remove(container_id)

    # -- records -------------------------------------------------------------------------

    async def _note(self, state: _State, line: str) -> None:
        """A line in the operation's log (repeats of the last line are dropped)."""
        op_id = state.operation_id
        if op_id is None:
            log.info("%s: %s", state.desired.service, line)
            return
        if self._last_line.get(op_id) == line:
            return
        self._last_line[op_id] = line
        await asyncio.to_thread(self._write_line, op_id, line)

    def _note_waiting(self, services: list[str], line: str) -> None:
        """Tell each operation in flight (pending ones too) why nothing moves, once."""
        with self._db.session() as s, s.begin():
            for service_id in services:
                op = records.operation_in_flight(s, service_id)
                if op is None or self._last_line.get(op.id) == line:
                    continue
                self._last_line[op.id] = line
                records.log(s, op, self._clock.now(), line)

    def _write_progress(self, op_id: str, message: str) -> None:
        with self._db.session() as s, s.begin():
            op = records.operation_by_id(s, op_id)
            if op.status == OperationStatus.IN_PROGRESS.value:
                op.message = message

    def _write_line(self, op_id: str, line: str) -> None:
        with self._db.session() as s, s.begin():
            op = records.operation_by_id(s, op_id)
            if op.status == OperationStatus.IN_PROGRESS.value:
                records.log(s, op, self._clock.now(), line)

    async def _event(self, state: _State, kind: str, instance: str, message: str) -> None:
        def write() -> None:
            with self._db.session() as s, s.begin():
                records.record_event(
                    s, state.service_id, self._clock.now(), kind, message, instance
                )

        await asyncio.to_thread(write)
        log.info("%s: %s", state.desired.service, message)
        if state.operation_id is not None:
            await self._note(state, message)


def _verb(action: Action) -> str:
    return {
        StartInstance: "starting an instance",
        StopInstance: "stopping an instance",
        RemoveInstance: "removing an exited instance",
        SetRoute: "updating the route",
        RemoveRoute: "removing the route",
        RecordEvent: "recording an event",
        FinishOperation: "ending the operation",
    }[type(action)]


def _log_failure(name: str, task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("reconciling %s failed", name, exc_info=error)
