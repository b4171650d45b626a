"""The CI workflow `baepo ci github <service>` writes: on a push to the deploy branch, GitHub
Actions (or Gitea/Forgejo Actions, which read the same file) builds the image, pushes it to
Baepo's registry as `<registry>/<owner>/<service>:<commit>`, asks Baepo to deploy it and
follows the deployment until it ends. The job fails unless the deployment SUCCEEDED (a deploy
whose new revision never gets healthy is rolled back by Baepo, and fails the job). Pure.

It needs two secrets in the repository: `BAEPO_USER` and `BAEPO_TOKEN`, an API token limited
to the service and its repository (`tokens_command` prints the command that makes one), which
may push that repository, deploy that service and read its operations, and nothing else.

The deploy step is plain bash with curl and jq (both on GitHub's and Gitea's runner images),
speaking the API every client speaks: `POST /api/v1/services/{name}/deployments` with the image,
then `GET /api/v1/operations/{id}` until its status is final, printing the operation's log.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from baepo.references import InvalidReference, Reference

DEPLOY_STEP = "Deploy and wait for the result"
FINISHED = ("SUCCEEDED", "FAILED", "ROLLBACK_SUCCEEDED", "ROLLBACK_FAILED")

DEPLOY_SCRIPT = r"""set -euo pipefail
# Ask Baepo to deploy $IMAGE, then follow the operation: its log, then its result.
api() {
  local answer
  if ! answer=$(curl -sS --fail-with-body -H "Authorization: Bearer $BAEPO_TOKEN" "$@"); then
    echo "::error::Baepo answered: ${answer:-nothing}" >&2
    return 1
  fi
  printf '%s\n' "$answer"
}
body=$(jq -nc --arg image "$IMAGE" '{image: $image}')
operation=$(api -X POST -H 'Content-Type: application/json' -d "$body" \
  "$BAEPO_URL/api/v1/services/$BAEPO_SERVICE/deployments" | jq -r .id)
echo "Deploying $IMAGE to $BAEPO_SERVICE (operation $operation)"
deadline=$((SECONDS + ${DEPLOY_TIMEOUT:-900}))
shown=0
while true; do
  # Reads are retried (a Baepo restarting); the deploy above is not (it would deploy twice).
  answer=$(api --retry 5 --retry-connrefused "$BAEPO_URL/api/v1/operations/$operation")
  jq -r --argjson from "$shown" '.log[$from:][] | .line' <<<"$answer"
  shown=$(jq '.log | length' <<<"$answer")
  status=$(jq -r .status <<<"$answer")
  case "$status" in
    SUCCEEDED)
      echo "Deployed $IMAGE"
      exit 0
      ;;
    FAILED | ROLLBACK_SUCCEEDED | ROLLBACK_FAILED)
      echo "::error::The deployment ended $status: $(jq -r .message <<<"$answer")"
      exit 1
      ;;
  esac
  if ((SECONDS >= deadline)); then
    echo "::error::The deployment was still $status after ${DEPLOY_TIMEOUT:-900} s"
    exit 1
  fi
  sleep 2
done
"""

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_URL = re.compile(r"https?://[^\s\"'\\]+")
_PATH = re.compile(r"[A-Za-z0-9._/-]{1,255}")
"""Branch names and paths: the characters that need no quoting in YAML or the shell."""


@dataclass(frozen=True)
class WorkflowTarget:
    service: str
    owner: str
    api_url: str
    """Baepo's API as the CI runner reaches it: `https://baepo.example.com`."""
    registry: str
    """Baepo's registry host as the runner reaches it (and as Baepo knows itself):
    `baepo.example.com`, `registry.example.com:443`."""
    branch: str = "main"
    dockerfile: str = "Dockerfile"
    context: str = "."

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.service}"


def check(target: WorkflowTarget) -> None:
    """ValueError naming the field that cannot go into a workflow."""
    for field, value, pattern in (
        ("service", target.service, _NAME),
        ("owner", target.owner, _NAME),
        ("url", target.api_url, _URL),
        ("branch", target.branch, _PATH),
        ("dockerfile", target.dockerfile, _PATH),
        ("context", target.context, _PATH),
    ):
        if not pattern.fullmatch(value):
            raise ValueError(f"{field}: {value!r} cannot go into a workflow")
    try:
        Reference.parse(f"{target.registry}/{target.repository}:tag")
    except InvalidReference as exc:
        raise ValueError(f"registry: {target.registry!r} is not a registry host: {exc}") from None
    if "/" in target.registry:
        raise ValueError(f"registry: {target.registry!r} is a host, with no path")


def workflow(target: WorkflowTarget) -> str:
    """The workflow file's text."""
    check(target)
    image = f"{target.registry}/{target.repository}"
    return "\n".join(
        [
            f"# Made by `baepo ci github {target.service}`.",
            f"# On a push to {target.branch}: build the image, push it to Baepo's registry,",
            "# deploy it, and fail unless the deployment SUCCEEDED (Gitea and Forgejo Actions",
            "# read this file too).",
            "#",
            "# Repository secrets it needs: BAEPO_USER (your Baepo user name) and BAEPO_TOKEN,",
            "# a token limited to this service and its repository:",
            f"#   {tokens_command(target)}",
            "name: baepo",
            "on:",
            "  push:",
            f"    branches: [{_quoted(target.branch)}]",
            "  workflow_dispatch:",
            "concurrency:",
            f"  group: {_quoted('baepo-' + target.service)}",
            "  cancel-in-progress: false",
            "permissions:",
            "  contents: read",
            "jobs:",
            "  deploy:",
            "    runs-on: ubuntu-latest",
            "    timeout-minutes: 30",
            "    env:",
            f"      BAEPO_URL: {_quoted(target.api_url.rstrip('/'))}",
            f"      BAEPO_REGISTRY: {_quoted(target.registry)}",
            f"      BAEPO_SERVICE: {_quoted(target.service)}",
            f"      IMAGE: {_quoted(image + ':${{ github.sha }}')}",
            "    steps:",
            "      - uses: actions/checkout@v4",
            "      - name: Log in to Baepo's registry",
            "        env:",
            "          BAEPO_USER: ${{ secrets.BAEPO_USER }}",
            "          BAEPO_TOKEN: ${{ secrets.BAEPO_TOKEN }}",
            "        run: |",
            "          printf '%s' \"$BAEPO_TOKEN\" |",
            '            docker login "$BAEPO_REGISTRY" --username "$BAEPO_USER" --password-stdin',
            "      - name: Build and push the image",
            "        run: |",
            f'          docker build --file {target.dockerfile} --tag "$IMAGE" {target.context}',
            '          docker push "$IMAGE"',
            f"      - name: {DEPLOY_STEP}",
            "        env:",
            "          BAEPO_TOKEN: ${{ secrets.BAEPO_TOKEN }}",
            '          DEPLOY_TIMEOUT: "900"',
            "        run: |",
            *(f"          {line}" if line else "" for line in DEPLOY_SCRIPT.splitlines()),
            "",
        ]
    )


def tokens_command(target: WorkflowTarget) -> str:
    """The `baepo` command that makes the token the workflow needs."""
    return (
        f"baepo tokens create ci-{target.service} --service {target.service} "
        f"--repository {target.repository}"
    )


def _quoted(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is YAML's)."""
    return json.dumps(value)
