"""The flags that say where an installation's state is: its database and its blob store.

`baepo up` takes them, and so do `backup` and `restore`, which must find the same state
without a running Baepo to ask (docs/operations.md, "Backup").
"""

from __future__ import annotations

from typing import Annotated

import typer

Storage = Annotated[str, typer.Option(help="Where the registry keeps blobs: filesystem or s3.")]
S3Bucket = Annotated[str | None, typer.Option(help="S3 bucket of the blobs.")]
S3Endpoint = Annotated[
    str | None, typer.Option(help="S3 server URL (default: AWS's for the region).")
]
S3Region = Annotated[str, typer.Option(help="S3 region.")]
S3Prefix = Annotated[str, typer.Option(help="Key prefix of Baepo's objects.")]
S3AccessKey = Annotated[
    str | None, typer.Option(help="S3 access key (default: $AWS_ACCESS_KEY_ID).")
]
S3SecretKey = Annotated[
    str | None, typer.Option(help="S3 secret key (default: $AWS_SECRET_ACCESS_KEY).")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="The state database: postgresql+psycopg://user@host/db (default: "
        "$BAEPO_DATABASE_URL, else SQLite in the data directory).",
    ),
]
