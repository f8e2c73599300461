"""``govflow bench``: Govflow's figures against bare baselines, measured side by side.

The embedded stack (Temporal dev server, the three services and the worker, each its own
process as under ``govflow up``) is started by the command itself; beside it run a bare
Temporal worker (no-op activities, the same worker settings) and a bare grpc.aio echo
server. Every ratio compares rounds interleaved in one run. See ``govflow bench --help``.
"""
