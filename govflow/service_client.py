"""How Govflow's own processes call the services: a service identity with client
credentials, an access token renewed before it expires, and the request id passed on."""

from __future__ import annotations

import asyncio
import time

import grpc

from govflow.grpckit import channel, outgoing_metadata
from govflow.identity.v1 import identity_pb2, identity_pb2_grpc


class ServiceToken:
    """Client-credentials token for one service identity, renewed a minute early."""

    def __init__(self, identity: identity_pb2_grpc.IdentityServiceStub, client_id: str,
                 client_secret: str) -> None:
        self._identity = identity
        self._client_id = client_id
        self._secret = client_secret
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if time.monotonic() < self._expires - 60:
            return self._token
        async with self._lock:
            if time.monotonic() < self._expires - 60:
                return self._token
            resp = await self._identity.AuthenticatePartner(
                identity_pb2.AuthenticatePartnerRequest(
                    client_id=self._client_id, client_secret=self._secret
                ),
                metadata=outgoing_metadata(),
                timeout=10,
            )
            self._token = resp.tokens.access_token
            self._expires = time.monotonic() + resp.tokens.expires_in
            return self._token

    def invalidate(self) -> None:
        self._expires = 0.0

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        return outgoing_metadata(await self.get())


async def fetch_jwks_from(identity_addr: str,
                          credentials: grpc.ChannelCredentials | None = None) -> str:
    """Fetches identity's public keys once (used by services' token verifiers)."""
    async with channel(identity_addr, credentials) as ch:
        stub = identity_pb2_grpc.IdentityServiceStub(ch)
        resp = await stub.ListPublicKeys(identity_pb2.ListPublicKeysRequest(), timeout=5)
        return str(resp.jwks_json)


class JwksSource:
    """A long-lived channel to identity for key refreshes (over TLS with ``credentials``)."""

    def __init__(self, identity_addr: str,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self._channel: grpc.aio.Channel | None = None
        self._addr = identity_addr
        self._credentials = credentials

    async def __call__(self) -> str:
        if self._channel is None:
            self._channel = channel(self._addr, self._credentials)
        stub = identity_pb2_grpc.IdentityServiceStub(self._channel)
        resp = await stub.ListPublicKeys(identity_pb2.ListPublicKeysRequest(), timeout=5)
        return str(resp.jwks_json)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
