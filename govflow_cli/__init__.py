"""The ``govflow`` command and the tools beside the runtime: ``up`` and its supervisor, the
demo data and demo client, code generation (protos, the TypeScript client), the audit,
calendar and offline-verification commands. It imports ``govflow``, ``services`` and
``workflows``; nothing in ``govflow/`` imports it (tests/unit/test_layers.py)."""
