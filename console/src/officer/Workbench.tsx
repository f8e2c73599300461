// The officer workbench: the agency's inbox with filters and due times; claim, decide,
// reassign; statistics.
import { useEffect, useState, type FormEvent } from "react";
import { Decision, Role, TaskStatus, type Matter, type Task } from "@govflow/client";
import { auth, identity, matters, short, when, type Session } from "../api";
import { eventLine, named, useT, type Key, type Lang } from "../i18n";
import { statusName } from "../citizen/Applications";
import { Badge, ErrorBox, Loading, Section, useAction, useLoad } from "../ui";
import { Statistics } from "./Statistics";

const FILTERS: { key: Key; filter: string; followUps?: boolean }[] = [
  { key: "filterAll", filter: "" },
  { key: "filterMine", filter: "assignee=me" },
  { key: "filterOverdue", filter: "overdue=true" },
  { key: "filterDueSoon", filter: "due_soon=true" },
  { key: "filterFollowUps", filter: "", followUps: true },
];

/** A task's matter and step in `lang`: the catalogue's names (Chinese, or English beside
 * them); the task's own name where the matter has no such step (a follow-up). */
function taskNames(task: Task, matter: Matter | undefined, lang: Lang): { matter: string; step: string } {
  const step = matter?.steps.find((s) => s.code === task.step);
  return { matter: matter ? named(matter, lang) : short(task.matter), step: step ? named(step, lang) : task.displayName };
}

export function Workbench({ session }: { session: Session }) {
  const { t } = useT();
  const [page, setPage] = useState<"inbox" | "stats">("inbox");
  return (
    <div className="workbench">
      <nav className="tabs" aria-label={t("officer")}>
        <button type="button" aria-current={page === "inbox" ? "page" : undefined} onClick={() => setPage("inbox")}>{t("inbox")}</button>
        <button type="button" aria-current={page === "stats" ? "page" : undefined} onClick={() => setPage("stats")}>{t("stats")}</button>
        <span className="meta">{t("tasksOf")}: {short(session.agency)} · {t("roles")}: {session.roles.join(", ")}</span>
      </nav>
      {page === "inbox" ? <Inbox session={session} /> : <Statistics session={session} />}
    </div>
  );
}

function Inbox({ session }: { session: Session }) {
  const { t, lang } = useT();
  const [which, setWhich] = useState(0);
  const [selected, setSelected] = useState("");
  const f = FILTERS[which];
  const tasks = useLoad(async () => {
    const { tasks } = await matters.listTasks({ pageSize: 100, filter: f.filter }, auth(session));
    const shown = f.followUps ? tasks.filter((x) => x.kind === "follow_up" || x.overdue) : tasks;
    return shown.filter((x) => x.status === TaskStatus.OPEN || x.status === TaskStatus.CLAIMED);
  }, [session, which]);
  useEffect(() => { // new tasks arrive as applications move: look again every few seconds
    const timer = window.setInterval(tasks.reload, 4000);
    return () => window.clearInterval(timer);
  }, [tasks.reload]);
  const catalogue = useLoad(async () =>
    new Map((await matters.listMatters({ pageSize: 100 })).matters.map((m) => [m.name, m])), []);
  const task = tasks.data?.find((x) => x.name === selected);
  return (
    <div className="inbox">
      <Section title={t("inbox")}>
        <div className="filters" role="group" aria-label={t("inbox")}>
          {FILTERS.map((x, i) => (
            <button key={x.key} type="button" className="chip" aria-pressed={i === which}
              onClick={() => setWhich(i)}>{t(x.key)}</button>
          ))}
          <button type="button" className="chip" aria-label={t("refresh")} title={t("refresh")} onClick={tasks.reload}>↻</button>
        </div>
        {tasks.busy && !tasks.data && <Loading />}
        <ErrorBox error={tasks.error} />
        {tasks.data && tasks.data.length === 0 && <p>{t("noTasks")}</p>}
        {(tasks.data ?? []).length > 0 && <table className="tasks">
          <thead><tr><th>{t("matter")}</th><th>{t("step")}</th><th>{t("status")}</th><th>{t("dueTime")}</th></tr></thead>
          <tbody>
            {(tasks.data ?? []).map((x) => { const names = taskNames(x, catalogue.data?.get(x.matter), lang); return (
              <tr key={x.name} aria-selected={x.name === selected} data-task={x.name}>
                <td><button type="button" className="link" onClick={() => setSelected(x.name)}>{names.matter}</button>
                  {x.kind === "follow_up" && <span className="badge">{t("kindFollowUp")}</span>}
                  {x.overdue && session.roles.includes("supervisor") && <span className="badge badge-rejected">{t("kindEscalation")}</span>}</td>
                <td>{names.step}</td>
                <td><Badge status={TaskStatus[x.status]} /></td>
                <td>{when(x.dueTime, lang)}{x.dueTimeProvisional && <em title={t("provisional")}> {lang === "zh" ? "（暂定）" : "(provisional)"}</em>}
                  {x.overdue && <span className="badge badge-rejected">{t("overdue")}</span>}</td>
              </tr>
            ); })}
          </tbody>
        </table>}
      </Section>
      {task ? <TaskPanel key={task.name} session={session} task={task} onChanged={tasks.reload} />
        : <Section title={t("task")}><p>{t("chooseTask")}</p></Section>}
    </div>
  );
}

function TaskPanel({ session, task: listed, onChanged }: { session: Session; task: Task; onChanged: () => void }) {
  const { t, lang } = useT();
  const [task, setTask] = useState(listed); // as the last answer about it says
  const [reasons, setReasons] = useState("");
  const [missing, setMissing] = useState("");
  const [assignee, setAssignee] = useState("");
  const [done, setDone] = useState("");
  const action = useAction();
  const supervisor = session.roles.includes("supervisor");
  const app = useLoad(async () => (await matters.getApplication({ name: task.application }, auth(session))).application,
    [task.application, session]);
  const matter = useLoad(async () => (await matters.getMatter({ name: task.matter })).matter, [task.matter]);
  const limit = matter.data?.steps.find((s) => s.code === task.step)?.timeLimitDays ?? 0;
  const names = taskNames(task, matter.data ?? undefined, lang);
  const officials = useLoad(async () => (supervisor
    ? (await identity.listOfficials({ parent: session.agency, pageSize: 100 }, auth(session))).officials : []),
    [supervisor, session]);
  const mine = task.assignee === session.subject;
  async function act(label: string, call: () => Promise<{ task?: Task }>) {
    setDone("");
    if (await action.run(async () => { const { task: now } = await call(); if (now) setTask(now); })) {
      setDone(label);
      onChanged();
    }
  }
  const decide = (decision: Decision) => (e: FormEvent) => {
    e.preventDefault();
    void act(t(decision === Decision.APPROVE ? "approve" : decision === Decision.REJECT ? "reject" : "askSupplement"),
      () => matters.decideTask({
        name: task.name, decision,
        reasons: decision === Decision.REJECT ? reasons.split("\n").map((r) => r.trim()).filter(Boolean) : [],
        missingMaterials: decision === Decision.REQUEST_SUPPLEMENT
          ? missing.split(/[,，\s]+/).map((m) => m.trim()).filter(Boolean) : [],
      }, auth(session)));
  };
  return (
    <section className="card task-panel" aria-labelledby="task-title">
      <h2 id="task-title">{names.step} · {names.matter}</h2>
      <dl>
        <div><dt>{t("application")}</dt><dd><code data-application={task.application}>{short(task.application).slice(0, 8)}</code> {app.data && <Badge status={statusName(app.data.status)} />}</dd></div>
        <div><dt>{t("applicant")}</dt><dd>{app.data ? short(app.data.applicant).slice(0, 8) : "…"}</dd></div>
        <div><dt>{t("status")}</dt><dd><Badge status={TaskStatus[task.status]} /> {task.assignee && `${t("assignee")}: ${short(task.assignee).slice(0, 8)}`}</dd></div>
        <div><dt>{t("dueTime")}</dt><dd>{when(task.dueTime, lang)}
          {limit ? ` (${t("stepLimit")} ${limit} ${t("workingDays")})` : ""}
          {task.dueTimeProvisional && <em> {t("provisional")}</em>}</dd></div>
      </dl>
      <ErrorBox error={app.error} />
      {app.data && app.data.timeline.length > 0 && (
        <details><summary>{t("timeline")}</summary>
          <ol className="timeline">{app.data.timeline.map((ev) => { const line = eventLine(ev, lang); return (
            <li key={ev.eventId} data-kind={ev.kind}><time>{when(ev.time, lang)}</time> {line.label}
              {line.detail && <span className="meta" lang={line.detailLang}>: {line.detail}</span>}</li>); })}</ol>
        </details>
      )}
      {done && <p className="ok" role="status">{t("done")} {done}</p>}
      <ErrorBox error={action.error} />
      {task.status === TaskStatus.OPEN && (
        <button type="button" disabled={action.busy}
          onClick={() => act(t("claimed"), () => matters.claimTask({ name: task.name }, auth(session)))}>{t("claim")}</button>
      )}
      {task.status === TaskStatus.CLAIMED && mine && (
        <div className="decide">
          <form onSubmit={decide(Decision.APPROVE)}><button type="submit" disabled={action.busy}>{t("approve")}</button></form>
          <form onSubmit={decide(Decision.REJECT)}>
            <label>{t("reasonsHint")}<textarea name="reasons" value={reasons} onChange={(e) => setReasons(e.target.value)} /></label>
            <button type="submit" className="danger" disabled={action.busy}>{t("reject")}</button>
          </form>
          <form onSubmit={decide(Decision.REQUEST_SUPPLEMENT)}>
            <label>{t("missingHint")}<input name="missing" value={missing} onChange={(e) => setMissing(e.target.value)} /></label>
            <button type="submit" className="secondary" disabled={action.busy}>{t("askSupplement")}</button>
          </form>
        </div>
      )}
      {supervisor && (
        <form className="reassign" onSubmit={(e) => { e.preventDefault(); void act(t("reassign"),
          () => matters.reassignTask({ name: task.name, assignee }, auth(session))); }}>
          <label>{t("reassignTo")}
            <select name="assignee" required value={assignee} onChange={(e) => setAssignee(e.target.value)}>
              <option value="">{t("choosePerson")}</option>
              {(officials.data ?? []).map((o) => <option key={o.name} value={o.person}>{short(o.person).slice(0, 8)} ({o.roles.map((r) => Role[r]?.toLowerCase()).join(", ")})</option>)}
            </select>
          </label>
          <ErrorBox error={officials.error} />
          <button type="submit" className="secondary" disabled={action.busy}>{t("reassign")}</button>
        </form>
      )}
    </section>
  );
}
