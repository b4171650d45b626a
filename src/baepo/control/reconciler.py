"""The reconciler: the loop that makes the engine and the router match the database.

Level-triggered. Each pass (`tick`) reads every live service's change mark in one query
(`records.live_service_marks`), Baepo's containers (by label) and every route's state from the
router (`Router.states`: one `show stat`, or the sampler's of the same second), and converges
each service that needs it: begins its next pending operation (`lifecycle.py`), reads its
desired state (`service_state.py`), observes its instances' health and drains
(`observation.py`), gives it the instance count its autoscaler wants within its owner's quota
(`instance_counts.py`), asks `planning.plan` for the next actions and applies them in order,
stopping at the first that fails (the next pass observes again and retries). Starting, stopping
and removing instances and sweeping networks is `containers.py`'s; every line, progress message
and event a pass writes about a service goes through `journal.py`. Nothing about instances is
remembered across restarts but health; a new reconciler adopts what runs.

Cost grows with changes, not with services. A service whose last pass found nothing to do is
passed over while what that pass read is unchanged (`changes.py`): its mark (its row, its
operations), its containers, its route and the router's health verdicts, and the autoscaler's
count. The container listing itself is reused while the engine's event stream is open and
quiet. Every `FULL_PASS_S` a pass converges every service anyway, so a change no mark shows (a
database edited by hand) is still found.

Health: Baepo probes an instance itself only while it starts (the deploy gate, every
`Timing.poll_s`); each change in what the probe answers is a line in the operation's log and
its message says where the start stands: a deploy is never silent for minutes. Once routed,
the router's checks decide (HAProxy `check` with the revision's health check, see
`router/configuration.py`): an instance the router finds down is UNHEALTHY, recorded as an
event and replaced. The route carries the check of the newest revision among its ready servers
(`planning`). A service scaled to zero whose requests the router's activator holds
(`Scaling.waiting`) gets its new instance probed in a hurry, every 20 ms: the held requests
wait for the app's start, not for the next pass.

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

What an instance wrote outlives its container: the log keeper (`logkeeper.py`) copies its
output when the engine reports that it died and just before the reconciler removes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Mapping

from baepo.clock import Clock
from baepo.control import instances, records, triggers
from baepo.control.changes import ChangeTracker, ServiceKey, signature
from baepo.control.containers import Containers
from baepo.control.health import HealthTracker
from baepo.control.images import RegistryLink
from baepo.control.instance_counts import InstanceCounts
from baepo.control.instances import LABEL_INSTALLATION
from baepo.control.journal import Journal
from baepo.control.lifecycle import Lifecycle, Timing
from baepo.control.logkeeper import LogKeeper
from baepo.control.observation import Observer
from baepo.control.planning import (
    Action,
    FinishOperation,
    Health,
    Observed,
    RecordEvent,
    RemoveInstance,
    RemoveRoute,
    SetRoute,
    StartInstance,
    StopInstance,
    plan,
)
from baepo.control.probes import Prober
from baepo.control.quotas import Quota
from baepo.control.scaling import Scaling, Wanted
from baepo.control.service_state import ServiceState, StateReader
from baepo.control.vault import SecretBox
from baepo.events import EventBus, ImagePushed
from baepo.router import Router, RouterError, RouteState, ServerState
from baepo.runtime import LABEL_SERVICE, Engine, EngineError, EventStream, Instance
from baepo.store import Database

log = logging.getLogger(__name__)

NETWORK_SWEEP_S = 10.0
BEGIN_WAIT_S = 0.5
"""How long a pass waits for an operation to begin (a pull) before going on without it."""
FULL_PASS_S = 60.0
"""A pass converges every service this often, changed or not: level-triggered correctness does
not hang on an event or a change mark that was missed."""


class Outage:
    """Something the loop keeps trying (listing the containers, watching the events) that
    fails: a warning when it begins and when its reason changes, not at every try (a pass
    every 2 s); a line when it ends."""

    def __init__(self, over: str) -> None:
        self._over = over
        self._why: str | None = None

    def began(self, why: str) -> None:
        if why != self._why:
            log.warning("%s", why)
        self._why = why

    def ended(self) -> None:
        if self._why is not None:
            log.info("%s", self._over)
        self._why = None


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
        self._engine = engine
        self._router = router
        self._clock = clock
        self._sealer = records.Sealer(secrets)
        self._installation = secrets.fingerprint
        self._registry = registry or RegistryLink()
        self.timing = timing or Timing()
        self._lifecycle = Lifecycle(
            db, engine, self._sealer, clock, self._registry, self.timing, may_pull
        )
        self._health = HealthTracker(clock.monotonic, self.timing.poll_s)
        self._states = StateReader(
            db, self._sealer, self._registry, domain, self.timing.drain_timeout_s
        )
        self._journal = Journal(db, clock)
        self._counts = InstanceCounts(scaling, quota or Quota(), self._journal)
        self._observer = Observer(
            health=self._health,
            prober=prober,
            clock=clock,
            states=self._states,
            journal=self._journal,
            wake=self.wake,
        )
        self._containers = Containers(
            engine=engine,
            registry=self._registry,
            installation=self._installation,
            health=self._health,
            journal=self._journal,
            stop_timeout_s=self.timing.stop_timeout_s,
            wake=self.wake,
            logs=logs,
        )
        self._next_sweep = 0.0
        self._next_full = 0.0
        self._known: set[str] = set()  # the live services' names at the last pass
        self._sweep_pending = True
        self._changes = ChangeTracker()
        self._listing: list[Instance] | None = None  # the last listing of our containers
        self._watching = False  # an engine event stream is open: no event, no change
        self._engine_moved = True
        self._unlisted = Outage("the engine answers again: services go on")
        self._unwatched = Outage("watching the engine's events again")
        self._cut = Outage("the engine's event stream delivers again")
        self._busy = True
        self._passes: dict[str, asyncio.Task[bool]] = {}  # service id → its convergence
        self._begins: dict[str, asyncio.Task[None]] = {}  # service → its next operation's begin
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

    def routed_health(self) -> dict[str, Health]:
        """Instance → its health as this process's router sees it: for a process that does
        not lead (the leader's reconciler probes and tracks the instances; several processes
        may share one database), whose router carries the leader's routes and checks their
        servers itself. A routed instance passed the leader's probes before it was routed: it
        is HEALTHY unless this router's checks find it down."""
        try:
            states = self._router.states()
        except RouterError:
            return {}
        return {
            server.name: Health.UNHEALTHY
            if (verdict := state.health.get(server.name)) is not None and not verdict.up
            else Health.HEALTHY
            for state in states.values()
            for server in state.route.servers
        }

    def listing(self) -> list[Instance] | None:
        """This installation's containers as the last pass listed them (listed again when the
        engine reports a change, and on full passes); None before the first listing and while
        the engine does not answer. Safe from any thread: the metrics read it."""
        return self._listing

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
            for task in self._passes.values():
                task.cancel()  # a pass stuck on the engine is redone after a restart
            self._observer.cancel()
            await self._containers.wait_for_stops()
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
                self._unwatched.began(f"{exc}; trying again every 5 s")
                self._stopping.wait(5)
                continue
            self._unwatched.ended()
            with self._stream_lock:
                self._stream = stream
            if self._stopping.is_set():
                stream.close()
            self._engine_moved = True  # what happened while no stream was open is unknown
            self._watching = True
            try:
                for event in stream:
                    self._cut.ended()
                    self._engine_moved = True
                    if LABEL_SERVICE in event.labels:
                        self.wake()
                        if self._logs is not None:
                            self._logs.capture_died(event)
            except EngineError as exc:
                self._cut.began(f"the engine's event stream ended: {exc}")
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
        containers = await self._listed(services)
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
            wanted = self._counts.moved(key, route_state)
            if full or wanted is not None or self._changed(key, listed, routes):
                chosen.append((key, wanted))
        results = await self._results(self._converge_all(chosen, ours, routes))
        known = {key.name for key in services}
        self._counts.forget_all_but(services)
        self._changes.forget_all_but(key.id for key in services)
        orphans = [c for name, cs in ours.items() if name not in known for c in cs]
        for orphan in orphans:
            self._containers.stop_soon(None, orphan.id, orphan.name, "its service no longer exists")
        self._observer.forget_all_but(c.id for c in containers)
        self._containers.forget_all_but(c.id for c in containers)
        if self._known - known:
            self._sweep_pending = True  # a service went away: its network and logs go too
        self._known = known
        if (self._sweep_pending or full) and self._clock.monotonic() >= self._next_sweep:
            self._next_sweep = self._clock.monotonic() + NETWORK_SWEEP_S
            clean = await asyncio.to_thread(self._containers.sweep_networks, known | set(ours))
            self._sweep_pending = not clean
            if self._logs is not None:
                await asyncio.to_thread(self._logs.retain, known)
        self._busy = busy or any(r is not False for r in results) or bool(orphans)
        return self._busy

    async def _listed(self, services: list[ServiceKey]) -> list[Instance] | None:
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
            self._unlisted.began(f"{exc}; services wait until it answers")
            line = f"waiting for the engine: {exc}"
            await asyncio.to_thread(self._journal.note_waiting, [k.id for k in services], line)
            return None
        self._unlisted.ended()
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

    def _follow_pushes(self, log: triggers.PushLog, batch: int = 100) -> bool:
        """Decide the pushes after the cursor, a batch in one transaction with the cursor's
        move; True if any started a deployment (or more are waiting)."""
        with self._db.session() as s, s.begin():
            position = triggers.cursor(s)
        pushes = log.pushes_after(position, batch)
        if not pushes:  # the usual pass: nothing to decide, so no services to read for it
            return False
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
        state = await asyncio.to_thread(self._states.read, service_id)
        if state is None:
            return False
        try:
            if routes is not None:
                route_state = routes.get(name)
            else:
                route_state = await asyncio.to_thread(self._router.get, name)
        except RouterError as exc:
            await self._journal.note(state, f"cannot read the route: {exc}")
            return True
        instances = await self._observer.observe(
            state, containers, route_state, self._containers.stopping
        )
        now = self._clock.now()
        route = route_state.route if route_state else None
        state = await self._counts.scaled(state, route_state, wanted)
        checks = await self._observer.checks(state, instances)
        state = dataclasses.replace(
            state, desired=dataclasses.replace(state.desired, checks=checks)
        )
        drain_started = self._observer.drains(name, route_state, now)
        observed = Observed(
            now=now,
            instances=tuple(instances),
            route=route,
            in_flight=route_state.in_flight if route_state else {},
            drain_started=drain_started,
            start_error=self._containers.start_error(name),
            routers_behind=route_state.routers_behind if route_state else 0,
        )
        actions = plan(state.desired, observed)
        for action in actions:
            try:
                await self._apply(state, action)
            except (EngineError, RouterError) as exc:
                await self._journal.note(state, f"{_verb(action)} failed: {exc}")
                log.warning("%s: %s failed: %s", name, _verb(action), exc)
                break
        moving = any(i.running and i.health is Health.STARTING for i in instances)
        draining = route is not None and any(s.state is ServerState.DRAIN for s in route.servers)
        busy = state.in_flight or moving or draining or bool(actions)
        if not busy and routes is not None:
            self._changes.settle(service_id, signature(key, containers, route_state))
        return busy

    # -- applying actions ----------------------------------------------------------------

    async def _apply(self, state: ServiceState, action: Action) -> None:
        name = state.desired.service
        if isinstance(action, StartInstance):
            await self._start(state, action.revision)
        elif isinstance(action, StopInstance):
            self._containers.stop_soon(
                state, action.instance.id, action.instance.name, action.reason
            )
        elif isinstance(action, RemoveInstance):
            await self._containers.remove(action.instance.id, state, action.instance.name)
        elif isinstance(action, SetRoute):
            await asyncio.to_thread(self._router.put, action.route)
            self._observer.routed(name, action.route)
            for line in action.changes:
                await self._journal.note(state, line)
        elif isinstance(action, RemoveRoute):
            await asyncio.to_thread(self._router.remove, name)
            await self._journal.note(state, f"route of {name} removed")
        elif isinstance(action, RecordEvent):
            await self._journal.event(state, action.kind, action.instance, action.message)
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
            self._journal.finished(action.operation_id)

    async def _start(self, state: ServiceState, number: int) -> None:
        name = state.desired.service
        revision = await asyncio.to_thread(self._states.revision, state.service_id, number)
        started, instance = await self._containers.start(state, revision)
        if self._counts.waiting(name) and started.address:
            self._observer.hurry(state, (started.id, instance, started.address), revision)

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
