"""How the workflows' activities are timed out and retried. Passed through the workflow
sandbox (plain values, deterministic), so a workflow's start does not build them again."""

from __future__ import annotations

import datetime as dt

from temporalio.common import RetryPolicy

ACTIVITY_TIMEOUT = dt.timedelta(seconds=30)
# Transient failures retry with backoff; a service's final answers do not (activities.py
# raises them as non-retryable ApplicationErrors typed by their gRPC code).
RETRY = RetryPolicy(
    initial_interval=dt.timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=dt.timedelta(seconds=30),
    non_retryable_error_types=["INVALID_ARGUMENT", "NOT_FOUND", "PERMISSION_DENIED",
                               "FAILED_PRECONDITION", "ALREADY_EXISTS"],
)
