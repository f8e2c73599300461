// Node end-to-end check of the generated client against a running gateway:
//   node clients/ts/test/node-e2e.mjs GATEWAY_URL ID_NUMBER PASSWORD
// Logs in, submits an instant-approval application (the senior citizen card; one per
// holder, so a second run follows the application the refusal names), follows it until it
// completes and prints one JSON line: what it saw. Run by
// tests/e2e/test_ts_client.py against the session's stack; exits non-zero on any failure.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import {
  ApplicationStatus,
  BadRequestSchema,
  ErrorInfoSchema,
  IdentityService,
  MattersService,
} from "@govflow/client";

const [baseUrl, idNumber, password] = process.argv.slice(2);
assert.ok(baseUrl && idNumber && password, "usage: node-e2e.mjs GATEWAY_URL ID_NUMBER PASSWORD");

// Connect with JSON bodies: what a browser or `curl` sends.
const transport = createConnectTransport({ baseUrl, httpVersion: "1.1" });
const identity = createClient(IdentityService, transport);
const matters = createClient(MattersService, transport);

const { tokens } = await identity.login({ idNumber, password });
assert.ok(tokens?.accessToken, "login returned no access token");
const auth = { headers: { authorization: `Bearer ${tokens.accessToken}` } };

let name = "";
let refused = "";
try {
  const submitted = await matters.submitApplication(
    { matter: "matters/senior-citizen-card", requestId: randomUUID() }, auth);
  name = submitted.application?.name ?? "";
} catch (e) {
  // The senior card is one per holder: a citizen who already holds one (an earlier run on
  // the same stack) is refused, and the refusal names that application: follow it instead.
  const err = ConnectError.from(e);
  const [info] = err.findDetails(ErrorInfoSchema);
  if (err.code !== Code.FailedPrecondition || info?.reason !== "RESULT_ALREADY_HELD") throw err;
  refused = info.reason;
  name = info.metadata.application ?? "";
}
assert.match(name, /^applications\/.+/);

// Rules approve it in seconds; the workflow then issues the card and records each step.
let application;
const deadline = Date.now() + 60_000;
for (;;) {
  ({ application } = await matters.getApplication({ name }, auth));
  if (application?.status === ApplicationStatus.COMPLETED || Date.now() > deadline) break;
  await new Promise((r) => setTimeout(r, 250));
}
assert.equal(ApplicationStatus[application.status], "COMPLETED");
const kinds = application.timeline.map((e) => e.kind);
for (const kind of ["submitted", "applicant_verified", "instant_approved", "certificate_issued"]) {
  assert.ok(kinds.includes(kind), `timeline lacks ${kind}: ${kinds.join(", ")}`);
}

// Errors arrive as ConnectError with the google.rpc details decoded by the generated types.
const notFound = await matters.getApplication({ name: "applications/no-such-application" }, auth)
  .then(() => assert.fail("a missing application was returned"), (e) => ConnectError.from(e));
assert.equal(notFound.code, Code.NotFound);
const [notFoundInfo] = notFound.findDetails(ErrorInfoSchema);
assert.ok(notFoundInfo?.reason, "NOT_FOUND carried no ErrorInfo");

const invalid = await matters.submitApplication({ matter: "", requestId: "" }, auth)
  .then(() => assert.fail("an empty submission was accepted"), (e) => ConnectError.from(e));
assert.equal(invalid.code, Code.InvalidArgument);
const [badRequest] = invalid.findDetails(BadRequestSchema);
const fields = (badRequest?.fieldViolations ?? []).map((v) => v.field);
assert.ok(fields.length > 0, "INVALID_ARGUMENT carried no BadRequest field violations");

// The same descriptors over the Connect binary format and gRPC-Web.
const viaBinary = createClient(MattersService,
  createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }));
const viaGrpcWeb = createClient(MattersService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));
const binaryStatus = (await viaBinary.getApplication({ name }, auth)).application?.status;
const grpcWebStatus = (await viaGrpcWeb.getApplication({ name }, auth)).application?.status;
assert.equal(binaryStatus, ApplicationStatus.COMPLETED);
assert.equal(grpcWebStatus, ApplicationStatus.COMPLETED);

console.log(JSON.stringify({
  application: name,
  refused,
  status: ApplicationStatus[application.status],
  timeline: kinds,
  notFound: { code: Code[notFound.code], reason: notFoundInfo.reason },
  invalid: { code: Code[invalid.code], fields },
}));
