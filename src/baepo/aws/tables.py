"""The aws room's one table: resource tags, which AWS's APIs keep on their resources and
Baepo's own model has no place for."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from baepo.store import Base


class ResourceTagRow(Base):
    """One tag (`key` = `value`) of a resource, named by its ARN without partition, region and
    account (`apprunner:service/shop/8f1c…`): the same resource whichever region a client
    signs for. A service's id changes when one of the same name is made again, so a deleted
    service's tags never show on its successor."""

    __tablename__ = "aws_resource_tags"
    __table_args__ = (sa.UniqueConstraint("resource", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource: Mapped[str] = mapped_column(sa.String(1100), index=True)
    key: Mapped[str] = mapped_column(sa.String(128))
    value: Mapped[str] = mapped_column(sa.String(256))
