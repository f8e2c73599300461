import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HolderKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLDER_KIND_UNSPECIFIED: _ClassVar[HolderKind]
    HOLDER_KIND_PERSON: _ClassVar[HolderKind]
    HOLDER_KIND_ORGANISATION: _ClassVar[HolderKind]

class CertificateStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CERTIFICATE_STATUS_UNSPECIFIED: _ClassVar[CertificateStatus]
    CERTIFICATE_STATUS_ACTIVE: _ClassVar[CertificateStatus]
    CERTIFICATE_STATUS_SUSPENDED: _ClassVar[CertificateStatus]
    CERTIFICATE_STATUS_REVOKED: _ClassVar[CertificateStatus]
    CERTIFICATE_STATUS_EXPIRED: _ClassVar[CertificateStatus]

class VerificationFailure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFICATION_FAILURE_UNSPECIFIED: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_BAD_SIGNATURE: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_UNKNOWN_ISSUER: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_UNKNOWN_KEY: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_NOT_YET_VALID: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_EXPIRED: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_SUSPENDED: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_REVOKED: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_PAYLOAD_MISMATCH: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_ISSUER_NOT_TRUSTED: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_TYPE_NOT_IN_SCOPE: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_ISSUER_TRUST_EXPIRED: _ClassVar[VerificationFailure]
    VERIFICATION_FAILURE_STATUS_UNKNOWN: _ClassVar[VerificationFailure]

class ConsentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_STATE_UNSPECIFIED: _ClassVar[ConsentState]
    CONSENT_STATE_ACTIVE: _ClassVar[ConsentState]
    CONSENT_STATE_EXPIRED: _ClassVar[ConsentState]
    CONSENT_STATE_REVOKED: _ClassVar[ConsentState]
HOLDER_KIND_UNSPECIFIED: HolderKind
HOLDER_KIND_PERSON: HolderKind
HOLDER_KIND_ORGANISATION: HolderKind
CERTIFICATE_STATUS_UNSPECIFIED: CertificateStatus
CERTIFICATE_STATUS_ACTIVE: CertificateStatus
CERTIFICATE_STATUS_SUSPENDED: CertificateStatus
CERTIFICATE_STATUS_REVOKED: CertificateStatus
CERTIFICATE_STATUS_EXPIRED: CertificateStatus
VERIFICATION_FAILURE_UNSPECIFIED: VerificationFailure
VERIFICATION_FAILURE_BAD_SIGNATURE: VerificationFailure
VERIFICATION_FAILURE_UNKNOWN_ISSUER: VerificationFailure
VERIFICATION_FAILURE_UNKNOWN_KEY: VerificationFailure
VERIFICATION_FAILURE_NOT_YET_VALID: VerificationFailure
VERIFICATION_FAILURE_EXPIRED: VerificationFailure
VERIFICATION_FAILURE_SUSPENDED: VerificationFailure
VERIFICATION_FAILURE_REVOKED: VerificationFailure
VERIFICATION_FAILURE_PAYLOAD_MISMATCH: VerificationFailure
VERIFICATION_FAILURE_ISSUER_NOT_TRUSTED: VerificationFailure
VERIFICATION_FAILURE_TYPE_NOT_IN_SCOPE: VerificationFailure
VERIFICATION_FAILURE_ISSUER_TRUST_EXPIRED: VerificationFailure
VERIFICATION_FAILURE_STATUS_UNKNOWN: VerificationFailure
CONSENT_STATE_UNSPECIFIED: ConsentState
CONSENT_STATE_ACTIVE: ConsentState
CONSENT_STATE_EXPIRED: ConsentState
CONSENT_STATE_REVOKED: ConsentState

class FieldSpec(_message.Message):
    __slots__ = ("name", "type", "required")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    required: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., required: _Optional[bool] = ...) -> None: ...

class CertificateType(_message.Message):
    __slots__ = ("name", "code", "display_name", "issuing_agency", "holder_kind", "fields", "default_validity_days", "display_name_en")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ISSUING_AGENCY_FIELD_NUMBER: _ClassVar[int]
    HOLDER_KIND_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALIDITY_DAYS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_EN_FIELD_NUMBER: _ClassVar[int]
    name: str
    code: str
    display_name: str
    issuing_agency: str
    holder_kind: HolderKind
    fields: _containers.RepeatedCompositeFieldContainer[FieldSpec]
    default_validity_days: int
    display_name_en: str
    def __init__(self, name: _Optional[str] = ..., code: _Optional[str] = ..., display_name: _Optional[str] = ..., issuing_agency: _Optional[str] = ..., holder_kind: _Optional[_Union[HolderKind, str]] = ..., fields: _Optional[_Iterable[_Union[FieldSpec, _Mapping]]] = ..., default_validity_days: _Optional[int] = ..., display_name_en: _Optional[str] = ...) -> None: ...

class ListCertificateTypesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListCertificateTypesResponse(_message.Message):
    __slots__ = ("certificate_types", "next_page_token")
    CERTIFICATE_TYPES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    certificate_types: _containers.RepeatedCompositeFieldContainer[CertificateType]
    next_page_token: str
    def __init__(self, certificate_types: _Optional[_Iterable[_Union[CertificateType, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateCertificateTypeRequest(_message.Message):
    __slots__ = ("certificate_type",)
    CERTIFICATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    certificate_type: CertificateType
    def __init__(self, certificate_type: _Optional[_Union[CertificateType, _Mapping]] = ...) -> None: ...

class CreateCertificateTypeResponse(_message.Message):
    __slots__ = ("certificate_type",)
    CERTIFICATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    certificate_type: CertificateType
    def __init__(self, certificate_type: _Optional[_Union[CertificateType, _Mapping]] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("name", "type", "holder", "issuer", "fields", "valid_from", "valid_until", "status", "key_id", "signature", "signed_payload", "status_list_index", "issue_time", "status_reason", "foreign")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    STATUS_LIST_INDEX_FIELD_NUMBER: _ClassVar[int]
    ISSUE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    FOREIGN_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    holder: str
    issuer: str
    fields: _containers.ScalarMap[str, str]
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    status: CertificateStatus
    key_id: str
    signature: str
    signed_payload: str
    status_list_index: int
    issue_time: _timestamp_pb2.Timestamp
    status_reason: str
    foreign: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., holder: _Optional[str] = ..., issuer: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[CertificateStatus, str]] = ..., key_id: _Optional[str] = ..., signature: _Optional[str] = ..., signed_payload: _Optional[str] = ..., status_list_index: _Optional[int] = ..., issue_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_reason: _Optional[str] = ..., foreign: _Optional[bool] = ...) -> None: ...

class IssueCertificateRequest(_message.Message):
    __slots__ = ("certificate", "request_id", "application")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    request_id: str
    application: str
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ..., request_id: _Optional[str] = ..., application: _Optional[str] = ...) -> None: ...

class IssueCertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...

class GetCertificateRequest(_message.Message):
    __slots__ = ("name", "purpose", "application")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    purpose: str
    application: str
    def __init__(self, name: _Optional[str] = ..., purpose: _Optional[str] = ..., application: _Optional[str] = ...) -> None: ...

class GetCertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...

class ListCertificatesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter", "purpose", "application")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    purpose: str
    application: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., purpose: _Optional[str] = ..., application: _Optional[str] = ...) -> None: ...

class ListCertificatesResponse(_message.Message):
    __slots__ = ("certificates", "next_page_token")
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    certificates: _containers.RepeatedCompositeFieldContainer[Certificate]
    next_page_token: str
    def __init__(self, certificates: _Optional[_Iterable[_Union[Certificate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyCertificateRequest(_message.Message):
    __slots__ = ("name", "purpose", "application")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    purpose: str
    application: str
    def __init__(self, name: _Optional[str] = ..., purpose: _Optional[str] = ..., application: _Optional[str] = ...) -> None: ...

class VerifyCertificateResponse(_message.Message):
    __slots__ = ("valid", "failures", "certificate")
    VALID_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    failures: _containers.RepeatedScalarFieldContainer[VerificationFailure]
    certificate: Certificate
    def __init__(self, valid: _Optional[bool] = ..., failures: _Optional[_Iterable[_Union[VerificationFailure, str]]] = ..., certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...

class ListIssuerKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListIssuerKeysResponse(_message.Message):
    __slots__ = ("jwks_json",)
    JWKS_JSON_FIELD_NUMBER: _ClassVar[int]
    jwks_json: str
    def __init__(self, jwks_json: _Optional[str] = ...) -> None: ...

class SuspendCertificateRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SuspendCertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...

class ReinstateCertificateRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReinstateCertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...

class RevokeCertificateRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RevokeCertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...

class AccessRecord(_message.Message):
    __slots__ = ("name", "certificate", "accessor", "action", "purpose", "application", "access_time", "consent", "party")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ACCESSOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TIME_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    name: str
    certificate: str
    accessor: str
    action: str
    purpose: str
    application: str
    access_time: _timestamp_pb2.Timestamp
    consent: str
    party: str
    def __init__(self, name: _Optional[str] = ..., certificate: _Optional[str] = ..., accessor: _Optional[str] = ..., action: _Optional[str] = ..., purpose: _Optional[str] = ..., application: _Optional[str] = ..., access_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consent: _Optional[str] = ..., party: _Optional[str] = ...) -> None: ...

class ListAccessRecordsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListAccessRecordsResponse(_message.Message):
    __slots__ = ("access_records", "next_page_token")
    ACCESS_RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    access_records: _containers.RepeatedCompositeFieldContainer[AccessRecord]
    next_page_token: str
    def __init__(self, access_records: _Optional[_Iterable[_Union[AccessRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RotateIssuerKeyRequest(_message.Message):
    __slots__ = ("agency",)
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    agency: str
    def __init__(self, agency: _Optional[str] = ...) -> None: ...

class RotateIssuerKeyResponse(_message.Message):
    __slots__ = ("key_id", "jwk_json")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    JWK_JSON_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    jwk_json: str
    def __init__(self, key_id: _Optional[str] = ..., jwk_json: _Optional[str] = ...) -> None: ...

class Consent(_message.Message):
    __slots__ = ("name", "certificate", "holder", "party", "purpose", "expire_time", "state", "granted_by", "create_time", "revoke_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    certificate: str
    holder: str
    party: str
    purpose: str
    expire_time: _timestamp_pb2.Timestamp
    state: ConsentState
    granted_by: str
    create_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., certificate: _Optional[str] = ..., holder: _Optional[str] = ..., party: _Optional[str] = ..., purpose: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[ConsentState, str]] = ..., granted_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GrantConsentRequest(_message.Message):
    __slots__ = ("certificate", "holder", "certificate_type", "party", "purpose", "expire_time")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    certificate: str
    holder: str
    certificate_type: str
    party: str
    purpose: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, certificate: _Optional[str] = ..., holder: _Optional[str] = ..., certificate_type: _Optional[str] = ..., party: _Optional[str] = ..., purpose: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GrantConsentResponse(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: Consent
    def __init__(self, consent: _Optional[_Union[Consent, _Mapping]] = ...) -> None: ...

class PullCertificateRequest(_message.Message):
    __slots__ = ("holder", "certificate_types", "application", "purpose")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TYPES_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    holder: str
    certificate_types: _containers.RepeatedScalarFieldContainer[str]
    application: str
    purpose: str
    def __init__(self, holder: _Optional[str] = ..., certificate_types: _Optional[_Iterable[str]] = ..., application: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class PullCertificateResponse(_message.Message):
    __slots__ = ("consent", "valid", "failures", "certificate")
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    consent: Consent
    valid: bool
    failures: _containers.RepeatedScalarFieldContainer[VerificationFailure]
    certificate: Certificate
    def __init__(self, consent: _Optional[_Union[Consent, _Mapping]] = ..., valid: _Optional[bool] = ..., failures: _Optional[_Iterable[_Union[VerificationFailure, str]]] = ..., certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...

class RevokeConsentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeConsentResponse(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: Consent
    def __init__(self, consent: _Optional[_Union[Consent, _Mapping]] = ...) -> None: ...

class ListConsentsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListConsentsResponse(_message.Message):
    __slots__ = ("consents", "next_page_token")
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    consents: _containers.RepeatedCompositeFieldContainer[Consent]
    next_page_token: str
    def __init__(self, consents: _Optional[_Iterable[_Union[Consent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReleaseApplicationGrantsRequest(_message.Message):
    __slots__ = ("application",)
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    application: str
    def __init__(self, application: _Optional[str] = ...) -> None: ...

class ReleaseApplicationGrantsResponse(_message.Message):
    __slots__ = ("released_count",)
    RELEASED_COUNT_FIELD_NUMBER: _ClassVar[int]
    released_count: int
    def __init__(self, released_count: _Optional[int] = ...) -> None: ...

class GetStatusListRequest(_message.Message):
    __slots__ = ("issuer",)
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    def __init__(self, issuer: _Optional[str] = ...) -> None: ...

class StatusList(_message.Message):
    __slots__ = ("issuer", "revocation_list", "suspension_list", "size", "issued_time", "valid_until", "key_id", "signature", "signed_payload")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_LIST_FIELD_NUMBER: _ClassVar[int]
    SUSPENSION_LIST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_TIME_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    revocation_list: str
    suspension_list: str
    size: int
    issued_time: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    key_id: str
    signature: str
    signed_payload: str
    def __init__(self, issuer: _Optional[str] = ..., revocation_list: _Optional[str] = ..., suspension_list: _Optional[str] = ..., size: _Optional[int] = ..., issued_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ..., signature: _Optional[str] = ..., signed_payload: _Optional[str] = ...) -> None: ...

class GetStatusListResponse(_message.Message):
    __slots__ = ("status_list",)
    STATUS_LIST_FIELD_NUMBER: _ClassVar[int]
    status_list: StatusList
    def __init__(self, status_list: _Optional[_Union[StatusList, _Mapping]] = ...) -> None: ...

class GetCompactCertificateRequest(_message.Message):
    __slots__ = ("name", "include_qr", "purpose", "application")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_QR_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    include_qr: bool
    purpose: str
    application: str
    def __init__(self, name: _Optional[str] = ..., include_qr: _Optional[bool] = ..., purpose: _Optional[str] = ..., application: _Optional[str] = ...) -> None: ...

class GetCompactCertificateResponse(_message.Message):
    __slots__ = ("token", "qr_png")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    QR_PNG_FIELD_NUMBER: _ClassVar[int]
    token: str
    qr_png: bytes
    def __init__(self, token: _Optional[str] = ..., qr_png: _Optional[bytes] = ...) -> None: ...

class TrustedIssuer(_message.Message):
    __slots__ = ("name", "display_name", "jurisdiction", "jwks_json", "status_list_location", "certificate_types", "not_after", "added_by", "add_time", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    JWKS_JSON_FIELD_NUMBER: _ClassVar[int]
    STATUS_LIST_LOCATION_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TYPES_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    ADDED_BY_FIELD_NUMBER: _ClassVar[int]
    ADD_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    jurisdiction: str
    jwks_json: str
    status_list_location: str
    certificate_types: _containers.RepeatedScalarFieldContainer[str]
    not_after: _timestamp_pb2.Timestamp
    added_by: str
    add_time: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., jwks_json: _Optional[str] = ..., status_list_location: _Optional[str] = ..., certificate_types: _Optional[_Iterable[str]] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., added_by: _Optional[str] = ..., add_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class AddTrustedIssuerRequest(_message.Message):
    __slots__ = ("trusted_issuer",)
    TRUSTED_ISSUER_FIELD_NUMBER: _ClassVar[int]
    trusted_issuer: TrustedIssuer
    def __init__(self, trusted_issuer: _Optional[_Union[TrustedIssuer, _Mapping]] = ...) -> None: ...

class AddTrustedIssuerResponse(_message.Message):
    __slots__ = ("trusted_issuer", "trust_list_version")
    TRUSTED_ISSUER_FIELD_NUMBER: _ClassVar[int]
    TRUST_LIST_VERSION_FIELD_NUMBER: _ClassVar[int]
    trusted_issuer: TrustedIssuer
    trust_list_version: int
    def __init__(self, trusted_issuer: _Optional[_Union[TrustedIssuer, _Mapping]] = ..., trust_list_version: _Optional[int] = ...) -> None: ...

class RemoveTrustedIssuerRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RemoveTrustedIssuerResponse(_message.Message):
    __slots__ = ("trust_list_version",)
    TRUST_LIST_VERSION_FIELD_NUMBER: _ClassVar[int]
    trust_list_version: int
    def __init__(self, trust_list_version: _Optional[int] = ...) -> None: ...

class ListTrustedIssuersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrustedIssuersResponse(_message.Message):
    __slots__ = ("trusted_issuers", "next_page_token", "trust_list_version")
    TRUSTED_ISSUERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TRUST_LIST_VERSION_FIELD_NUMBER: _ClassVar[int]
    trusted_issuers: _containers.RepeatedCompositeFieldContainer[TrustedIssuer]
    next_page_token: str
    trust_list_version: int
    def __init__(self, trusted_issuers: _Optional[_Iterable[_Union[TrustedIssuer, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., trust_list_version: _Optional[int] = ...) -> None: ...

class GetTrustListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SignedTrustList(_message.Message):
    __slots__ = ("version", "issued_time", "valid_until", "key_id", "signature", "signed_payload")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ISSUED_TIME_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    version: int
    issued_time: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    key_id: str
    signature: str
    signed_payload: str
    def __init__(self, version: _Optional[int] = ..., issued_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ..., signature: _Optional[str] = ..., signed_payload: _Optional[str] = ...) -> None: ...

class GetTrustListResponse(_message.Message):
    __slots__ = ("trust_list",)
    TRUST_LIST_FIELD_NUMBER: _ClassVar[int]
    trust_list: SignedTrustList
    def __init__(self, trust_list: _Optional[_Union[SignedTrustList, _Mapping]] = ...) -> None: ...

class PublishIssuerStatusListRequest(_message.Message):
    __slots__ = ("status_list",)
    STATUS_LIST_FIELD_NUMBER: _ClassVar[int]
    status_list: StatusList
    def __init__(self, status_list: _Optional[_Union[StatusList, _Mapping]] = ...) -> None: ...

class PublishIssuerStatusListResponse(_message.Message):
    __slots__ = ("status_list",)
    STATUS_LIST_FIELD_NUMBER: _ClassVar[int]
    status_list: StatusList
    def __init__(self, status_list: _Optional[_Union[StatusList, _Mapping]] = ...) -> None: ...

class ImportCertificateRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class ImportCertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...
