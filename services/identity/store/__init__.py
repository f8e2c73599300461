"""Identity's data: the tables (``tables``; Alembic migrations in ``../migrations``) and one
repository module per aggregate — typed functions that take a session and plain values
and return the records of ``services/identity/domain.py``, never rows:

- ``persons``        persons, with their password hash and TOTP factor
- ``organisations``  organisations and who may act for them (representations)
- ``agencies``       agencies and their officials' roles
- ``partners``       partner systems and Govflow's own service accounts
- ``tokens``         signing keys, refresh tokens, failed logins and login rate counts

The table classes are re-exported here for migrations, tools and tests that write rows
directly; service code goes through the repository functions.
"""

from services.identity.store.tables import (
    AgencyRow,
    LoginFailureRow,
    LoginRateRow,
    OfficialRow,
    OrganisationRow,
    PartnerRow,
    PersonRow,
    RefreshTokenRow,
    RepresentationRow,
    SigningKeyRow,
    metadata,
    utcnow,
)

__all__ = ["AgencyRow", "LoginFailureRow", "LoginRateRow", "OfficialRow", "OrganisationRow",
           "PartnerRow", "PersonRow", "RefreshTokenRow", "RepresentationRow", "SigningKeyRow",
           "metadata", "utcnow"]
