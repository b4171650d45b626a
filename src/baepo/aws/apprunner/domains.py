"""App Runner's custom domain operations over a service's `custom_domains`:
AssociateCustomDomain, DisassociateCustomDomain, DescribeCustomDomains.

A domain is one of the service's spec, so associating one is an UPDATE_SERVICE operation that
adds it (and `www.<domain>` with EnableWWWSubdomain), and disassociating one an operation that
removes it. Baepo's router answers for a domain once that operation has succeeded, with a
certificate of Baepo's own CA: there are no DNS records to validate, so a domain reads CREATING
(DELETING) in the answer that asks for it and ACTIVE in DescribeCustomDomains once the service
has it. The DNS target is the service's own host (point a CNAME at it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baepo.auth.rights import ServiceAction
from baepo.aws import Call, Params
from baepo.aws.apprunner.access import control_caller, reached, service_arn
from baepo.aws.apprunner.errors import InvalidRequest, ResourceNotFound
from baepo.aws.paging import Paging
from baepo.control import ServiceNotFound, Services, ServiceView, SpecChange

PAGING = Paging("MaxResults", "NextToken", default=5, maximum=5)
DOMAIN = r"[A-Za-z0-9*.-]{1,255}"


class CustomDomains:
    def __init__(self, services: Services) -> None:
        self._services = services

    def associate(self, call: Call, params: Params) -> Mapping[str, Any]:
        domain = params.required_text("DomainName", pattern=DOMAIN).lower()
        www = params.boolean("EnableWWWSubdomain")
        www = True if www is None else www  # App Runner's default
        try:
            view = self._service(call, params)
        except ResourceNotFound as exc:  # AssociateCustomDomain declares no not-found
            raise InvalidRequest(exc.message) from exc
        except ServiceNotFound as exc:
            raise InvalidRequest(str(exc)) from exc
        current = list(view.config["custom_domains"])
        wanted = [domain, f"www.{domain}"] if www else [domain]
        if domain in current:
            raise InvalidRequest(f"Domain {domain} is already associated with the service")
        self._set(call, view, current + [d for d in wanted if d not in current])
        return _answer(call, view, _domain_shape(domain, www, "CREATING"))

    def disassociate(self, call: Call, params: Params) -> Mapping[str, Any]:
        domain = params.required_text("DomainName", pattern=DOMAIN).lower()
        view = self._service(call, params)
        current = list(view.config["custom_domains"])
        if domain not in current:
            raise ResourceNotFound(f"Domain {domain} is not associated with the service")
        www = f"www.{domain}" in current
        self._set(call, view, [d for d in current if d not in (domain, f"www.{domain}")])
        return _answer(call, view, _domain_shape(domain, www, "DELETING"))

    def describe(self, call: Call, params: Params) -> Mapping[str, Any]:
        view = self._service(call, params)
        current = view.config["custom_domains"]
        apexes = [d for d in current if not (d.startswith("www.") and d[4:] in current)]
        page, more = PAGING.page(params, apexes, lambda domain: domain)
        shapes = [_domain_shape(d, f"www.{d}" in current, "ACTIVE") for d in page]
        return {**_answer(call, view, None), "CustomDomains": shapes, **more}

    def _service(self, call: Call, params: Params) -> ServiceView:
        name = reached(self._services, call, params, ServiceAction.READ)
        return self._services.describe(name, caller=control_caller(call, ServiceAction.READ))

    def _set(self, call: Call, view: ServiceView, domains: list[str]) -> None:
        who = control_caller(call, ServiceAction.CHANGE)
        self._services.update(view.name, SpecChange({"custom_domains": domains}), caller=who)


def _domain_shape(domain: str, www: bool, status: str) -> dict[str, Any]:
    return {"DomainName": domain, "EnableWWWSubdomain": www, "Status": status}


def _answer(call: Call, view: ServiceView, domain: dict[str, Any] | None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "DNSTarget": view.url.partition("://")[2].split(":")[0],
        "ServiceArn": service_arn(call, view.name, view.created_at),
        "VpcDNSTargets": [],
    }
    if domain is not None:
        answer["CustomDomain"] = domain
    return answer
