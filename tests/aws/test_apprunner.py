"""App Runner's operations through botocore's App Runner client, over Baepo's services room
(a MemoryEngine, a reconciler the test drives) and its rights: every answer is checked against
botocore's App Runner model (world.py hooks model.py into each client)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from baepo.api.images import ImageCheck
from baepo.aws import JsonService
from baepo.aws.apprunner import apprunner_service
from baepo.control import Reconciler, RegistryLink, SecretBox, Services, Timing
from tests.aws.world import AwsWorld, Rooms, aws_world, code_of
from tests.control.conftest import CREDENTIALS, REGISTRY, hello
from tests.control.fakes import FakeProber
from tests.fakes.engine import FakeImage, MemoryEngine, baepo_test_images
from tests.fakes.router import MemoryRouter

IMAGE = f"{REGISTRY}/alice/app:1"


@dataclass
class Control:
    services: Services
    reconciler: Reconciler
    portal: BlockingPortal

    def settle(self, world: AwsWorld, until: Callable[[], bool]) -> None:
        """Reconciler passes, the clock moving a quarter second between them, until `until()`."""
        for _ in range(400):
            self.portal.call(self.reconciler.tick)
            if until():
                return
            world.clock.advance(0.25)
        raise AssertionError("not settled after 400 passes")

    def running(self, world: AwsWorld, name: str) -> None:
        self.settle(world, lambda: self.services.describe(name).status == "RUNNING")


@pytest.fixture
def control_world(tmp_path: Path) -> Iterator[tuple[AwsWorld, Control]]:
    made: list[Control] = []

    def services(rooms: Rooms) -> Iterable[JsonService]:
        engine = MemoryEngine(rooms.clock, images=baepo_test_images())
        for tag in ("1", "2"):
            ref = f"{REGISTRY}/alice/app:{tag}"
            engine.publish(FakeImage(ref=ref, credentials=CREDENTIALS, respond=hello(tag)))
        box = SecretBox(SecretBox.generate_key())
        registry = RegistryLink.of([REGISTRY], lambda: CREDENTIALS)
        reconciler = Reconciler(
            db=rooms.db,
            engine=engine,
            router=MemoryRouter(),
            prober=FakeProber(engine),
            clock=rooms.clock,
            secrets=box,
            domain="localhost",
            registry=registry,
            timing=Timing(deploy_timeout_s=60, operation_timeout_s=60, drain_timeout_s=30),
        )
        facade = Services(
            db=rooms.db,
            engine=engine,
            secrets=box,
            clock=rooms.clock,
            domain="localhost",
            registry=registry,
            reconciler=reconciler,
        )
        made.append(Control(facade, reconciler, portal))
        images = ImageCheck(registry, rooms.registry.is_public)
        return [apprunner_service(facade, images.refusal, rooms.db)]

    with start_blocking_portal() as portal, aws_world(tmp_path, services) as world:
        yield world, made[0]


def source(image: str = IMAGE, **configuration: Any) -> dict[str, Any]:
    repository: dict[str, Any] = {"ImageIdentifier": image, "ImageRepositoryType": "ECR"}
    if configuration:
        repository["ImageConfiguration"] = configuration
    return {"ImageRepository": repository, "AutoDeploymentsEnabled": False}


def new_service(client: Any, name: str = "shop") -> str:
    """A new service of IMAGE: its ARN."""
    made = client.create_service(ServiceName=name, SourceConfiguration=source())
    return str(made["Service"]["ServiceArn"])


def every_page(call: Any, member: str, **params: Any) -> list[list[Any]]:
    """`member` of each page, following `NextToken` (botocore has no App Runner paginators)."""
    pages: list[list[Any]] = []
    token: dict[str, str] = {}
    for _ in range(50):
        answer = call(**params, **token)
        pages.append(answer[member])
        if "NextToken" not in answer:
            return pages
        token = {"NextToken": answer["NextToken"]}
    raise AssertionError("more than 50 pages")


def test_the_issues_flow_create_deploy_pause_resume_delete(
    control_world: tuple[AwsWorld, Control],
) -> None:
    world, control = control_world
    alice = world.client("apprunner", world.key("alice"))
    made = alice.create_service(
        ServiceName="shop",
        SourceConfiguration=source(Port="8080", RuntimeEnvironmentVariables={"MODE": "prod"}),
        InstanceConfiguration={"Cpu": "1 vCPU", "Memory": "2 GB"},
        HealthCheckConfiguration={"Protocol": "HTTP", "Path": "/health"},
    )
    service = made["Service"]
    arn = service["ServiceArn"]
    assert arn.startswith(
        f"arn:aws-baepo:apprunner:us-east-1:{world.endpoint.account}:service/shop/"
    )
    assert service["Status"] == "OPERATION_IN_PROGRESS"
    assert service["ServiceUrl"] == "shop.localhost"
    assert service["InstanceConfiguration"] == {"Cpu": "1024", "Memory": "2048"}
    image = service["SourceConfiguration"]["ImageRepository"]
    assert image["ImageConfiguration"] == {
        "Port": "8080",
        "RuntimeEnvironmentVariables": {"MODE": "prod"},
    }
    assert service["HealthCheckConfiguration"]["Protocol"] == "HTTP"

    def status() -> str:
        return str(alice.describe_service(ServiceArn=arn)["Service"]["Status"])

    control.settle(world, lambda: status() == "RUNNING")

    deployment = alice.start_deployment(ServiceArn=arn)["OperationId"]
    control.settle(world, lambda: status() == "RUNNING")
    operations = alice.list_operations(ServiceArn=arn)["OperationSummaryList"]
    assert [(o["Id"], o["Type"], o["Status"]) for o in operations] == [
        (deployment, "START_DEPLOYMENT", "SUCCEEDED"),
        (made["OperationId"], "CREATE_SERVICE", "SUCCEEDED"),
    ]
    assert {o["TargetArn"] for o in operations} == {arn}

    alice.pause_service(ServiceArn=arn)
    control.settle(world, lambda: status() == "PAUSED")
    assert code_of(alice.pause_service, ServiceArn=arn) == "InvalidStateException"
    alice.resume_service(ServiceArn=arn)
    control.settle(world, lambda: status() == "RUNNING")

    deleted = alice.delete_service(ServiceArn=arn)
    assert deleted["Service"]["Status"] == "OPERATION_IN_PROGRESS"
    control.settle(world, lambda: not alice.list_services()["ServiceSummaryList"])
    assert code_of(alice.describe_service, ServiceArn=arn) == "ResourceNotFoundException"


def test_update_service_changes_baepos_one_spec(control_world: tuple[AwsWorld, Control]) -> None:
    world, control = control_world
    alice = world.client("apprunner", world.key("alice"))
    arn = new_service(alice)
    control.running(world, "shop")
    updated = alice.update_service(
        ServiceArn=arn,
        SourceConfiguration=source(f"{REGISTRY}/alice/app:2", StartCommand="serve --fast"),
        InstanceConfiguration={"Cpu": "2048", "Memory": "4096"},
    )
    assert updated["Service"]["Status"] == "OPERATION_IN_PROGRESS"
    assert code_of(alice.update_service, ServiceArn=arn) == "InvalidStateException"
    control.running(world, "shop")
    config = control.services.describe("shop").config
    assert (config["image"], config["command"]) == (f"{REGISTRY}/alice/app:2", ["serve", "--fast"])
    assert (config["cpu"], config["memory"]) == (2.0, 4096)
    shown = alice.describe_service(ServiceArn=arn)["Service"]
    assert shown["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"] == {
        "Port": "8080",
        "StartCommand": "serve --fast",
    }
    operations = alice.list_operations(ServiceArn=arn)["OperationSummaryList"]
    assert operations[0]["Id"] == updated["OperationId"]
    assert operations[0]["Type"] == "UPDATE_SERVICE"


def test_services_keep_baepos_rights(control_world: tuple[AwsWorld, Control]) -> None:
    world, _ = control_world
    alice = world.client("apprunner", world.key("alice"))
    bob = world.client("apprunner", world.key("bob"))
    admin = world.client("apprunner", world.key("admin"))
    arn = new_service(alice)
    assert code_of(bob.describe_service, ServiceArn=arn) == "ResourceNotFoundException"
    assert code_of(bob.delete_service, ServiceArn=arn) == "ResourceNotFoundException"
    assert bob.list_services()["ServiceSummaryList"] == []
    assert [s["ServiceArn"] for s in admin.list_services()["ServiceSummaryList"]] == [arn]
    create = bob.create_service
    assert code_of(create, ServiceName="mine", SourceConfiguration=source()) == (
        "AccessDeniedException"
    )
    registry_only = world.client("apprunner", world.key("alice", "push", repositories=("alice/*",)))
    assert code_of(registry_only.list_services) == "AccessDeniedException"
    deployer = world.client("apprunner", world.key("alice", "deploy", services=("shop",)))
    assert [s["ServiceName"] for s in deployer.list_services()["ServiceSummaryList"]] == ["shop"]
    assert deployer.start_deployment(ServiceArn=arn)["OperationId"]
    assert code_of(deployer.pause_service, ServiceArn=arn) == "AccessDeniedException"


def test_bad_input_is_app_runners_invalid_request(
    control_world: tuple[AwsWorld, Control],
) -> None:
    world, _ = control_world
    alice = world.client("apprunner", world.key("alice"))
    create = alice.create_service
    assert code_of(create, ServiceName="shop", SourceConfiguration=source(Port="0")) == (
        "InvalidRequestException"
    )
    version = {"Type": "BRANCH", "Value": "main"}
    code = {
        "CodeRepository": {"RepositoryUrl": "https://example.org/x", "SourceCodeVersion": version}
    }
    assert code_of(create, ServiceName="shop", SourceConfiguration=code) == (
        "InvalidRequestException"
    )
    assert code_of(
        create,
        ServiceName="shop",
        SourceConfiguration=source(),
        NetworkConfiguration={"EgressConfiguration": {"EgressType": "VPC"}},
    ) == ("InvalidRequestException")
    alice.create_service(ServiceName="shop", SourceConfiguration=source())
    assert code_of(create, ServiceName="shop", SourceConfiguration=source()) == (
        "InvalidRequestException"
    )
    describe = alice.describe_service
    assert code_of(describe, ServiceArn="arn:aws:s3:::bucket") == "InvalidRequestException"
    gone = f"arn:aws-baepo:apprunner:us-east-1:{world.endpoint.account}:service/shop/{'0' * 32}"
    assert code_of(describe, ServiceArn=gone) == "ResourceNotFoundException"
    raw = world.raw(
        world.key("alice"), "apprunner", "AppRunner.ListServices", b'{"MaxResults": "x"}'
    )
    assert raw.status_code == 400
    assert raw.json()["__type"] == "InvalidRequestException"


def test_autoscaling_configurations_are_baepos_shared_ones(
    control_world: tuple[AwsWorld, Control],
) -> None:
    world, control = control_world
    alice = world.client("apprunner", world.key("alice"))
    bob = world.client("apprunner", world.key("bob"))
    first = alice.create_auto_scaling_configuration(
        AutoScalingConfigurationName="fast", MinSize=2, MaxSize=4, MaxConcurrency=50
    )["AutoScalingConfiguration"]
    assert (first["AutoScalingConfigurationRevision"], first["Latest"]) == (1, True)
    assert (first["MinSize"], first["MaxSize"], first["MaxConcurrency"]) == (2, 4, 50)
    second = alice.create_auto_scaling_configuration(
        AutoScalingConfigurationName="fast", MinSize=3
    )["AutoScalingConfiguration"]
    assert second["AutoScalingConfigurationRevision"] == 2
    assert (second["MinSize"], second["MaxSize"]) == (3, 25)
    assert control.services.configurations.describe("fast", 2).min_size == 3

    described = alice.describe_auto_scaling_configuration(
        AutoScalingConfigurationArn=first["AutoScalingConfigurationArn"]
    )["AutoScalingConfiguration"]
    assert (described["AutoScalingConfigurationRevision"], described["Latest"]) == (1, False)
    describe = bob.describe_auto_scaling_configuration
    assert code_of(describe, AutoScalingConfigurationArn=first["AutoScalingConfigurationArn"]) == (
        "ResourceNotFoundException"
    )
    taken = bob.create_auto_scaling_configuration
    assert code_of(taken, AutoScalingConfigurationName="fast") == "InvalidRequestException"
    latest = alice.list_auto_scaling_configurations(LatestOnly=True)
    names = [
        (c["AutoScalingConfigurationName"], c["AutoScalingConfigurationRevision"], c["IsDefault"])
        for c in latest["AutoScalingConfigurationSummaryList"]
    ]
    assert names == [("DefaultConfiguration", 1, True), ("fast", 2, False)]

    arn = alice.create_service(
        ServiceName="shop",
        SourceConfiguration=source(),
        AutoScalingConfigurationArn=second["AutoScalingConfigurationArn"],
    )["Service"]["ServiceArn"]
    summary = alice.describe_service(ServiceArn=arn)["Service"]["AutoScalingConfigurationSummary"]
    assert summary["AutoScalingConfigurationArn"] == second["AutoScalingConfigurationArn"]
    assert control.services.describe("shop").config["min_instances"] == 3

    delete = alice.delete_auto_scaling_configuration
    in_use = second["AutoScalingConfigurationArn"]
    assert code_of(delete, AutoScalingConfigurationArn=in_use) == "InvalidRequestException"
    default = summary["AutoScalingConfigurationArn"].replace("fast/2", "DefaultConfiguration/1")
    assert code_of(delete, AutoScalingConfigurationArn=default) == "InvalidRequestException"
    gone = delete(AutoScalingConfigurationArn=first["AutoScalingConfigurationArn"])
    assert gone["AutoScalingConfiguration"]["Status"] == "INACTIVE"
    assert [v.revision for v in control.services.configurations.list(name="fast")] == [2]


def test_custom_domains_are_the_services_own(control_world: tuple[AwsWorld, Control]) -> None:
    world, control = control_world
    alice = world.client("apprunner", world.key("alice"))
    arn = new_service(alice)
    control.running(world, "shop")
    made = alice.associate_custom_domain(ServiceArn=arn, DomainName="shop.example.org")
    assert made["DNSTarget"] == "shop.localhost"
    assert made["CustomDomain"] == {
        "DomainName": "shop.example.org",
        "EnableWWWSubdomain": True,
        "Status": "CREATING",
    }
    control.running(world, "shop")
    assert control.services.describe("shop").config["custom_domains"] == [
        "shop.example.org",
        "www.shop.example.org",
    ]
    found = alice.describe_custom_domains(ServiceArn=arn)["CustomDomains"]
    assert [(d["DomainName"], d["EnableWWWSubdomain"], d["Status"]) for d in found] == [
        ("shop.example.org", True, "ACTIVE")
    ]
    associate = alice.associate_custom_domain
    assert code_of(associate, ServiceArn=arn, DomainName="shop.example.org") == (
        "InvalidRequestException"
    )
    gone = alice.disassociate_custom_domain(ServiceArn=arn, DomainName="shop.example.org")
    assert gone["CustomDomain"]["Status"] == "DELETING"
    disassociate = alice.disassociate_custom_domain
    assert code_of(disassociate, ServiceArn=arn, DomainName="shop.example.org") == (
        "InvalidStateException"
    )
    control.running(world, "shop")
    assert alice.describe_custom_domains(ServiceArn=arn)["CustomDomains"] == []
    assert code_of(disassociate, ServiceArn=arn, DomainName="shop.example.org") == (
        "ResourceNotFoundException"
    )


def test_tags_are_kept_for_the_resources_a_caller_reaches(
    control_world: tuple[AwsWorld, Control],
) -> None:
    world, _ = control_world
    alice = world.client("apprunner", world.key("alice"))
    bob = world.client("apprunner", world.key("bob"))
    arn = alice.create_service(
        ServiceName="shop", SourceConfiguration=source(), Tags=[{"Key": "team", "Value": "web"}]
    )["Service"]["ServiceArn"]
    alice.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    assert alice.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "env", "Value": "prod"},
        {"Key": "team", "Value": "web"},
    ]
    alice.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert alice.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "env", "Value": "prod"}
    ]
    listed = bob.list_tags_for_resource
    assert code_of(listed, ResourceArn=arn) == "ResourceNotFoundException"
    tag = alice.tag_resource
    assert code_of(tag, ResourceArn=arn, Tags=[{"Key": "aws:x", "Value": "y"}]) == (
        "InvalidRequestException"
    )
    many = [{"Key": f"k{n}", "Value": ""} for n in range(50)]
    assert code_of(tag, ResourceArn=arn, Tags=many) == "InvalidRequestException"

    configuration = alice.create_auto_scaling_configuration(
        AutoScalingConfigurationName="fast", Tags=[{"Key": "tier", "Value": "gold"}]
    )["AutoScalingConfiguration"]["AutoScalingConfigurationArn"]
    assert alice.list_tags_for_resource(ResourceArn=configuration)["Tags"] == [
        {"Key": "tier", "Value": "gold"}
    ]


def test_lists_page_as_app_runners_do(control_world: tuple[AwsWorld, Control]) -> None:
    world, control = control_world
    alice = world.client("apprunner", world.key("alice"))
    arns = [new_service(alice, name) for name in ("shop-a", "shop-b", "shop-c")]
    pages = every_page(alice.list_services, "ServiceSummaryList", MaxResults=2)
    assert [[s["ServiceArn"] for s in page] for page in pages] == [arns[:2], arns[2:]]

    control.running(world, "shop-a")
    deployed = [alice.start_deployment(ServiceArn=arns[0])["OperationId"]]
    control.running(world, "shop-a")
    deployed.append(alice.start_deployment(ServiceArn=arns[0])["OperationId"])
    pages = every_page(
        alice.list_operations, "OperationSummaryList", ServiceArn=arns[0], MaxResults=1
    )
    seen = [(o["Id"], o["Type"]) for page in pages for o in page]
    assert [kind for _, kind in seen] == ["START_DEPLOYMENT", "START_DEPLOYMENT", "CREATE_SERVICE"]
    assert [operation for operation, _ in seen[:2]] == deployed[::-1]
