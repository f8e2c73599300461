"""Which RPCs the gateway serves, and where each one goes.

Every RPC of the three public services, by its standard path
(``/govflow.matters.v1.MattersService/GetApplication``), except the worker-only ones:
those are not reachable over HTTP at all (the gateway answers as for an unknown path).
"""

from __future__ import annotations

import dataclasses

from google.protobuf import descriptor, message, message_factory

from govflow.certificates.v1 import certificates_pb2
from govflow.identity.v1 import identity_pb2
from govflow.matters.v1 import matters_pb2

# The service that owns each proto service, by the settings key of its address.
SERVICES: dict[str, descriptor.ServiceDescriptor] = {
    "identity": identity_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    "certificates": certificates_pb2.DESCRIPTOR.services_by_name["CertificatesService"],
    "matters": matters_pb2.DESCRIPTOR.services_by_name["MattersService"],
}

# Called only by Govflow's worker (read-model writes, its pulls of materials, grant
# release): never on this path.
# Their servicers also demand a worker scope; leaving them unrouted means a browser token
# cannot even reach that check.
WORKER_ONLY = frozenset({
    "/govflow.matters.v1.MattersService/RecordApplicationEvent",
    "/govflow.matters.v1.MattersService/RecordApplicationEvents",
    "/govflow.matters.v1.MattersService/UpsertTask",
    "/govflow.certificates.v1.CertificatesService/PullCertificate",
    "/govflow.certificates.v1.CertificatesService/ReleaseApplicationGrants",
})


@dataclasses.dataclass(frozen=True)
class Route:
    path: str  # /package.Service/Method
    service: str  # identity, certificates or matters
    rpc: str  # Method
    request: type[message.Message]
    response: type[message.Message]


def build_routes() -> dict[str, Route]:
    """The gateway's routing table: every unary RPC of the public services but the
    worker-only ones."""
    routes: dict[str, Route] = {}
    for owner, svc in SERVICES.items():
        for method in svc.methods:
            path = f"/{svc.full_name}/{method.name}"
            if path in WORKER_ONLY or method.client_streaming or method.server_streaming:
                continue
            routes[path] = Route(path, owner, method.name,
                                 message_factory.GetMessageClass(method.input_type),
                                 message_factory.GetMessageClass(method.output_type))
    return routes
