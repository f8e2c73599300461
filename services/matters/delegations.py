"""A partner acts for an applicant only under the applicant's delegation: before it
submits, reads, withdraws, supplies materials or rates, matters asks identity
(``UseDelegation``) with the partner's own token, which both checks that a live delegation
from the applicant to that partner covers the matter and writes the use into the
applicant's access records. No live delegation: PERMISSION_DENIED (NO_DELEGATION), and
matters writes nothing either.

The partner's token, not a service identity of matters, makes the call: identity then
knows for certain which partner acts (matters cannot name another), and matters needs no
credentials of its own. Nothing is cached, so a revocation holds from the next call."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from govflow import auth
from govflow.errors import PermissionDenied, Unauthenticated, Unavailable
from govflow.grpckit import outgoing_metadata
from govflow.identity.v1 import identity_pb2, identity_pb2_grpc


def acts_under_delegation(p: auth.Principal) -> bool:
    """Whether ``p`` acts for an applicant only under the applicant's delegation: every
    partner system, except a platform administrator's (the ``admin`` scope)."""
    return p.kind == auth.PARTNER and not p.is_admin


def bearer_token(metadata: object) -> str:
    """The bearer token of a call's invocation metadata (already verified by the kit)."""
    for key, value in metadata or ():  # type: ignore[attr-defined]  # grpc's metadata: pairs
        if key == "authorization":
            return str(value).partition(" ")[2].strip()
    return ""


class DelegationCheck:
    """UseDelegation calls to identity over one long-lived channel (``connect`` makes it,
    on first use: ``grpckit.channel`` to identity's address, with the process's TLS)."""

    def __init__(self, connect: Callable[[], grpc.aio.Channel]) -> None:
        self._connect = connect
        self._channel: grpc.aio.Channel | None = None

    async def use(self, token: str, *, applicant: str, matter_code: str, action: str,
                  target: str = "") -> str:
        """The name of the applicant's delegation the partner acts under (the use is now
        in the applicant's access records); PERMISSION_DENIED (NO_DELEGATION) if none."""
        if self._channel is None:
            self._channel = self._connect()
        stub = identity_pb2_grpc.IdentityServiceStub(self._channel)
        try:
            resp = await stub.UseDelegation(identity_pb2.UseDelegationRequest(
                grantor=applicant, matter=f"matters/{matter_code}", action=action,
                target=target), metadata=outgoing_metadata(token), timeout=10)
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.PERMISSION_DENIED,
                              grpc.StatusCode.INVALID_ARGUMENT):
                raise PermissionDenied(
                    f"no live delegation from {applicant} to this partner covers "
                    f"matters/{matter_code}", reason="NO_DELEGATION",
                    metadata={"applicant": applicant,
                              "matter": f"matters/{matter_code}"}) from err
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated("the token was refused by identity",
                                      reason="TOKEN_INVALID") from err
            raise Unavailable("identity could not check the delegation; try again",
                              reason="DELEGATION_CHECK_UNAVAILABLE") from err
        return str(resp.use.delegation)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


class NoDelegationCheck:
    """Where no identity is wired (some tests): every partner action is refused."""

    async def use(self, token: str, *, applicant: str, matter_code: str, action: str,
                  target: str = "") -> str:
        raise PermissionDenied("delegations cannot be checked here", reason="NO_DELEGATION",
                               metadata={"applicant": applicant,
                                         "matter": f"matters/{matter_code}"})

    async def close(self) -> None:
        return None
