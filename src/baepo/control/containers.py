"""What the reconciler does to the engine: start, stop and remove instances; sweep networks.

Starting an instance makes its service's network first (once per reconciler, or again after
a start failed: it may have gone behind our back) and pulls its image again if the engine lost
it since it was pinned. A start the engine refuses is retried by the next pass; the engine's
own words are kept (`start_error`) for the planner to put in the deploy's failure.

A stop may take the whole stop timeout (an app that ignores SIGTERM), so it runs in the
background and no pass of any service waits for it; one runs per container at a time, and the
planner asks again each pass until the container is gone. A container being stopped counts as
running until no listing shows it (`stopping`): its exit is no crash. What an instance wrote
outlives it: the log keeper copies its output just before it is removed.

Networks of services that are gone are removed once no container holds them
(`sweep_networks`); the reconciler decides when a sweep is worth its listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Collection, Iterable

from baepo.control import instances
from baepo.control.health import HealthTracker
from baepo.control.images import ImageName, RegistryLink
from baepo.control.instances import LABEL_INSTALLATION, Revision
from baepo.control.journal import Journal
from baepo.control.logkeeper import LogKeeper
from baepo.control.service_state import ServiceState
from baepo.runtime import (
    LABEL_SERVICE,
    ContainerConflict,
    ContainerNotFound,
    Engine,
    EngineError,
    ImageNotFound,
    Instance,
    StartFailed,
)

log = logging.getLogger(__name__)


class Containers:
    """This installation's containers and networks on the engine. Used from the event loop
    (`sweep_networks` from a worker thread)."""

    def __init__(
        self,
        *,
        engine: Engine,
        registry: RegistryLink,
        installation: str,
        health: HealthTracker,
        journal: Journal,
        stop_timeout_s: float,
        wake: Callable[[], None],
        logs: LogKeeper | None = None,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._installation = installation
        self._health = health
        self._journal = journal
        self._stop_timeout_s = stop_timeout_s
        self._wake = wake
        self._logs = logs
        self._networks: set[str] = set()  # made (or found) since this reconciler started
        self._start_errors: dict[str, str] = {}  # service → the engine's last refusal
        self._stops: dict[str, asyncio.Task[None]] = {}  # container → its stop under way
        self._retired: set[str] = set()  # containers we stop, until no listing shows them

    @property
    def stopping(self) -> Collection[str]:
        """The containers being stopped (or stopped and not yet gone from a listing)."""
        return self._retired

    def start_error(self, service: str) -> str | None:
        """What the engine said when it last refused to start one of the service's instances
        (None once one started)."""
        return self._start_errors.get(service)

    async def start(self, state: ServiceState, revision: Revision) -> tuple[Instance, str]:
        """Start an instance of `revision`; the container and the instance's name."""
        name = state.desired.service
        instance = instances.new_instance_id(name, revision.number)
        container = instances.container_spec(revision, name, instance, self._installation)
        # An engine that pulls as it starts (Swarm: on whichever node) needs the credentials.
        auth = self._registry.auth_for(ImageName.parse(revision.image))
        container = dataclasses.replace(container, pull_auth=auth)
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
                await self._journal.note(
                    state, f"{revision.run_image} is gone from the engine; pulling it"
                )
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
        await self._journal.note(
            state, f"started instance {instance} of revision {revision.number}"
        )
        return started, instance

    def stop_soon(
        self, state: ServiceState | None, container_id: str, name: str, reason: str
    ) -> None:
        """Stop and remove a container in the background (`state`: its service's, None for
        an orphan), unless its stop is under way already."""
        if container_id in self._stops:
            return
        self._retired.add(container_id)

        async def stop() -> None:
            try:
                if state is not None:
                    await self._journal.note(state, f"stopping {name}: {reason}")
                await self._stop(container_id, reason, state, name)
                if state is not None:
                    await self._journal.note(state, f"stopped and removed {name}")
            except EngineError as exc:
                log.warning("stopping %s failed: %s", name, exc)
                if state is not None:
                    await self._journal.note(state, f"stopping {name} failed: {exc}")
            finally:
                self._stops.pop(container_id, None)
                self._wake()

        self._stops[container_id] = asyncio.create_task(stop(), name=f"stop {name}")

    async def remove(self, container_id: str, state: ServiceState, name: str) -> None:
        """Remove an exited instance (its output kept first)."""
        await asyncio.to_thread(self._remove, container_id, state, name)
        self._health.forget(container_id)

    async def wait_for_stops(self) -> None:
        """Let the stops under way finish (bounded by the stop timeout): the loop is ending,
        and one cut short is redone after a restart."""
        if self._stops:
            await asyncio.wait(list(self._stops.values()), timeout=self._stop_timeout_s)

    def forget_all_but(self, container_ids: Iterable[str]) -> None:
        """The containers a listing shows: a stopped one it no longer shows is gone."""
        self._retired &= set(container_ids)

    def sweep_networks(self, in_use: set[str]) -> bool:
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

    async def _stop(
        self, container_id: str, reason: str, state: ServiceState | None, name: str
    ) -> None:
        with contextlib.suppress(ContainerNotFound):
            await asyncio.to_thread(self._engine.stop, container_id, self._stop_timeout_s)
        await asyncio.to_thread(self._remove, container_id, state, name)
        self._health.forget(container_id)
        log.info("stopped %s: %s", container_id[:12], reason)

    def _remove(self, container_id: str, state: ServiceState | None, name: str) -> None:
        if self._logs is not None and state is not None:
            # What it wrote outlives it (an orphan's service is gone: nobody would read it).
            self._logs.capture(container_id, state.desired.service, name)
        with contextlib.suppress(ContainerNotFound):
            self._engine.remove(container_id)
