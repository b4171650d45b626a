"""The edge: how the machine Baepo runs on reaches the addresses of tasks on Swarm's overlays.

An overlay address exists only inside the containers attached to that overlay, so neither the
router (HAProxy, a process on Baepo's machine) nor the health probes (Baepo itself) could reach
a task's address. The edge is one standalone container on the node whose engine Baepo talks to
(a manager: Baepo runs on it), attached to every one of Baepo's service networks (they are made
attachable), and joined to Baepo's own network namespace by a veth pair:

    Baepo's network namespace             the edge container                overlays
    <link> 169.254.231.1/30  ───veth───   edge0 169.254.231.2/30
    route <each overlay's subnet>         forwards, and masquerades   ──→  eth1 10.232.1.x
          via 169.254.231.2               what leaves by the overlays ──→  eth2 10.232.2.x …

Masquerading makes a task answer the edge's own overlay address (a task's default route is
Swarm's gateway bridge, which knows nothing of Baepo's host). The router and the probes then
reach `Instance.address` (a task's overlay address and port) as they reach a container's
address on one engine: nothing else in Baepo changes. Each overlay the edge joins gets a route
for its subnet, and loses it when the edge leaves: never a whole address pool (a swarm's
default pool is 10.0.0.0/8, which the machine may route elsewhere).

The veth goes with the container's network namespace (a restart of the edge or of its node's
engine), so `ensure` checks that the host's end still exists (a look at /sys, no command) and
makes it again if not, with the routes of the overlays the edge is on (the engine keeps those
across restarts).

Setting the link up needs root in Baepo's namespace (it already has the engine's socket,
which is root on that machine) and `ip`, `nsenter` and `iptables` (iproute2, util-linux).
"""

from __future__ import annotations

import ipaddress
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baepo.runtime.boundary import boundary
from baepo.runtime.engine_http import EngineClient, endpoint
from baepo.runtime.errors import ContainerNotFound, EngineError

LABEL_EDGE = "baepo.edge"
_INSIDE = "edge0"


class Edge:
    def __init__(
        self,
        engine_url: str,
        image: str,
        *,
        name: str = "baepo-edge",
        link: str = "169.254.231.0/30",
        host_link: str = "baepo-edge0",
        command: Sequence[str] = ("sleep", "2147483647"),
        timeout_s: float = 60,
    ) -> None:
        self.name = name
        self._client = EngineClient(engine_url, timeout_s=timeout_s)
        self._image = image
        self._command = list(command)
        network = ipaddress.IPv4Network(link)
        self._host, self._inside = (str(a) for a in list(network.hosts())[:2])
        self._link = network
        self._host_link = host_link
        self._timeout_s = timeout_s
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """The edge container runs and Baepo's namespace routes its overlays through it."""
        with self._lock:
            if Path("/sys/class/net", self._host_link).exists():
                return
            attrs = self._running_container()
            self._link_up(int((attrs.get("State") or {}).get("Pid") or 0))
            joined = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
            for network in joined:
                self._route(network)

    def attach(self, network: str) -> None:
        """Join the overlay `network` (made attachable): its tasks become reachable."""
        self.ensure()
        try:
            with boundary(f"attach the edge to {network}"):
                self._client.request(
                    "POST",
                    endpoint("/networks/{}/connect", network),
                    body={"Container": self.name},
                )
        except EngineError as exc:
            if "already exists" not in str(exc) and "already attached" not in str(exc):
                raise
        self._route(network)

    def detach(self, network: str) -> None:
        subnets = self._subnets(network)
        try:
            with boundary(f"detach the edge from {network}"):
                self._client.request(
                    "POST",
                    endpoint("/networks/{}/disconnect", network),
                    body={"Container": self.name, "Force": True},
                )
        except ContainerNotFound:
            pass
        except EngineError as exc:
            if "is not connected" not in str(exc):
                raise
        for subnet in subnets:
            _succeeds("ip", "route", "del", subnet, "via", self._inside, "dev", self._host_link)

    def remove(self) -> None:
        """Remove the edge container (its end of the link and the routes go with it)."""
        try:
            with boundary(f"remove {self.name}"):
                self._client.request(
                    "DELETE", endpoint("/containers/{}", self.name), query={"force": True}
                )
        except ContainerNotFound:
            pass

    # -- the container --------------------------------------------------------------------

    def _running_container(self) -> dict[str, Any]:
        """The edge container's inspect, made and started as needed."""
        try:
            with boundary(f"inspect {self.name}"):
                attrs = self._inspect()
        except ContainerNotFound:
            with boundary(f"create {self.name} from {self._image}"):
                self._client.json(
                    "POST",
                    "/containers/create",
                    query={"name": self.name},
                    body={
                        "Image": self._image,
                        "Cmd": self._command,
                        # It holds no state, and `sleep` as PID 1 ignores SIGTERM.
                        "StopSignal": "SIGKILL",
                        "Labels": {LABEL_EDGE: "true"},
                        "HostConfig": {
                            "Sysctls": {"net.ipv4.ip_forward": "1"},
                            "RestartPolicy": {"Name": "unless-stopped"},
                        },
                    },
                )
            attrs = {}
        if not (attrs.get("State") or {}).get("Running"):
            with boundary(f"start {self.name}"):
                self._client.request("POST", endpoint("/containers/{}/start", self.name))
                attrs = self._inspect()
        if int((attrs.get("State") or {}).get("Pid") or 0) <= 0:
            raise EngineError(f"{self.name} does not run: {attrs.get('State')}")
        return attrs

    def _inspect(self) -> dict[str, Any]:
        answer = self._client.json("GET", endpoint("/containers/{}/json", self.name))
        return answer if isinstance(answer, dict) else {}

    def _subnets(self, network: str) -> list[str]:
        """The subnets of `network` if it is an overlay (the edge's own bridge is not routed)."""
        try:
            with boundary(f"inspect network {network}"):
                attrs = self._client.json("GET", endpoint("/networks/{}", network))
        except ContainerNotFound:
            return []
        if not isinstance(attrs, dict) or attrs.get("Driver") != "overlay":
            return []
        configs = (attrs.get("IPAM") or {}).get("Config") or []
        return [str(c["Subnet"]) for c in configs if c.get("Subnet")]

    def _route(self, network: str) -> None:
        for subnet in self._subnets(network):
            _run("ip", "route", "replace", subnet, "via", self._inside, "dev", self._host_link)

    # -- the link -------------------------------------------------------------------------

    def _link_up(self, pid: int) -> None:
        inside = ["nsenter", f"--net=/proc/{pid}/ns/net"]
        prefix = self._link.prefixlen
        masquerade = ["-s", str(self._link), "!", "-o", _INSIDE, "-j", "MASQUERADE"]
        _run("ip", "link", "add", self._host_link, "type", "veth", "peer", "name", _INSIDE,
             "netns", str(pid))  # fmt: skip
        _run("ip", "addr", "replace", f"{self._host}/{prefix}", "dev", self._host_link)
        _run("ip", "link", "set", self._host_link, "up")
        _run(*inside, "ip", "addr", "replace", f"{self._inside}/{prefix}", "dev", _INSIDE)
        _run(*inside, "ip", "link", "set", _INSIDE, "up")
        if not _succeeds(*inside, "iptables", "-t", "nat", "-C", "POSTROUTING", *masquerade):
            _run(*inside, "iptables", "-t", "nat", "-A", "POSTROUTING", *masquerade)


def _run(*command: str) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=30)
    except subprocess.CalledProcessError as exc:
        why = (exc.stderr or exc.stdout or "").strip() or f"exit status {exc.returncode}"
        raise EngineError(f"cannot set up the swarm edge: {' '.join(command)}: {why}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"cannot set up the swarm edge: {' '.join(command)}: {exc}") from exc


def _succeeds(*command: str) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
