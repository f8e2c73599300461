// Small pieces every page uses: loading and error states, labelled fields, status badges.
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { problem, type Problem } from "./api";
import { codeText, reasonText, statusText, useT } from "./i18n";

/** The server's refusal: the console's words for its reason, then the server's own message. */
export function ErrorBox({ error }: { error: Problem | null }) {
  const { t, lang } = useT();
  if (!error) return null;
  const local = reasonText[lang][error.reason] ?? codeText[lang][error.code] ?? t("error");
  return (
    <div className="error" role="alert">
      <strong>{local}</strong>
      <div className="server-message">{error.message}</div>
      {error.fields.length > 0 && (
        <ul>{error.fields.map((f) => <li key={f.field}><code>{f.field}</code>: {f.description}</li>)}</ul>
      )}
      {error.reason && <div className="reason">{t("errReason")}: <code>{error.reason}</code></div>}
    </div>
  );
}

export function Loading() {
  const { t } = useT();
  return <p className="loading" role="status" aria-live="polite">{t("loading")}</p>;
}

export function Badge({ status }: { status: string }) {
  const { lang } = useT();
  return <span className={`badge badge-${status.toLowerCase()}`}>{statusText[lang][status] ?? status}</span>;
}

/** Loads once (and again on `reload`), keeping loading and error state. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(true);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  // Only the latest load's answer is shown (an earlier one may arrive after it).
  const latest = useRef(0);
  const reload = useCallback(() => {
    const mine = ++latest.current;
    setBusy(true);
    run().then((d) => { if (mine === latest.current) { setData(d); setError(null); } })
      .catch((e) => { if (mine === latest.current) setError(problem(e)); })
      .finally(() => { if (mine === latest.current) setBusy(false); });
  }, [run]);
  useEffect(reload, [reload]);
  return { data, error, busy, reload };
}

/** Runs an action with busy and error state; returns whether it succeeded. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Problem | null>(null);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      return true;
    } catch (e) {
      setError(problem(e));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, setError };
}

export function Section({ title, children }: { title: string; children: ReactNode }) {
  return <section className="card"><h2>{title}</h2>{children}</section>;
}
