"""Screenshots of the console's pages, for docs/console/ and the README.

A throwaway `baepo up` (a temporary data dir, free ports), the sample image pushed to it with
the docker CLI, a service made from it, a token and a user more; then Debian's Chromium
(headless, driven by Playwright) signs in and saves one PNG a page. Run it with
`scripts/console-screenshots` (which starts the engine and builds the sample image first):

    scripts/console-screenshots                      # every page of SHOTS
    scripts/console-screenshots registry settings    # these only

A page more is one line of SHOTS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, StorageState, expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import Stack, open_stack  # noqa: E402

OUT = REPO / "docs" / "console"
CHROMIUM = "/usr/bin/chromium"
SAMPLE = "baepo-sample/hello:1"
SERVICE = "hello"
REPOSITORY = "team/hello"


@dataclass(frozen=True)
class Shot:
    name: str
    """The PNG: docs/console/<name>.png."""
    path: str
    """The page; `{service}`, `{repository}` and `{digest}` are the sample's."""
    width: int = 1280
    height: int = 800
    signed_in: bool = True


SHOTS = (
    Shot("sign-in", "/sign-in", signed_in=False),
    Shot("dashboard", "/"),
    Shot("create-service", "/new"),
    Shot("service", "/services/{service}", height=1600),
    Shot("configuration", "/services/{service}/configuration"),
    Shot("pipeline", "/services/{service}/pipeline"),
    Shot("pipelines", "/pipelines"),
    Shot("registry", "/registry"),
    Shot("repository", "/registry/{repository}"),
    Shot("image", "/registry/{repository}/-/images/{digest}"),
    Shot("settings", "/settings"),
    Shot("service-phone", "/services/{service}", width=360, height=740),
)


def prepare(stack: Stack) -> dict[str, str]:
    """The sample pushed (tags 1 and latest, and to a public repository with immutable tags),
    the service `hello` running it, a CI token and a user: what the pages show. The values the
    shots' paths name."""
    ref = stack.push(SAMPLE, f"{REPOSITORY}:1")
    stack.push(SAMPLE, f"{REPOSITORY}:latest")
    stack.push(SAMPLE, "team/site:1.0.0")
    stack.baepo.make_public("team/site")
    stack.cli("services", "create", SERVICE, "--image", ref, "--port", "8080", "--wait")
    for _ in range(50):  # requests for the service page's charts
        stack.https(f"{SERVICE}.localhost")
    stack.cli("tokens", "create", "ci", "--repository", f"{REPOSITORY}*")
    with stack.baepo.api() as api:
        api.post("/api/v1/users", json={"name": "alice", "password": "alice-password-1"})
        api.put(
            "/api/v1/registry/repositories/team/site/tag-mutability", json={"immutable": True}
        ).raise_for_status()
        tags = api.get(f"/api/v1/registry/repositories/{REPOSITORY}/tags").json()
    return {"service": SERVICE, "repository": REPOSITORY, "digest": tags[0]["digest"]}


def sign_in(browser: Browser, stack: Stack) -> StorageState:
    """The admin signed in: the browser's cookies, for every shot's own browser context."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{stack.baepo.url}/sign-in")
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(stack.baepo.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Services")).to_be_visible()
        return context.storage_state()
    finally:
        context.close()


def shoot(
    browser: Browser, url: str, shot: Shot, values: dict[str, str], session: StorageState
) -> Path:
    context = browser.new_context(
        viewport={"width": shot.width, "height": shot.height},
        is_mobile=shot.width < 600,
        color_scheme="light",
        storage_state=session if shot.signed_in else None,
    )
    try:
        page = context.new_page()
        page.goto(url + shot.path.format(**values))
        page.wait_for_load_state("networkidle")
        target = OUT / f"{shot.name}.png"
        page.screenshot(path=str(target))
        return target
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="shots to take (default: all)")
    names = parser.parse_args().names or [s.name for s in SHOTS]
    unknown = set(names) - {s.name for s in SHOTS}
    if unknown:
        parser.error(f"no shot named {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="baepo-screenshots-") as tmp,
        open_stack(Path(tmp), "--deploy-timeout", "60") as stack,
        sync_playwright() as playwright,
    ):
        values = prepare(stack)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        session = sign_in(browser, stack)
        for shot in SHOTS:
            if shot.name in names:
                print(shoot(browser, stack.baepo.url, shot, values, session).relative_to(REPO))
        browser.close()


if __name__ == "__main__":
    main()
