// The console's one connection to Govflow: the generated clients over Connect (JSON), the
// session's token, and errors turned into what a person can read.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  BadRequestSchema,
  CertificatesService,
  ErrorInfoSchema,
  IdentityService,
  MattersService,
} from "@govflow/client";

// Served by the gateway: the API is this page's own origin. `vite dev` points elsewhere.
const baseUrl = (import.meta.env.VITE_GATEWAY_URL as string | undefined) || window.location.origin;
const transport = createConnectTransport({ baseUrl, useBinaryFormat: false });

export const identity: Client<typeof IdentityService> = createClient(IdentityService, transport);
export const matters: Client<typeof MattersService> = createClient(MattersService, transport);
export const certificates: Client<typeof CertificatesService> =
  createClient(CertificatesService, transport);

/** Who is logged in, from the access token's claims (read, not verified: the services do). */
export interface Session {
  token: string;
  subject: string; // persons/{id}
  kind: string; // person | official
  agency: string; // agencies/{code} for officials
  roles: string[];
  name: string; // what the person typed to log in, shown in the header
}

export function sessionFromToken(token: string, name: string): Session {
  const part = token.split(".")[1] ?? "";
  const json = decodeURIComponent(
    Array.from(atob(part.replace(/-/g, "+").replace(/_/g, "/")))
      .map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0"))
      .join(""),
  );
  const claims = JSON.parse(json) as Record<string, unknown>;
  return {
    token,
    subject: String(claims.sub ?? ""),
    kind: String(claims.kind ?? ""),
    agency: String(claims.agency ?? ""),
    roles: Array.isArray(claims.roles) ? claims.roles.map(String) : [],
    name,
  };
}

export function auth(session: Session): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${session.token}` } };
}

/** A refusal as the server sent it: its message, its ErrorInfo reason and bad fields. */
export interface Problem {
  code: string;
  message: string;
  reason: string;
  fields: { field: string; description: string }[];
}

export function problem(e: unknown): Problem {
  const err = ConnectError.from(e);
  const [info] = err.findDetails(ErrorInfoSchema);
  const [bad] = err.findDetails(BadRequestSchema);
  return {
    code: Code[err.code] ?? String(err.code),
    message: err.rawMessage,
    reason: info?.reason ?? "",
    fields: (bad?.fieldViolations ?? []).map((v) => ({ field: v.field, description: v.description })),
  };
}

export function when(ts: Timestamp | undefined, lang: string): string {
  if (!ts) return "—";
  return timestampDate(ts).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", {
    timeZone: "Asia/Shanghai",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
}

/** The last path segment of a resource name: `matters/x` -> `x`. */
export function short(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}
