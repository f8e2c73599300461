import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApplicantKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPLICANT_KIND_UNSPECIFIED: _ClassVar[ApplicantKind]
    APPLICANT_KIND_PERSON: _ClassVar[ApplicantKind]
    APPLICANT_KIND_ORGANISATION: _ClassVar[ApplicantKind]

class ApplicationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPLICATION_STATUS_UNSPECIFIED: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_SUBMITTED: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_VERIFYING: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_IN_REVIEW: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_SUPPLEMENT_REQUESTED: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_APPROVED: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_REJECTED: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_WITHDRAWN: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_COMPLETED: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_FAILED: _ClassVar[ApplicationStatus]
    APPLICATION_STATUS_REVOKED: _ClassVar[ApplicationStatus]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_OPEN: _ClassVar[TaskStatus]
    TASK_STATUS_CLAIMED: _ClassVar[TaskStatus]
    TASK_STATUS_DECIDED: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_APPROVE: _ClassVar[Decision]
    DECISION_REJECT: _ClassVar[Decision]
    DECISION_REQUEST_SUPPLEMENT: _ClassVar[Decision]
APPLICANT_KIND_UNSPECIFIED: ApplicantKind
APPLICANT_KIND_PERSON: ApplicantKind
APPLICANT_KIND_ORGANISATION: ApplicantKind
APPLICATION_STATUS_UNSPECIFIED: ApplicationStatus
APPLICATION_STATUS_SUBMITTED: ApplicationStatus
APPLICATION_STATUS_VERIFYING: ApplicationStatus
APPLICATION_STATUS_IN_REVIEW: ApplicationStatus
APPLICATION_STATUS_SUPPLEMENT_REQUESTED: ApplicationStatus
APPLICATION_STATUS_APPROVED: ApplicationStatus
APPLICATION_STATUS_REJECTED: ApplicationStatus
APPLICATION_STATUS_WITHDRAWN: ApplicationStatus
APPLICATION_STATUS_COMPLETED: ApplicationStatus
APPLICATION_STATUS_FAILED: ApplicationStatus
APPLICATION_STATUS_REVOKED: ApplicationStatus
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_OPEN: TaskStatus
TASK_STATUS_CLAIMED: TaskStatus
TASK_STATUS_DECIDED: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus
DECISION_UNSPECIFIED: Decision
DECISION_APPROVE: Decision
DECISION_REJECT: Decision
DECISION_REQUEST_SUPPLEMENT: Decision

class Material(_message.Message):
    __slots__ = ("code", "display_name", "certificate_types", "required", "upload_allowed", "pledge_allowed", "display_name_en")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TYPES_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    PLEDGE_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_EN_FIELD_NUMBER: _ClassVar[int]
    code: str
    display_name: str
    certificate_types: _containers.RepeatedScalarFieldContainer[str]
    required: bool
    upload_allowed: bool
    pledge_allowed: bool
    display_name_en: str
    def __init__(self, code: _Optional[str] = ..., display_name: _Optional[str] = ..., certificate_types: _Optional[_Iterable[str]] = ..., required: _Optional[bool] = ..., upload_allowed: _Optional[bool] = ..., pledge_allowed: _Optional[bool] = ..., display_name_en: _Optional[str] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("code", "display_name", "role", "agencies", "quorum", "time_limit_days", "display_name_en")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    QUORUM_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_DAYS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_EN_FIELD_NUMBER: _ClassVar[int]
    code: str
    display_name: str
    role: str
    agencies: _containers.RepeatedScalarFieldContainer[str]
    quorum: str
    time_limit_days: int
    display_name_en: str
    def __init__(self, code: _Optional[str] = ..., display_name: _Optional[str] = ..., role: _Optional[str] = ..., agencies: _Optional[_Iterable[str]] = ..., quorum: _Optional[str] = ..., time_limit_days: _Optional[int] = ..., display_name_en: _Optional[str] = ...) -> None: ...

class Matter(_message.Message):
    __slots__ = ("name", "code", "version", "display_name", "agency", "applicant_kind", "legal_limit_days", "promised_limit_days", "assurance_level", "materials", "steps", "instant_approval", "result_certificate_type", "definition_yaml", "bundled_matters", "one_per_holder", "display_name_en")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    APPLICANT_KIND_FIELD_NUMBER: _ClassVar[int]
    LEGAL_LIMIT_DAYS_FIELD_NUMBER: _ClassVar[int]
    PROMISED_LIMIT_DAYS_FIELD_NUMBER: _ClassVar[int]
    ASSURANCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MATERIALS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    INSTANT_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    RESULT_CERTIFICATE_TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_YAML_FIELD_NUMBER: _ClassVar[int]
    BUNDLED_MATTERS_FIELD_NUMBER: _ClassVar[int]
    ONE_PER_HOLDER_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_EN_FIELD_NUMBER: _ClassVar[int]
    name: str
    code: str
    version: int
    display_name: str
    agency: str
    applicant_kind: ApplicantKind
    legal_limit_days: int
    promised_limit_days: int
    assurance_level: str
    materials: _containers.RepeatedCompositeFieldContainer[Material]
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    instant_approval: bool
    result_certificate_type: str
    definition_yaml: str
    bundled_matters: _containers.RepeatedScalarFieldContainer[str]
    one_per_holder: bool
    display_name_en: str
    def __init__(self, name: _Optional[str] = ..., code: _Optional[str] = ..., version: _Optional[int] = ..., display_name: _Optional[str] = ..., agency: _Optional[str] = ..., applicant_kind: _Optional[_Union[ApplicantKind, str]] = ..., legal_limit_days: _Optional[int] = ..., promised_limit_days: _Optional[int] = ..., assurance_level: _Optional[str] = ..., materials: _Optional[_Iterable[_Union[Material, _Mapping]]] = ..., steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., instant_approval: _Optional[bool] = ..., result_certificate_type: _Optional[str] = ..., definition_yaml: _Optional[str] = ..., bundled_matters: _Optional[_Iterable[str]] = ..., one_per_holder: _Optional[bool] = ..., display_name_en: _Optional[str] = ...) -> None: ...

class ListMattersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListMattersResponse(_message.Message):
    __slots__ = ("matters", "next_page_token")
    MATTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    matters: _containers.RepeatedCompositeFieldContainer[Matter]
    next_page_token: str
    def __init__(self, matters: _Optional[_Iterable[_Union[Matter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMatterRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetMatterResponse(_message.Message):
    __slots__ = ("matter",)
    MATTER_FIELD_NUMBER: _ClassVar[int]
    matter: Matter
    def __init__(self, matter: _Optional[_Union[Matter, _Mapping]] = ...) -> None: ...

class PublishMatterRequest(_message.Message):
    __slots__ = ("definition_yaml",)
    DEFINITION_YAML_FIELD_NUMBER: _ClassVar[int]
    definition_yaml: str
    def __init__(self, definition_yaml: _Optional[str] = ...) -> None: ...

class PublishMatterResponse(_message.Message):
    __slots__ = ("matter",)
    MATTER_FIELD_NUMBER: _ClassVar[int]
    matter: Matter
    def __init__(self, matter: _Optional[_Union[Matter, _Mapping]] = ...) -> None: ...

class TimelineEvent(_message.Message):
    __slots__ = ("event_id", "kind", "message", "time", "status", "actor", "message_en")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_EN_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    kind: str
    message: str
    time: _timestamp_pb2.Timestamp
    status: ApplicationStatus
    actor: str
    message_en: str
    def __init__(self, event_id: _Optional[str] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[ApplicationStatus, str]] = ..., actor: _Optional[str] = ..., message_en: _Optional[str] = ...) -> None: ...

class DecisionReceipt(_message.Message):
    __slots__ = ("rule_version", "inputs_json", "outcome", "explanations")
    RULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EXPLANATIONS_FIELD_NUMBER: _ClassVar[int]
    rule_version: str
    inputs_json: str
    outcome: str
    explanations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rule_version: _Optional[str] = ..., inputs_json: _Optional[str] = ..., outcome: _Optional[str] = ..., explanations: _Optional[_Iterable[str]] = ...) -> None: ...

class Application(_message.Message):
    __slots__ = ("name", "matter", "matter_version", "applicant", "submitted_by", "status", "create_time", "update_time", "due_time", "overdue", "timeline", "decision_receipt", "result_certificate", "workflow_id", "current_steps", "agency", "missing_materials", "supplement_due_time", "rating", "parent", "children", "result_certificates", "pledges", "due_time_provisional", "reasons", "delegation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATTER_FIELD_NUMBER: _ClassVar[int]
    MATTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLICANT_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_BY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    DECISION_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    RESULT_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEPS_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    MISSING_MATERIALS_FIELD_NUMBER: _ClassVar[int]
    SUPPLEMENT_DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    RESULT_CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    PLEDGES_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_PROVISIONAL_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    DELEGATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    matter: str
    matter_version: int
    applicant: str
    submitted_by: str
    status: ApplicationStatus
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    due_time: _timestamp_pb2.Timestamp
    overdue: bool
    timeline: _containers.RepeatedCompositeFieldContainer[TimelineEvent]
    decision_receipt: DecisionReceipt
    result_certificate: str
    workflow_id: str
    current_steps: _containers.RepeatedScalarFieldContainer[str]
    agency: str
    missing_materials: _containers.RepeatedScalarFieldContainer[str]
    supplement_due_time: _timestamp_pb2.Timestamp
    rating: int
    parent: str
    children: _containers.RepeatedScalarFieldContainer[str]
    result_certificates: _containers.RepeatedScalarFieldContainer[str]
    pledges: _containers.RepeatedScalarFieldContainer[str]
    due_time_provisional: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    delegation: str
    def __init__(self, name: _Optional[str] = ..., matter: _Optional[str] = ..., matter_version: _Optional[int] = ..., applicant: _Optional[str] = ..., submitted_by: _Optional[str] = ..., status: _Optional[_Union[ApplicationStatus, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., overdue: _Optional[bool] = ..., timeline: _Optional[_Iterable[_Union[TimelineEvent, _Mapping]]] = ..., decision_receipt: _Optional[_Union[DecisionReceipt, _Mapping]] = ..., result_certificate: _Optional[str] = ..., workflow_id: _Optional[str] = ..., current_steps: _Optional[_Iterable[str]] = ..., agency: _Optional[str] = ..., missing_materials: _Optional[_Iterable[str]] = ..., supplement_due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rating: _Optional[int] = ..., parent: _Optional[str] = ..., children: _Optional[_Iterable[str]] = ..., result_certificates: _Optional[_Iterable[str]] = ..., pledges: _Optional[_Iterable[str]] = ..., due_time_provisional: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., delegation: _Optional[str] = ...) -> None: ...

class SubmitApplicationRequest(_message.Message):
    __slots__ = ("matter", "applicant", "request_id", "pledges")
    MATTER_FIELD_NUMBER: _ClassVar[int]
    APPLICANT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PLEDGES_FIELD_NUMBER: _ClassVar[int]
    matter: str
    applicant: str
    request_id: str
    pledges: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, matter: _Optional[str] = ..., applicant: _Optional[str] = ..., request_id: _Optional[str] = ..., pledges: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitApplicationResponse(_message.Message):
    __slots__ = ("application",)
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    application: Application
    def __init__(self, application: _Optional[_Union[Application, _Mapping]] = ...) -> None: ...

class GetApplicationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetApplicationResponse(_message.Message):
    __slots__ = ("application",)
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    application: Application
    def __init__(self, application: _Optional[_Union[Application, _Mapping]] = ...) -> None: ...

class ListApplicationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListApplicationsResponse(_message.Message):
    __slots__ = ("applications", "next_page_token")
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedCompositeFieldContainer[Application]
    next_page_token: str
    def __init__(self, applications: _Optional[_Iterable[_Union[Application, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("name", "application", "step", "display_name", "role", "agency", "status", "assignee", "due_time", "overdue", "decision", "create_time", "matter", "kind", "reasons", "due_time_provisional")
    NAME_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MATTER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_PROVISIONAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    application: str
    step: str
    display_name: str
    role: str
    agency: str
    status: TaskStatus
    assignee: str
    due_time: _timestamp_pb2.Timestamp
    overdue: bool
    decision: Decision
    create_time: _timestamp_pb2.Timestamp
    matter: str
    kind: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    due_time_provisional: bool
    def __init__(self, name: _Optional[str] = ..., application: _Optional[str] = ..., step: _Optional[str] = ..., display_name: _Optional[str] = ..., role: _Optional[str] = ..., agency: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., assignee: _Optional[str] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., overdue: _Optional[bool] = ..., decision: _Optional[_Union[Decision, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., matter: _Optional[str] = ..., kind: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., due_time_provisional: _Optional[bool] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ClaimTaskRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ClaimTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class DecideTaskRequest(_message.Message):
    __slots__ = ("name", "decision", "reasons", "missing_materials")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    MISSING_MATERIALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    decision: Decision
    reasons: _containers.RepeatedScalarFieldContainer[str]
    missing_materials: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., decision: _Optional[_Union[Decision, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., missing_materials: _Optional[_Iterable[str]] = ...) -> None: ...

class ReassignTaskRequest(_message.Message):
    __slots__ = ("name", "assignee")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    name: str
    assignee: str
    def __init__(self, name: _Optional[str] = ..., assignee: _Optional[str] = ...) -> None: ...

class ReassignTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class WithdrawApplicationRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WithdrawApplicationResponse(_message.Message):
    __slots__ = ("application",)
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    application: Application
    def __init__(self, application: _Optional[_Union[Application, _Mapping]] = ...) -> None: ...

class SuppliedMaterial(_message.Message):
    __slots__ = ("code", "certificate", "upload_uri", "upload_sha256")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_URI_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_SHA256_FIELD_NUMBER: _ClassVar[int]
    code: str
    certificate: str
    upload_uri: str
    upload_sha256: str
    def __init__(self, code: _Optional[str] = ..., certificate: _Optional[str] = ..., upload_uri: _Optional[str] = ..., upload_sha256: _Optional[str] = ...) -> None: ...

class SupplyMaterialsRequest(_message.Message):
    __slots__ = ("name", "materials")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATERIALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    materials: _containers.RepeatedCompositeFieldContainer[SuppliedMaterial]
    def __init__(self, name: _Optional[str] = ..., materials: _Optional[_Iterable[_Union[SuppliedMaterial, _Mapping]]] = ...) -> None: ...

class SupplyMaterialsResponse(_message.Message):
    __slots__ = ("application",)
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    application: Application
    def __init__(self, application: _Optional[_Union[Application, _Mapping]] = ...) -> None: ...

class RateApplicationRequest(_message.Message):
    __slots__ = ("name", "score", "comment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    score: int
    comment: str
    def __init__(self, name: _Optional[str] = ..., score: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class RateApplicationResponse(_message.Message):
    __slots__ = ("application",)
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    application: Application
    def __init__(self, application: _Optional[_Union[Application, _Mapping]] = ...) -> None: ...

class GetStatisticsRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: str
    def __init__(self, filter: _Optional[str] = ...) -> None: ...

class MatterStatistics(_message.Message):
    __slots__ = ("matter", "agency", "counts", "on_time_rate", "average_working_days", "decided", "average_rating")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    MATTER_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ON_TIME_RATE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_WORKING_DAYS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_RATING_FIELD_NUMBER: _ClassVar[int]
    matter: str
    agency: str
    counts: _containers.ScalarMap[str, int]
    on_time_rate: float
    average_working_days: float
    decided: int
    average_rating: float
    def __init__(self, matter: _Optional[str] = ..., agency: _Optional[str] = ..., counts: _Optional[_Mapping[str, int]] = ..., on_time_rate: _Optional[float] = ..., average_working_days: _Optional[float] = ..., decided: _Optional[int] = ..., average_rating: _Optional[float] = ...) -> None: ...

class GetStatisticsResponse(_message.Message):
    __slots__ = ("matters",)
    MATTERS_FIELD_NUMBER: _ClassVar[int]
    matters: _containers.RepeatedCompositeFieldContainer[MatterStatistics]
    def __init__(self, matters: _Optional[_Iterable[_Union[MatterStatistics, _Mapping]]] = ...) -> None: ...

class DecideTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class RecordApplicationEventRequest(_message.Message):
    __slots__ = ("application", "event", "decision_receipt", "result_certificate", "current_steps", "due_time", "overdue", "missing_materials", "supplement_due_time", "result_certificates", "due_time_provisional", "reasons", "interested")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DECISION_RECEIPT_FIELD_NUMBER: _ClassVar[int]
    RESULT_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEPS_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    MISSING_MATERIALS_FIELD_NUMBER: _ClassVar[int]
    SUPPLEMENT_DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESULT_CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_PROVISIONAL_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    INTERESTED_FIELD_NUMBER: _ClassVar[int]
    application: str
    event: TimelineEvent
    decision_receipt: DecisionReceipt
    result_certificate: str
    current_steps: _containers.RepeatedScalarFieldContainer[str]
    due_time: _timestamp_pb2.Timestamp
    overdue: bool
    missing_materials: _containers.RepeatedScalarFieldContainer[str]
    supplement_due_time: _timestamp_pb2.Timestamp
    result_certificates: _containers.RepeatedScalarFieldContainer[str]
    due_time_provisional: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    interested: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, application: _Optional[str] = ..., event: _Optional[_Union[TimelineEvent, _Mapping]] = ..., decision_receipt: _Optional[_Union[DecisionReceipt, _Mapping]] = ..., result_certificate: _Optional[str] = ..., current_steps: _Optional[_Iterable[str]] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., overdue: _Optional[bool] = ..., missing_materials: _Optional[_Iterable[str]] = ..., supplement_due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., result_certificates: _Optional[_Iterable[str]] = ..., due_time_provisional: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., interested: _Optional[_Iterable[str]] = ...) -> None: ...

class RecordApplicationEventResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RecordApplicationEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordApplicationEventRequest]
    def __init__(self, events: _Optional[_Iterable[_Union[RecordApplicationEventRequest, _Mapping]]] = ...) -> None: ...

class RecordApplicationEventsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpsertTaskRequest(_message.Message):
    __slots__ = ("task", "workflow_id")
    TASK_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    task: Task
    workflow_id: str
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., workflow_id: _Optional[str] = ...) -> None: ...

class UpsertTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class CalendarDay(_message.Message):
    __slots__ = ("date", "name")
    DATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    date: str
    name: str
    def __init__(self, date: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CalendarYear(_message.Message):
    __slots__ = ("name", "region", "year", "holidays", "working_days", "source", "published_by", "publish_time", "revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    HOLIDAYS_FIELD_NUMBER: _ClassVar[int]
    WORKING_DAYS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_BY_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    region: str
    year: int
    holidays: _containers.RepeatedCompositeFieldContainer[CalendarDay]
    working_days: _containers.RepeatedCompositeFieldContainer[CalendarDay]
    source: str
    published_by: str
    publish_time: _timestamp_pb2.Timestamp
    revision: int
    def __init__(self, name: _Optional[str] = ..., region: _Optional[str] = ..., year: _Optional[int] = ..., holidays: _Optional[_Iterable[_Union[CalendarDay, _Mapping]]] = ..., working_days: _Optional[_Iterable[_Union[CalendarDay, _Mapping]]] = ..., source: _Optional[str] = ..., published_by: _Optional[str] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class PublishCalendarYearRequest(_message.Message):
    __slots__ = ("calendar_year", "validate_only")
    CALENDAR_YEAR_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    calendar_year: CalendarYear
    validate_only: bool
    def __init__(self, calendar_year: _Optional[_Union[CalendarYear, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class PublishCalendarYearResponse(_message.Message):
    __slots__ = ("calendar_year", "applications_recomputed")
    CALENDAR_YEAR_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_RECOMPUTED_FIELD_NUMBER: _ClassVar[int]
    calendar_year: CalendarYear
    applications_recomputed: int
    def __init__(self, calendar_year: _Optional[_Union[CalendarYear, _Mapping]] = ..., applications_recomputed: _Optional[int] = ...) -> None: ...

class GetCalendarYearRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetCalendarYearResponse(_message.Message):
    __slots__ = ("calendar_year",)
    CALENDAR_YEAR_FIELD_NUMBER: _ClassVar[int]
    calendar_year: CalendarYear
    def __init__(self, calendar_year: _Optional[_Union[CalendarYear, _Mapping]] = ...) -> None: ...

class ListCalendarYearsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCalendarYearsResponse(_message.Message):
    __slots__ = ("calendar_years", "next_page_token")
    CALENDAR_YEARS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    calendar_years: _containers.RepeatedCompositeFieldContainer[CalendarYear]
    next_page_token: str
    def __init__(self, calendar_years: _Optional[_Iterable[_Union[CalendarYear, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DueTimeQuery(_message.Message):
    __slots__ = ("start_time", "working_days")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    WORKING_DAYS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    working_days: int
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., working_days: _Optional[int] = ...) -> None: ...

class DueTimeAnswer(_message.Message):
    __slots__ = ("due_time", "provisional", "missing_years")
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROVISIONAL_FIELD_NUMBER: _ClassVar[int]
    MISSING_YEARS_FIELD_NUMBER: _ClassVar[int]
    due_time: _timestamp_pb2.Timestamp
    provisional: bool
    missing_years: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provisional: _Optional[bool] = ..., missing_years: _Optional[_Iterable[int]] = ...) -> None: ...

class ComputeDueTimesRequest(_message.Message):
    __slots__ = ("region", "queries")
    REGION_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    region: str
    queries: _containers.RepeatedCompositeFieldContainer[DueTimeQuery]
    def __init__(self, region: _Optional[str] = ..., queries: _Optional[_Iterable[_Union[DueTimeQuery, _Mapping]]] = ...) -> None: ...

class ComputeDueTimesResponse(_message.Message):
    __slots__ = ("answers",)
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[DueTimeAnswer]
    def __init__(self, answers: _Optional[_Iterable[_Union[DueTimeAnswer, _Mapping]]] = ...) -> None: ...
