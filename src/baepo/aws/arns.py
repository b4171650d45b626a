"""Baepo's account id and ARNs.

One Baepo installation is one "account": its 12-digit id is drawn from the installation's
fingerprint, so it stays the same across restarts and differs between installations. ARNs use
the partition `baepo`, never `aws`, so that one of Baepo's can never be taken for a real AWS
resource (or the other way round):

    arn:baepo:ecr:us-east-1:123456789012:repository/team/app

The region is the one the client signed its request for: Baepo is a single region and answers
under whichever name the client uses; `parse` reads any region back. App Runner's ARNs are
`arn:aws-baepo:apprunner:…`, since its model allows no other partition than `aws` and
`aws-<name>` (`AWS_PARTITION`).
"""

from __future__ import annotations

from dataclasses import dataclass

PARTITION = "baepo"
AWS_PARTITION = "aws-baepo"
"""The partition of a service whose model only allows `aws` and `aws-<name>` partitions in its
ARNs (App Runner's: `arn:aws(-[\\w]+)*:`)."""


def account_id(installation: str) -> str:
    """The account id of the installation whose fingerprint (hex) is `installation`."""
    return str(int(installation, 16) % 10**12).zfill(12)


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str
    partition: str = PARTITION

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse(text: str) -> Arn | None:
    """The ARN's parts, or None when `text` is not an ARN of Baepo's partition."""
    parts = text.split(":", 5)
    partitions = (PARTITION, AWS_PARTITION)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] not in partitions or not parts[5]:
        return None
    return Arn(parts[2], parts[3], parts[4], parts[5], parts[1])
