"""App Runner over Baepo's services room, at the AWS endpoint.

    apprunner_service(services, may_run)   the JsonService for `AwsEndpoint`

Target prefix `AppRunner`, awsJson1_0, signing name `apprunner`. Shapes, enums and error codes
are botocore's App Runner model's (tests/aws check every answer against it). Services are
Baepo's own, with its rights: a user's services are theirs, an admin's token reaches all, a
token limited to services may read and deploy them (docs/aws.md lists what differs from AWS).

    services.py   Create/Describe/Update/Delete/ListServices, StartDeployment, Pause/Resume,
                  ListOperations
    autoscaling.py  Create/Describe/List/DeleteAutoScalingConfiguration
    domains.py      Associate/DisassociateCustomDomain, DescribeCustomDomains
    tags.py         Tag/UntagResource, ListTagsForResource (the aws room's one table)
    shapes.py     App Runner's shapes for Baepo's views
    access.py     callers, ARNs and ids; errors.py  App Runner's error codes
"""

from __future__ import annotations

from baepo.aws import JsonService
from baepo.aws.apprunner.autoscaling import AutoScaling
from baepo.aws.apprunner.domains import CustomDomains
from baepo.aws.apprunner.errors import InternalServiceError, InvalidRequest, translate
from baepo.aws.apprunner.services import MayRun, ServiceOperations
from baepo.aws.apprunner.tags import Tags
from baepo.control import Services
from baepo.store import Database

TARGET_PREFIX = "AppRunner"


def apprunner_service(services: Services, may_run: MayRun, db: Database) -> JsonService:
    """App Runner over `services`; `may_run` says why a caller may not run an image (the
    API's `ImageCheck.refusal`), or None; `db` keeps resource tags."""
    tags = Tags(db, services)
    service = ServiceOperations(services, may_run, tags)
    autoscaling = AutoScaling(services.configurations, tags)
    domains = CustomDomains(services)
    operations = {
        "CreateService": service.create,
        "DescribeService": service.describe,
        "UpdateService": service.update,
        "DeleteService": service.delete,
        "ListServices": service.list,
        "StartDeployment": service.start_deployment,
        "PauseService": service.pause,
        "ResumeService": service.resume,
        "ListOperations": service.list_operations,
        "CreateAutoScalingConfiguration": autoscaling.create,
        "DescribeAutoScalingConfiguration": autoscaling.describe,
        "ListAutoScalingConfigurations": autoscaling.list,
        "DeleteAutoScalingConfiguration": autoscaling.delete,
        "AssociateCustomDomain": domains.associate,
        "DisassociateCustomDomain": domains.disassociate,
        "DescribeCustomDomains": domains.describe,
        "TagResource": tags.tag,
        "UntagResource": tags.untag,
        "ListTagsForResource": tags.list,
    }
    return JsonService(
        "apprunner",
        TARGET_PREFIX,
        "1.0",
        operations,
        InvalidRequest,
        InternalServiceError,
        translate,
    )


__all__ = ["TARGET_PREFIX", "MayRun", "apprunner_service"]
