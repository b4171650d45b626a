"""The console in a real browser: Chromium (Debian's, driven by Playwright) against a real
`baepo up`, its router, the Docker engine and an image pushed with the docker CLI. One Baepo
for the module (the last test stops and starts it again: it checks that a page following a
log does not hold up a stop).

Chromium and the engine share this machine, and Chromium fails what it has in flight when the
machine's network addresses change (`ERR_NETWORK_CHANGED`), which the engine does with every
container and network. So the pages are opened at Baepo's own address (`http://127.0.0.1:<port>`,
where opening a connection takes no time to speak of), Chromium speaks HTTP/1.1 (it closes an
HTTP/2 session with all its requests at such a change), and a page opened by GET is opened
again if it was dropped all the same (`load`). A person's browser is not on the machine that
runs the containers. The console through the router over HTTPS has a test of its own.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.components import missing
from tests.e2e.conftest import Stack, open_stack

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
PASSWORDS = {"alice": "alice-console-password", "bob": "bob-console-password"}
OPERATION_MS = 90_000
"""How long a deploy may take to show on the page (pull, start, health check)."""
DROPPED = "ERR_NETWORK_CHANGED"
LOADS = 5
"""Tries at opening a page by GET."""


@dataclass
class Site:
    stack: Stack
    refs: dict[str, str] = field(default_factory=dict)
    """hello:1 and hello:2 in Baepo's registry, as the console names them."""

    @property
    def url(self) -> str:
        return self.stack.baepo.url

    def service_url(self, name: str) -> str:
        return f"https://{name}.localhost:{self.stack.baepo.https_port}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Baepo with users alice and bob (made with the CLI) and alice/hello:1 and :2 pushed."""
    with open_stack(tmp_path_factory.mktemp("console"), "--deploy-timeout", "30") as stack:
        for user, password in PASSWORDS.items():
            make_user(stack, user, password)
        refs = {v: stack.push(f"baepo-test/hello:{v}", f"alice/hello:{v}") for v in ("1", "2")}
        yield Site(stack, refs)


def make_user(stack: Stack, name: str, password: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "baepo", "users", "create", name, "--password-stdin"],
        env={**os.environ, **stack.env},
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def private(site: Site) -> str:
    """alice's service `private`, made by the admin with the CLI."""
    site.stack.cli(
        *("services", "create", "private", "--image", site.refs["1"], "--port", "8080"),
        *("--owner", "alice", "--wait"),
    )
    return "private"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing("chromium is not installed (scripts/setup --test installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--disable-http2"]
        )
        yield launched
        launched.close()


@dataclass
class Person:
    page: Page
    errors: list[str] = field(default_factory=list)
    """Scripts that failed, and what the Content-Security-Policy refused. (Not a poll that
    failed at a network change: htmx says so, and the next poll goes on.)"""
    failed: list[str] = field(default_factory=list)
    """`<status> <url>` of each answer of 400 or more."""

    def failed_at(self, site: Site) -> list[str]:
        return [line for line in self.failed if line.split(" ", 1)[1].startswith(site.url)]


@pytest.fixture
def person(browser: Browser) -> Iterator[Callable[..., Person]]:
    contexts = []

    def open_browser(**options: Any) -> Person:
        context = browser.new_context(ignore_https_errors=True, **options)
        contexts.append(context)
        found = Person(context.new_page())

        def noted(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                found.errors.append(message.text)

        def answered(response: Response) -> None:
            if response.status >= 400:
                found.failed.append(f"{response.status} {response.url}")

        found.page.on("console", noted)
        found.page.on("pageerror", lambda exc: found.errors.append(str(exc)))
        found.page.on("response", answered)
        return found

    yield open_browser
    for context in contexts:
        context.close()


def load(page: Page, url: str) -> Response | None:
    """GET `url` in the page; again if Chromium dropped it at a network change."""
    for attempt in range(LOADS):
        try:
            return page.goto(url)
        except PlaywrightError as exc:
            if DROPPED not in str(exc) or attempt == LOADS - 1:
                raise
    raise AssertionError("unreachable")


def sign_in(site: Site, page: Page, user: str) -> None:
    """By keyboard alone: the user name has the focus, Tab to the password, Enter."""
    load(page, site.url + "/")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS[user])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Services")).to_be_visible()


def fact(page: Page, name: str) -> Locator:
    """The value of a service's fact (Status, URL, Active revision...)."""
    return (
        page.locator(".facts div").filter(has=page.locator(f"dt:text-is('{name}')")).locator("dd")
    )


def settled(page: Page, status: str, revision: str | None = None) -> None:
    """Until the page (which polls itself) shows `status` with no operation in flight."""
    expect(fact(page, "Status")).to_have_text(status, timeout=OPERATION_MS)
    if revision is not None:
        expect(fact(page, "Active revision")).to_have_text(revision)
    expect(page.locator("#live")).not_to_have_attribute("hx-trigger", re.compile("."))


def serves(site: Site, name: str) -> str:
    """What the service answers at its URL (through the router, over HTTPS)."""
    return site.stack.https(f"{name}.localhost").text


def test_create_deploy_roll_back_pause_and_resume(
    site: Site, person: Callable[..., Person]
) -> None:
    alice = person()
    page = alice.page
    sign_in(site, page, "alice")
    session = {c["name"]: c for c in page.context.cookies()}["baepo-session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"

    page.get_by_role("link", name="Create service").first.click()
    expect(page.get_by_label("Port")).to_have_value("8080")
    options = page.locator("#image-choices option")
    expect(options).to_have_count(2)
    assert set(options.evaluate_all("os => os.map(o => o.value)")) == set(site.refs.values())
    page.get_by_label("Service name").fill("web")
    page.get_by_label("Image").fill(site.refs["1"])
    page.get_by_label("CPU and memory per instance").select_option(label="0.25 vCPU · 0.5 GB")
    page.get_by_label("Environment variables").fill("GREETING=hello")
    page.get_by_role("button", name="Create service").click()

    expect(page.get_by_role("heading", name="web", exact=True)).to_be_visible()
    settled(page, "running", "1")
    url = site.service_url("web")
    expect(fact(page, "URL").get_by_role("link")).to_have_attribute("href", url)
    assert "hello v1" in serves(site, "web")
    load(page, url)  # the service itself, in the browser
    expect(page.locator("body")).to_contain_text("hello v1")
    load(page, f"{site.url}/services/web")

    page.get_by_label("Image").fill(site.refs["2"])
    page.get_by_role("button", name="Deploy").click()
    settled(page, "running", "2")
    assert "hello v2" in serves(site, "web")
    expect(page.locator("#history")).to_contain_text("start deployment")

    page.get_by_role("button", name="Roll back to 1").click()
    settled(page, "running", "1")
    assert "hello v1" in serves(site, "web")

    page.get_by_role("link", name="Pause", exact=True).click()
    expect(page.get_by_role("heading", name="Pause web?")).to_be_visible()
    page.get_by_role("button", name="Pause web").click()
    settled(page, "paused")
    assert "hello v1" not in serves(site, "web")

    page.get_by_role("button", name="Resume").click()
    settled(page, "running")
    assert "hello v1" in serves(site, "web")

    page.get_by_role("link", name="Services").click()
    row = page.get_by_role("row").filter(has_text="web")
    expect(row).to_contain_text("running")
    expect(row).to_contain_text(url)
    assert alice.errors == []  # htmx ran under the Content-Security-Policy, nothing refused
    assert alice.failed_at(site) == []


def test_another_user_neither_sees_nor_changes_it(
    site: Site, private: str, person: Callable[..., Person]
) -> None:
    bob = person()
    page = bob.page
    sign_in(site, page, "bob")
    expect(page.locator("main")).not_to_contain_text(private)
    answer = load(page, f"{site.url}/services/{private}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()

    # A form bob could post (his own session's token) changes nothing of alice's.
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert token
    for action in ("pause", "delete"):
        status = page.evaluate(
            """async ([url, csrf]) => (await fetch(url, {
                method: "POST", body: new URLSearchParams({csrf}), redirect: "manual"
            })).status""",
            [f"{site.url}/services/{private}/{action}", token],
        )
        assert status == 404, action
    described = site.stack.describe(private)
    assert described["status"] == "RUNNING" and described["owner"] == "alice"


def test_usable_on_a_phone_sized_screen(
    site: Site, private: str, person: Callable[..., Person]
) -> None:
    phone = person(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    sign_in(site, phone.page, "alice")
    service = f"/services/{private}"
    pages = (
        "/", "/new", service, f"{service}/configuration", f"{service}/pipeline", "/pipelines",
        "/registry", "/settings",
    )  # fmt: skip
    for path in pages:
        load(phone.page, site.url + path)
        overflow = phone.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, path  # wide tables scroll inside their box, not the page
    assert phone.errors == [] and phone.failed_at(site) == []


def test_the_registry_and_a_token_shown_once(site: Site, person: Callable[..., Person]) -> None:
    """The repository pushed with the docker CLI, its image's layers; a token made (its
    secret shown once, with a Copy button), used, and revoked after asking."""
    alice = person()
    page = alice.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(site, page, "alice")
    page.get_by_role("link", name="Registry").click()
    page.get_by_role("link", name="alice/hello").click()
    expect(page.get_by_role("heading", name="alice/hello")).to_be_visible()
    tag = page.locator("#tags-heading + .scroll tbody tr").filter(has_text="Delete tag 1")
    tag.get_by_role("link").first.click()
    expect(page.locator("#layers-heading + .scroll tbody tr").first).to_contain_text("sha256:")

    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Secret of laptop")
    copy = page.locator("button[data-copy]")
    copy.click()  # shown by its script, under the Content-Security-Policy
    expect(copy).to_have_text("Copied")
    value = secret.input_value()
    assert page.evaluate("navigator.clipboard.readText()") == value
    bearer = {"Authorization": f"Bearer {value}"}
    assert httpx.get(f"{site.url}/api/v1/whoami", headers=bearer).json()["name"] == "alice"
    load(page, f"{site.url}/settings")
    expect(page.get_by_label("Secret of laptop")).to_have_count(0)  # shown once

    page.get_by_role("link", name="Revoke token laptop").click()
    page.get_by_role("button", name="Revoke token laptop").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    expect(page.get_by_role("link", name="Revoke token laptop")).to_have_count(0)
    assert httpx.get(f"{site.url}/api/v1/whoami", headers=bearer).status_code == 401
    assert alice.errors == [] and alice.failed_at(site) == []


def test_through_the_router_the_cookies_are_https_only(
    site: Site, person: Callable[..., Person]
) -> None:
    """At https://registry.<domain> (HAProxy says X-Forwarded-Proto: https) the console's
    cookies are `Secure` and `__Host-`: no service at another host of the domain plants one."""
    page = person().page
    registry = f"https://registry.localhost:{site.stack.baepo.https_port}"
    wait_until(lambda: site.stack.https("registry.localhost", "/sign-in").status_code == 200)
    load(page, f"{registry}/sign-in")
    expect(page.get_by_role("heading", name="Sign in to Baepo")).to_be_visible()
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "__Host-baepo-signin"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["path"] == "/"


def wait_until(ready: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready after {timeout} s")


TICKING = (
    'trap "exit 0" TERM; httpd -f -p 8080 -h /www & i=0; '
    'while true; do i=$((i+1)); echo "tick $i"; sleep 0.5; done'
)
"""Serves as the hello image does, and prints a numbered line twice a second."""
TICK = re.compile(r"tick (\d+)")


@pytest.fixture(scope="module")
def ticking(site: Site) -> str:
    """alice's service `ticking`, made by the admin with the CLI."""
    site.stack.cli(
        *("services", "create", "ticking", "--image", site.refs["1"], "--port", "8080"),
        *("--command", f"sh -c {shlex.quote(TICKING)}", "--owner", "alice", "--wait"),
    )
    return "ticking"


def last_tick(text: str) -> int:
    return max((int(n) for n in TICK.findall(text)), default=0)


def test_a_line_the_app_prints_shows_without_a_reload(
    site: Site, ticking: str, person: Callable[..., Person]
) -> None:
    alice = person()
    page = alice.page
    sign_in(site, page, "alice")
    load(page, f"{site.url}/services/{ticking}")
    logs = page.get_by_role("log", name="Logs")
    expect(page.locator("#logs-state")).to_have_text("following")
    expect(logs).to_contain_text("tick")
    later = last_tick(logs.inner_text()) + 3  # printed after the page was rendered
    expect(logs).to_contain_text(re.compile(rf"tick {later}\b"), timeout=30_000)
    assert alice.errors == []  # the script ran under the Content-Security-Policy
    assert alice.failed_at(site) == []


def test_an_environment_variable_changed_in_the_form_is_deployed(
    site: Site, ticking: str, person: Callable[..., Person]
) -> None:
    alice = person()
    page = alice.page
    sign_in(site, page, "alice")
    load(page, f"{site.url}/services/{ticking}")
    revision = int(fact(page, "Active revision").inner_text())
    page.get_by_role("link", name="Edit configuration").click()
    expect(page.get_by_label("Port")).to_have_value("8080")
    variables = page.get_by_label("Environment variables")
    message = f"set in the console {revision}"
    variables.fill(f"MESSAGE={message}")
    page.get_by_role("button", name="Save and deploy").click()
    expect(page.get_by_role("heading", name=ticking, exact=True)).to_be_visible()
    settled(page, "running", str(revision + 1))
    expect(page.locator("#history")).to_contain_text("update service", timeout=OPERATION_MS)
    assert f"message: {message}" in serves(site, ticking)
    expect(page.locator("#logs-state")).to_have_text("following")  # the new instance's too
    assert alice.errors == [] and alice.failed_at(site) == []


def test_baepo_stops_cleanly_with_a_log_page_open(
    site: Site, ticking: str, person: Callable[..., Person]
) -> None:
    """The relay of an open log ends when the server begins to stop: the drain does not wait
    for it (nor cancel it), and the shutdown is the graceful one, not the watchdog's exit
    after 10 s."""
    page = person().page
    sign_in(site, page, "alice")
    load(page, f"{site.url}/services/{ticking}")
    expect(page.locator("#logs-state")).to_have_text("following")
    baepo = site.stack.baepo
    before = len(baepo.log())
    try:
        assert baepo.stop() == 0
        stopping = baepo.log()[before:]
        assert "control plane stopped" in stopping
        assert "timeout graceful shutdown exceeded" not in stopping  # the relay had ended
        assert "shutdown still not done" not in stopping
    finally:
        baepo.start()  # the module's Baepo, for what comes after
