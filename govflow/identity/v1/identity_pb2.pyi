import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AssuranceLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSURANCE_LEVEL_UNSPECIFIED: _ClassVar[AssuranceLevel]
    ASSURANCE_LEVEL_ACCOUNT: _ClassVar[AssuranceLevel]
    ASSURANCE_LEVEL_REAL_NAME: _ClassVar[AssuranceLevel]
    ASSURANCE_LEVEL_FACE: _ClassVar[AssuranceLevel]

class AgencyLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENCY_LEVEL_UNSPECIFIED: _ClassVar[AgencyLevel]
    AGENCY_LEVEL_PROVINCE: _ClassVar[AgencyLevel]
    AGENCY_LEVEL_CITY: _ClassVar[AgencyLevel]
    AGENCY_LEVEL_COUNTY: _ClassVar[AgencyLevel]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_ACCEPTOR: _ClassVar[Role]
    ROLE_REVIEWER: _ClassVar[Role]
    ROLE_APPROVER: _ClassVar[Role]
    ROLE_SUPERVISOR: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
ASSURANCE_LEVEL_UNSPECIFIED: AssuranceLevel
ASSURANCE_LEVEL_ACCOUNT: AssuranceLevel
ASSURANCE_LEVEL_REAL_NAME: AssuranceLevel
ASSURANCE_LEVEL_FACE: AssuranceLevel
AGENCY_LEVEL_UNSPECIFIED: AgencyLevel
AGENCY_LEVEL_PROVINCE: AgencyLevel
AGENCY_LEVEL_CITY: AgencyLevel
AGENCY_LEVEL_COUNTY: AgencyLevel
ROLE_UNSPECIFIED: Role
ROLE_ACCEPTOR: Role
ROLE_REVIEWER: Role
ROLE_APPROVER: Role
ROLE_SUPERVISOR: Role
ROLE_ADMIN: Role

class Person(_message.Message):
    __slots__ = ("name", "id_number", "display_name", "assurance_level", "birth_date", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ASSURANCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    id_number: str
    display_name: str
    assurance_level: AssuranceLevel
    birth_date: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., id_number: _Optional[str] = ..., display_name: _Optional[str] = ..., assurance_level: _Optional[_Union[AssuranceLevel, str]] = ..., birth_date: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreatePersonRequest(_message.Message):
    __slots__ = ("person", "password", "request_id")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    person: Person
    password: str
    request_id: str
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ..., password: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreatePersonResponse(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: Person
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ...) -> None: ...

class GetPersonRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetPersonResponse(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: Person
    def __init__(self, person: _Optional[_Union[Person, _Mapping]] = ...) -> None: ...

class ListPersonsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListPersonsResponse(_message.Message):
    __slots__ = ("persons", "next_page_token")
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    persons: _containers.RepeatedCompositeFieldContainer[Person]
    next_page_token: str
    def __init__(self, persons: _Optional[_Iterable[_Union[Person, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Organisation(_message.Message):
    __slots__ = ("name", "credit_code", "display_name", "legal_representative", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CODE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LEGAL_REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    credit_code: str
    display_name: str
    legal_representative: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., credit_code: _Optional[str] = ..., display_name: _Optional[str] = ..., legal_representative: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateOrganisationRequest(_message.Message):
    __slots__ = ("organisation", "request_id")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    organisation: Organisation
    request_id: str
    def __init__(self, organisation: _Optional[_Union[Organisation, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateOrganisationResponse(_message.Message):
    __slots__ = ("organisation",)
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    organisation: Organisation
    def __init__(self, organisation: _Optional[_Union[Organisation, _Mapping]] = ...) -> None: ...

class GetOrganisationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetOrganisationResponse(_message.Message):
    __slots__ = ("organisation",)
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    organisation: Organisation
    def __init__(self, organisation: _Optional[_Union[Organisation, _Mapping]] = ...) -> None: ...

class GrantRepresentationRequest(_message.Message):
    __slots__ = ("organisation", "person", "expire_time")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    person: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, organisation: _Optional[str] = ..., person: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GrantRepresentationResponse(_message.Message):
    __slots__ = ("representation",)
    REPRESENTATION_FIELD_NUMBER: _ClassVar[int]
    representation: Representation
    def __init__(self, representation: _Optional[_Union[Representation, _Mapping]] = ...) -> None: ...

class Representation(_message.Message):
    __slots__ = ("name", "organisation", "organisation_display_name", "person", "expire_time", "legal_representative")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    LEGAL_REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    organisation: str
    organisation_display_name: str
    person: str
    expire_time: _timestamp_pb2.Timestamp
    legal_representative: bool
    def __init__(self, name: _Optional[str] = ..., organisation: _Optional[str] = ..., organisation_display_name: _Optional[str] = ..., person: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., legal_representative: _Optional[bool] = ...) -> None: ...

class RevokeRepresentationRequest(_message.Message):
    __slots__ = ("organisation", "person")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    person: str
    def __init__(self, organisation: _Optional[str] = ..., person: _Optional[str] = ...) -> None: ...

class RevokeRepresentationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRepresentationsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "show_expired")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHOW_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    show_expired: bool
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., show_expired: _Optional[bool] = ...) -> None: ...

class ListRepresentationsResponse(_message.Message):
    __slots__ = ("representations", "next_page_token")
    REPRESENTATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    representations: _containers.RepeatedCompositeFieldContainer[Representation]
    next_page_token: str
    def __init__(self, representations: _Optional[_Iterable[_Union[Representation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Agency(_message.Message):
    __slots__ = ("name", "code", "display_name", "division_code", "level", "parent", "display_name_en")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DIVISION_CODE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_EN_FIELD_NUMBER: _ClassVar[int]
    name: str
    code: str
    display_name: str
    division_code: str
    level: AgencyLevel
    parent: str
    display_name_en: str
    def __init__(self, name: _Optional[str] = ..., code: _Optional[str] = ..., display_name: _Optional[str] = ..., division_code: _Optional[str] = ..., level: _Optional[_Union[AgencyLevel, str]] = ..., parent: _Optional[str] = ..., display_name_en: _Optional[str] = ...) -> None: ...

class CreateAgencyRequest(_message.Message):
    __slots__ = ("agency",)
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    agency: Agency
    def __init__(self, agency: _Optional[_Union[Agency, _Mapping]] = ...) -> None: ...

class CreateAgencyResponse(_message.Message):
    __slots__ = ("agency",)
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    agency: Agency
    def __init__(self, agency: _Optional[_Union[Agency, _Mapping]] = ...) -> None: ...

class ListAgenciesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListAgenciesResponse(_message.Message):
    __slots__ = ("agencies", "next_page_token")
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agencies: _containers.RepeatedCompositeFieldContainer[Agency]
    next_page_token: str
    def __init__(self, agencies: _Optional[_Iterable[_Union[Agency, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Official(_message.Message):
    __slots__ = ("name", "person", "agency", "roles")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    name: str
    person: str
    agency: str
    roles: _containers.RepeatedScalarFieldContainer[Role]
    def __init__(self, name: _Optional[str] = ..., person: _Optional[str] = ..., agency: _Optional[str] = ..., roles: _Optional[_Iterable[_Union[Role, str]]] = ...) -> None: ...

class SetOfficialRolesRequest(_message.Message):
    __slots__ = ("official",)
    OFFICIAL_FIELD_NUMBER: _ClassVar[int]
    official: Official
    def __init__(self, official: _Optional[_Union[Official, _Mapping]] = ...) -> None: ...

class SetOfficialRolesResponse(_message.Message):
    __slots__ = ("official",)
    OFFICIAL_FIELD_NUMBER: _ClassVar[int]
    official: Official
    def __init__(self, official: _Optional[_Union[Official, _Mapping]] = ...) -> None: ...

class ListOfficialsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOfficialsResponse(_message.Message):
    __slots__ = ("officials", "next_page_token")
    OFFICIALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    officials: _containers.RepeatedCompositeFieldContainer[Official]
    next_page_token: str
    def __init__(self, officials: _Optional[_Iterable[_Union[Official, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Partner(_message.Message):
    __slots__ = ("name", "client_id", "display_name", "agency", "scopes", "disabled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    client_id: str
    display_name: str
    agency: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    disabled: bool
    def __init__(self, name: _Optional[str] = ..., client_id: _Optional[str] = ..., display_name: _Optional[str] = ..., agency: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., disabled: _Optional[bool] = ...) -> None: ...

class CreatePartnerRequest(_message.Message):
    __slots__ = ("partner",)
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    partner: Partner
    def __init__(self, partner: _Optional[_Union[Partner, _Mapping]] = ...) -> None: ...

class CreatePartnerResponse(_message.Message):
    __slots__ = ("partner", "client_secret")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    partner: Partner
    client_secret: str
    def __init__(self, partner: _Optional[_Union[Partner, _Mapping]] = ..., client_secret: _Optional[str] = ...) -> None: ...

class RotatePartnerSecretRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RotatePartnerSecretResponse(_message.Message):
    __slots__ = ("partner", "client_secret")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    partner: Partner
    client_secret: str
    def __init__(self, partner: _Optional[_Union[Partner, _Mapping]] = ..., client_secret: _Optional[str] = ...) -> None: ...

class DisablePartnerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DisablePartnerResponse(_message.Message):
    __slots__ = ("partner",)
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    partner: Partner
    def __init__(self, partner: _Optional[_Union[Partner, _Mapping]] = ...) -> None: ...

class AddPartnerKeyRequest(_message.Message):
    __slots__ = ("name", "public_jwk")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_JWK_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_jwk: str
    def __init__(self, name: _Optional[str] = ..., public_jwk: _Optional[str] = ...) -> None: ...

class AddPartnerKeyResponse(_message.Message):
    __slots__ = ("kid",)
    KID_FIELD_NUMBER: _ClassVar[int]
    kid: str
    def __init__(self, kid: _Optional[str] = ...) -> None: ...

class RemovePartnerKeyRequest(_message.Message):
    __slots__ = ("name", "kid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KID_FIELD_NUMBER: _ClassVar[int]
    name: str
    kid: str
    def __init__(self, name: _Optional[str] = ..., kid: _Optional[str] = ...) -> None: ...

class RemovePartnerKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnrollTotpRequest(_message.Message):
    __slots__ = ("person",)
    PERSON_FIELD_NUMBER: _ClassVar[int]
    person: str
    def __init__(self, person: _Optional[str] = ...) -> None: ...

class EnrollTotpResponse(_message.Message):
    __slots__ = ("secret", "provisioning_uri")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_URI_FIELD_NUMBER: _ClassVar[int]
    secret: str
    provisioning_uri: str
    def __init__(self, secret: _Optional[str] = ..., provisioning_uri: _Optional[str] = ...) -> None: ...

class ConfirmTotpRequest(_message.Message):
    __slots__ = ("person", "one_time_code")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    ONE_TIME_CODE_FIELD_NUMBER: _ClassVar[int]
    person: str
    one_time_code: str
    def __init__(self, person: _Optional[str] = ..., one_time_code: _Optional[str] = ...) -> None: ...

class ConfirmTotpResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetTotpRequest(_message.Message):
    __slots__ = ("person", "reason")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    person: str
    reason: str
    def __init__(self, person: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResetTotpResponse(_message.Message):
    __slots__ = ("was_enrolled",)
    WAS_ENROLLED_FIELD_NUMBER: _ClassVar[int]
    was_enrolled: bool
    def __init__(self, was_enrolled: _Optional[bool] = ...) -> None: ...

class TokenSet(_message.Message):
    __slots__ = ("access_token", "refresh_token", "expires_in")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    refresh_token: str
    expires_in: int
    def __init__(self, access_token: _Optional[str] = ..., refresh_token: _Optional[str] = ..., expires_in: _Optional[int] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("id_number", "password", "one_time_code", "agency", "acting_for")
    ID_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ONE_TIME_CODE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    ACTING_FOR_FIELD_NUMBER: _ClassVar[int]
    id_number: str
    password: str
    one_time_code: str
    agency: str
    acting_for: str
    def __init__(self, id_number: _Optional[str] = ..., password: _Optional[str] = ..., one_time_code: _Optional[str] = ..., agency: _Optional[str] = ..., acting_for: _Optional[str] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: TokenSet
    def __init__(self, tokens: _Optional[_Union[TokenSet, _Mapping]] = ...) -> None: ...

class AuthenticatePartnerRequest(_message.Message):
    __slots__ = ("client_id", "client_secret")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_secret: str
    def __init__(self, client_id: _Optional[str] = ..., client_secret: _Optional[str] = ...) -> None: ...

class AuthenticatePartnerResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: TokenSet
    def __init__(self, tokens: _Optional[_Union[TokenSet, _Mapping]] = ...) -> None: ...

class AuthenticatePartnerWithAssertionRequest(_message.Message):
    __slots__ = ("client_assertion_type", "client_assertion")
    CLIENT_ASSERTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ASSERTION_FIELD_NUMBER: _ClassVar[int]
    client_assertion_type: str
    client_assertion: str
    def __init__(self, client_assertion_type: _Optional[str] = ..., client_assertion: _Optional[str] = ...) -> None: ...

class AuthenticatePartnerWithAssertionResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: TokenSet
    def __init__(self, tokens: _Optional[_Union[TokenSet, _Mapping]] = ...) -> None: ...

class RefreshTokenRequest(_message.Message):
    __slots__ = ("refresh_token",)
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    refresh_token: str
    def __init__(self, refresh_token: _Optional[str] = ...) -> None: ...

class RefreshTokenResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: TokenSet
    def __init__(self, tokens: _Optional[_Union[TokenSet, _Mapping]] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ("refresh_token",)
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    refresh_token: str
    def __init__(self, refresh_token: _Optional[str] = ...) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPublicKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPublicKeysResponse(_message.Message):
    __slots__ = ("jwks_json",)
    JWKS_JSON_FIELD_NUMBER: _ClassVar[int]
    jwks_json: str
    def __init__(self, jwks_json: _Optional[str] = ...) -> None: ...

class SigningKey(_message.Message):
    __slots__ = ("name", "kid", "active", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    kid: str
    active: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., kid: _Optional[str] = ..., active: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RotateSigningKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateSigningKeyResponse(_message.Message):
    __slots__ = ("signing_key",)
    SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    signing_key: SigningKey
    def __init__(self, signing_key: _Optional[_Union[SigningKey, _Mapping]] = ...) -> None: ...

class RetireSigningKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RetireSigningKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Delegation(_message.Message):
    __slots__ = ("name", "delegate", "matters", "purposes", "expire_time", "create_time", "revoke_time", "granted_by", "grantor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DELEGATE_FIELD_NUMBER: _ClassVar[int]
    MATTERS_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANTED_BY_FIELD_NUMBER: _ClassVar[int]
    GRANTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    delegate: str
    matters: _containers.RepeatedScalarFieldContainer[str]
    purposes: _containers.RepeatedScalarFieldContainer[str]
    expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    granted_by: str
    grantor: str
    def __init__(self, name: _Optional[str] = ..., delegate: _Optional[str] = ..., matters: _Optional[_Iterable[str]] = ..., purposes: _Optional[_Iterable[str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granted_by: _Optional[str] = ..., grantor: _Optional[str] = ...) -> None: ...

class CreateDelegationRequest(_message.Message):
    __slots__ = ("parent", "delegation", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DELEGATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    delegation: Delegation
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., delegation: _Optional[_Union[Delegation, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateDelegationResponse(_message.Message):
    __slots__ = ("delegation",)
    DELEGATION_FIELD_NUMBER: _ClassVar[int]
    delegation: Delegation
    def __init__(self, delegation: _Optional[_Union[Delegation, _Mapping]] = ...) -> None: ...

class RevokeDelegationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeDelegationResponse(_message.Message):
    __slots__ = ("delegation",)
    DELEGATION_FIELD_NUMBER: _ClassVar[int]
    delegation: Delegation
    def __init__(self, delegation: _Optional[_Union[Delegation, _Mapping]] = ...) -> None: ...

class ListDelegationsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "show_inactive")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SHOW_INACTIVE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    show_inactive: bool
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., show_inactive: _Optional[bool] = ...) -> None: ...

class ListDelegationsResponse(_message.Message):
    __slots__ = ("delegations", "next_page_token")
    DELEGATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    delegations: _containers.RepeatedCompositeFieldContainer[Delegation]
    next_page_token: str
    def __init__(self, delegations: _Optional[_Iterable[_Union[Delegation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UseDelegationRequest(_message.Message):
    __slots__ = ("grantor", "matter", "purpose", "action", "target")
    GRANTOR_FIELD_NUMBER: _ClassVar[int]
    MATTER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    grantor: str
    matter: str
    purpose: str
    action: str
    target: str
    def __init__(self, grantor: _Optional[str] = ..., matter: _Optional[str] = ..., purpose: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class UseDelegationResponse(_message.Message):
    __slots__ = ("use",)
    USE_FIELD_NUMBER: _ClassVar[int]
    use: DelegationUse
    def __init__(self, use: _Optional[_Union[DelegationUse, _Mapping]] = ...) -> None: ...

class DelegationUse(_message.Message):
    __slots__ = ("name", "delegation", "partner", "action", "matter", "purpose", "target", "time", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DELEGATION_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MATTER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    delegation: str
    partner: str
    action: str
    matter: str
    purpose: str
    target: str
    time: _timestamp_pb2.Timestamp
    request_id: str
    def __init__(self, name: _Optional[str] = ..., delegation: _Optional[str] = ..., partner: _Optional[str] = ..., action: _Optional[str] = ..., matter: _Optional[str] = ..., purpose: _Optional[str] = ..., target: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListDelegationUsesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDelegationUsesResponse(_message.Message):
    __slots__ = ("uses", "next_page_token")
    USES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    uses: _containers.RepeatedCompositeFieldContainer[DelegationUse]
    next_page_token: str
    def __init__(self, uses: _Optional[_Iterable[_Union[DelegationUse, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
