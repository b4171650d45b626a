"""Baepo's account id and ARNs.

One Baepo installation is one "account": its 12-digit id is drawn from the installation's
fingerprint, so it stays the same across restarts and differs between installations. ARNs use
the partition `baepo`, never `aws`, so that one of Baepo's can never be taken for a real AWS
resource (or the other way round):

    arn:baepo:ecr:us-east-1:123456789012:repository/team/app
    arn:baepo:apprunner:us-east-1:123456789012:service/app/8f1c…

The region is the one the client signed its request for: Baepo is a single region and answers
under whichever name the client uses; `parse` reads any region back.
"""

from __future__ import annotations

from dataclasses import dataclass

PARTITION = "baepo"


def account_id(installation: str) -> str:
    """The account id of the installation whose fingerprint (hex) is `installation`."""
    return str(int(installation, 16) % 10**12).zfill(12)


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{PARTITION}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse(text: str) -> Arn | None:
    """The ARN's parts, or None when `text` is not an ARN of Baepo's partition."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] != PARTITION or not parts[5]:
        return None
    return Arn(parts[2], parts[3], parts[4], parts[5])
