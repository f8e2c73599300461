"""Certificates' data: the tables (``tables``; Alembic migrations in ``../migrations``) and
one repository module per aggregate — typed functions that take a transaction (a session
from ``Database.run``, or a connection from ``Database.read``/``write``) and plain values,
and return the records of ``services/certificates/domain/records.py``, never rows. How
each one talks to the database (ORM session, Core statement, ``Prepared``) is its private
business:

- ``certificate_types``  certificate types
- ``certificates``       certificates, alone or with their issuer key (the verification reads)
- ``consents``           holders' grants and the access log of reads under them
- ``issuer_keys``        issuers' signing keys
- ``status_lists``       issuers' status-list slots and what their lists mark
- ``trust_list``         the trust list of issuers outside the platform, its version, and
                         their published status lists
- ``audit``              the certificates audit chain
- ``transactions``       a transaction's connection; writes retried on a lost race
- ``caches``             every cache of the service and the rule that keeps each one correct

The table classes are re-exported here for migrations, tools and tests that write rows
directly; service code goes through the repository functions.
"""

from services.certificates.store.tables import (
    AccessLogRow,
    AuditEntryRow,
    AuditHeadRow,
    CertificateRow,
    CertificateTypeRow,
    ConsentRow,
    IssuerKeyRow,
    IssuerStatusListRow,
    StatusListRow,
    TrustedIssuerRow,
    TrustListHeadRow,
    metadata,
    utcnow,
)

__all__ = ["AccessLogRow", "AuditEntryRow", "AuditHeadRow", "CertificateRow",
           "CertificateTypeRow", "ConsentRow", "IssuerKeyRow", "IssuerStatusListRow",
           "StatusListRow", "TrustListHeadRow", "TrustedIssuerRow", "metadata", "utcnow"]
