"""The HTTP gateway: Govflow's public RPCs over Connect and gRPC-Web, for browsers and
plain HTTP clients, forwarded to the owning gRPC service (docs/architecture.md)."""
