// The page the browser test loads: it calls Govflow through the generated client with
// connect-web, from whatever origin it was served from, and leaves what happened in
// window.govflowResult. Query: ?gateway=URL&id=ID_NUMBER&password=PASSWORD
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { IdentityService, MattersService } from "@govflow/client";

declare global {
  interface Window { govflowResult?: Record<string, unknown> }
}

async function run(): Promise<Record<string, unknown>> {
  const query = new URLSearchParams(location.search);
  const transport = createConnectTransport({ baseUrl: query.get("gateway") ?? "" });
  const identity = createClient(IdentityService, transport);
  const matters = createClient(MattersService, transport);
  try {
    // A JSON POST (preflighted), then a call with the authorization header (preflighted too).
    const { tokens } = await identity.login({
      idNumber: query.get("id") ?? "", password: query.get("password") ?? "" });
    const listed = await matters.listApplications(
      { pageSize: 5 }, { headers: { authorization: `Bearer ${tokens?.accessToken ?? ""}` } });
    return { ok: true, origin: location.origin, applications: listed.applications.length };
  } catch (e) {
    const err = ConnectError.from(e);
    return { ok: false, origin: location.origin, code: err.code, message: err.rawMessage };
  }
}

void run().then((result) => {
  window.govflowResult = result;
  document.body.textContent = JSON.stringify(result);
});
