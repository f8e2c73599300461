"""Govflow's shared kit: settings, logging, errors, auth, the gRPC server kit and the
generated contracts (``govflow.<service>.v1``). Service code lives in ``services/``."""
