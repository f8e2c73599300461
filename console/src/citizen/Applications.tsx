// My applications, and one application followed as it moves: timeline, receipt, reasons,
// withdraw, supply materials, rate.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApplicationStatus, CertificateStatus, type Application, type Matter } from "@govflow/client";
import { auth, certificates, matters, problem, short, when, type Problem, type Session } from "../api";
import { eventLine, useT } from "../i18n";
import { Badge, ErrorBox, Loading, Section, useAction, useLoad } from "../ui";

const ENDED = new Set([ApplicationStatus.APPROVED, ApplicationStatus.REJECTED, ApplicationStatus.WITHDRAWN,
  ApplicationStatus.COMPLETED, ApplicationStatus.FAILED, ApplicationStatus.REVOKED]);

export const statusName = (s: ApplicationStatus) => ApplicationStatus[s] ?? "UNSPECIFIED";

export function MyApplications({ session, onOpen }: { session: Session; onOpen: (name: string) => void }) {
  const { t, lang, name } = useT();
  const list = useLoad(async () => {
    const [apps, ms] = await Promise.all([
      matters.listApplications({ pageSize: 50 }, auth(session)),
      matters.listMatters({ pageSize: 100 }),
    ]);
    return { apps: apps.applications, names: new Map(ms.matters.map((m) => [m.name, m])) };
  }, [session]);
  return (
    <Section title={t("tabApplications")}>
      {list.busy && <Loading />}
      <ErrorBox error={list.error} />
      {list.data && list.data.apps.length === 0 && <p>{t("noApplications")}</p>}
      <ul className="list">
        {(list.data?.apps ?? []).map((a) => (
          <li key={a.name}>
            <button type="button" className="row" onClick={() => onOpen(a.name)}>
              <span className="title">{((m) => (m ? name(m) : short(a.matter)))(list.data?.names.get(a.matter))}</span>
              <span className="meta"><Badge status={statusName(a.status)} /> {when(a.createTime, lang)}</span>
            </button>
          </li>
        ))}
      </ul>
    </Section>
  );
}

/** Polls GetApplication: often while it moves (an instant approval shows within a second). */
function useApplication(session: Session, name: string) {
  const [app, setApp] = useState<Application | null>(null);
  const [error, setError] = useState<Problem | null>(null);
  const [tick, setTick] = useState(0);
  const timer = useRef<number>(0);
  useEffect(() => {
    let stopped = false;
    async function poll() {
      try {
        const { application } = await matters.getApplication({ name }, auth(session));
        if (stopped) return;
        setApp(application ?? null);
        setError(null);
        const ended = application && ENDED.has(application.status);
        timer.current = window.setTimeout(poll, ended ? 5000 : 400);
      } catch (e) {
        if (stopped) return;
        setError(problem(e));
        timer.current = window.setTimeout(poll, 3000);
      }
    }
    void poll();
    return () => { stopped = true; window.clearTimeout(timer.current); };
  }, [session, name, tick]);
  return { app, error, refresh: () => setTick((n) => n + 1) };
}

export function ApplicationView({ session, name, onBack, onWallet }: {
  session: Session; name: string; onBack: () => void; onWallet: () => void;
}) {
  const { t, lang, name: named } = useT();
  const { app, error, refresh } = useApplication(session, name);
  const matter = useLoad(async () => (app ? (await matters.getMatter({ name: app.matter })).matter : undefined),
    [app?.matter]);
  if (!app) return error ? <ErrorBox error={error} /> : <Loading />;
  const status = statusName(app.status);
  const ended = ENDED.has(app.status);
  const results = [...new Set([app.resultCertificate, ...app.resultCertificates].filter(Boolean))];
  return (
    <div className="application" data-status={status} data-application={app.name}>
      <section className="card">
        <button type="button" className="link" onClick={onBack}>← {t("back")}</button>
        <h2>{matter.data ? named(matter.data) : short(app.matter)}</h2>
        <p className="status-line" aria-live="polite">{t("status")}: <Badge status={status} /></p>
        <p className="meta">{t("application")} <code>{short(app.name).slice(0, 8)}</code> · {t("dueTime")}{" "}
          {when(app.dueTime, lang)} {app.dueTimeProvisional && <em>{t("provisional")}</em>}
          {app.overdue && <span className="badge badge-rejected">{t("overdue")}</span>}</p>
        <ErrorBox error={error} />
        {app.reasons.length > 0 && (
          <div className="reasons"><h3>{t("reasons")}</h3><ul>{app.reasons.map((r) => <li key={r}>{r}</li>)}</ul></div>
        )}
        {results.length > 0 && (
          <p className="result">{t("resultCert")}: {results.map((c) => <code key={c}>{short(c).slice(0, 8)}… </code>)}
            <button type="button" className="link" onClick={onWallet}>{t("seeWallet")}</button></p>
        )}
      </section>
      {app.decisionReceipt && (
        <Section title={t("receipt")}>
          <p>{t("outcome")}: <strong>{app.decisionReceipt.outcome}</strong> <small>({app.decisionReceipt.ruleVersion})</small></p>
          <ul className="receipt">{app.decisionReceipt.explanations.map((x) => <li key={x}>{x}</li>)}</ul>
        </Section>
      )}
      <Section title={t("timeline")}>
        <ol className="timeline">
          {app.timeline.map((ev) => {
            const line = eventLine(ev, lang);
            return (
              <li key={ev.eventId} data-kind={ev.kind}>
                <time>{when(ev.time, lang)}</time>
                <strong>{line.label}</strong>
                {line.detail && <span className="meta" lang={line.detailLang}>{line.detail}</span>}
              </li>
            );
          })}
        </ol>
      </Section>
      {app.status === ApplicationStatus.SUPPLEMENT_REQUESTED && (
        <Supply session={session} app={app} matter={matter.data ?? undefined} onDone={refresh} />
      )}
      {!ended && <Withdraw session={session} app={app} onDone={refresh} />}
      {ended && app.status !== ApplicationStatus.WITHDRAWN && <Rate session={session} app={app} onDone={refresh} />}
    </div>
  );
}

function Withdraw({ session, app, onDone }: { session: Session; app: Application; onDone: () => void }) {
  const { t } = useT();
  const [reason, setReason] = useState("");
  const action = useAction();
  async function submit(e: FormEvent) {
    e.preventDefault();
    if (await action.run(() => matters.withdrawApplication({ name: app.name, reason }, auth(session)))) onDone();
  }
  return (
    <form className="card" onSubmit={submit}>
      <h2>{t("withdraw")}</h2>
      <label>{t("withdrawReason")}<input name="reason" value={reason} onChange={(e) => setReason(e.target.value)} /></label>
      <ErrorBox error={action.error} />
      <button type="submit" className="secondary" disabled={action.busy}>{t("withdraw")}</button>
    </form>
  );
}

function Supply({ session, app, matter, onDone }: {
  session: Session; app: Application; matter: Matter | undefined; onDone: () => void;
}) {
  const { t, lang, name } = useT();
  const [chosen, setChosen] = useState<Record<string, { certificate: string; uri: string }>>({});
  const action = useAction();
  const wallet = useLoad(async () =>
    (await certificates.listCertificates({ parent: app.applicant, pageSize: 100 }, auth(session))).certificates
      .filter((c) => c.status === CertificateStatus.ACTIVE), [app.applicant, session]);
  async function submit(e: FormEvent) {
    e.preventDefault();
    const materials = app.missingMaterials.map((code) => ({
      code, certificate: chosen[code]?.certificate ?? "", uploadUri: chosen[code]?.uri ?? "" }));
    if (await action.run(() => matters.supplyMaterials({ name: app.name, materials }, auth(session)))) onDone();
  }
  const set = (code: string, part: "certificate" | "uri", v: string) =>
    setChosen({ ...chosen, [code]: { ...(chosen[code] ?? { certificate: "", uri: "" }), [part]: v } });
  return (
    <form className="card" onSubmit={submit}>
      <h2>{t("supplement")}</h2>
      <p>{t("supplementAsked")} {t("supplementDue")} {when(app.supplementDueTime, lang)}</p>
      {app.missingMaterials.map((code) => (
        <fieldset key={code}>
          <legend>{((m) => (m ? name(m) : code))(matter?.materials.find((m) => m.code === code))}</legend>
          <label>{t("supplyWith")}
            <select value={chosen[code]?.certificate ?? ""} onChange={(e) => set(code, "certificate", e.target.value)}>
              <option value="">—</option>
              {(wallet.data ?? []).map((c) => <option key={c.name} value={c.name}>{short(c.type)} · {short(c.name).slice(0, 8)}</option>)}
            </select>
          </label>
          <label>{t("supplyUri")}<input value={chosen[code]?.uri ?? ""} onChange={(e) => set(code, "uri", e.target.value)} /></label>
        </fieldset>
      ))}
      <ErrorBox error={wallet.error} />
      <ErrorBox error={action.error} />
      <button type="submit" disabled={action.busy}>{t("supplyNow")}</button>
    </form>
  );
}

function Rate({ session, app, onDone }: { session: Session; app: Application; onDone: () => void }) {
  const { t } = useT();
  const [score, setScore] = useState(5);
  const [comment, setComment] = useState("");
  const action = useAction();
  if (app.rating > 0) return <Section title={t("rated")}><p>{"★".repeat(app.rating)}{"☆".repeat(5 - app.rating)}</p></Section>;
  async function submit(e: FormEvent) {
    e.preventDefault();
    if (await action.run(() => matters.rateApplication({ name: app.name, score, comment }, auth(session)))) onDone();
  }
  return (
    <form className="card" onSubmit={submit}>
      <h2>{t("rate")}</h2>
      <label>{t("score")}
        <select name="score" value={score} onChange={(e) => setScore(Number(e.target.value))}>
          {[5, 4, 3, 2, 1].map((n) => <option key={n} value={n}>{n} {t("stars")}</option>)}
        </select>
      </label>
      <label>{t("comment")}<textarea name="comment" value={comment} onChange={(e) => setComment(e.target.value)} /></label>
      <ErrorBox error={action.error} />
      <button type="submit" disabled={action.busy}>{t("sendRating")}</button>
    </form>
  );
}
