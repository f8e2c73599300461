import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ApplicationStatus, IdentityService, MattersService } from "@govflow/client";

const transport = createConnectTransport({ baseUrl: "http://127.0.0.1:8080" });
const { tokens } = await createClient(IdentityService, transport)
  .login({ idNumber: "440304199007010039", password: "govflow-demo" });
const headers = { authorization: `Bearer ${tokens?.accessToken}` };
const matters = createClient(MattersService, transport);
const { application } = await matters.submitApplication(
  { matter: "matters/individual-business-registration", requestId: crypto.randomUUID() }, { headers });
console.log(application?.name, ApplicationStatus[application?.status ?? 0]);
