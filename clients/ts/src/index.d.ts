// @govflow/client: the generated messages and service descriptors of Govflow's public API,
// and the google.rpc error details its errors carry (ErrorInfo, BadRequest, ...).
// Hand-written; everything it re-exports is generated into ./gen by buf (do not edit there).
export * from "./gen/govflow/identity/v1/identity_pb.js";
export * from "./gen/govflow/certificates/v1/certificates_pb.js";
export * from "./gen/govflow/matters/v1/matters_pb.js";
export * from "./gen/google/rpc/status_pb.js";
export * from "./gen/google/rpc/error_details_pb.js";
