// Browse and search the catalogue; one matter's needs, the certificates it will pull,
// consent, pledges, submit.
import { useEffect, useState, type FormEvent } from "react";
import { CertificateStatus, type Matter } from "@govflow/client";
import { auth, certificates, identity, matters, short, type Session } from "../api";
import { useT } from "../i18n";
import { ErrorBox, Loading, Section, useAction, useLoad } from "../ui";

// One page of the catalogue as the matters service searches it (ListMatters' filter:
// keyword in Chinese or English, agency, level); the next pages on request.
const PAGE = 50;

function catalogueFilter(keyword: string, agency: string, level: string): string {
  const terms: string[] = [];
  const words = keyword.trim().replace(/\s+/g, " ");
  if (words) terms.push(`keyword=${words}`);
  if (agency) terms.push(`agency=${agency}`);
  if (level) terms.push(`level=${level}`);
  return terms.join(" AND ");
}

export function Catalogue({ onOpen }: { onOpen: (name: string) => void }) {
  const { t, name } = useT();
  const [keyword, setKeyword] = useState("");
  const [agency, setAgency] = useState("");
  const [level, setLevel] = useState("");
  // The filter asked for, a moment after the last keystroke.
  const [filter, setFilter] = useState("");
  useEffect(() => {
    const wanted = catalogueFilter(keyword, agency, level);
    const timer = setTimeout(() => setFilter(wanted), 250);
    return () => clearTimeout(timer);
  }, [keyword, agency, level]);
  const agencies = useLoad(async () => (await identity.listAgencies({ pageSize: 100 })).agencies, []);
  const [more, setMore] = useState<{ matters: Matter[]; token: string } | null>(null);
  const list = useLoad(async () => {
    setMore(null);
    return matters.listMatters({ filter, pageSize: PAGE });
  }, [filter]);
  const more_ = useAction();
  const shown = [...(list.data?.matters ?? []), ...(more?.matters ?? [])];
  const next = more ? more.token : list.data?.nextPageToken ?? "";
  const loadMore = () => more_.run(async () => {
    const page = await matters.listMatters({ filter, pageSize: PAGE, pageToken: next });
    setMore({ matters: [...(more?.matters ?? []), ...page.matters], token: page.nextPageToken });
  });
  const agencyName = (agency: string) => {
    const a = agencies.data?.find((x) => x.name === agency);
    return a ? name(a) : short(agency);
  };
  return (
    <Section title={t("tabCatalogue")}>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>{t("search")}
          <input type="search" name="keyword" placeholder={t("searchHint")} value={keyword}
            onChange={(e) => setKeyword(e.target.value)} />
        </label>
        <label>{t("agency")}
          <select name="agency" value={agency} onChange={(e) => setAgency(e.target.value)}>
            <option value="">{t("allAgencies")}</option>
            {(agencies.data ?? []).map((a) => <option key={a.name} value={a.name}>{name(a)}</option>)}
          </select>
        </label>
        <label>{t("level")}
          <select name="level" value={level} onChange={(e) => setLevel(e.target.value)}>
            <option value="">{t("allLevels")}</option>
            <option value="province">{t("levelProvince")}</option>
            <option value="city">{t("levelCity")}</option>
            <option value="county">{t("levelCounty")}</option>
          </select>
        </label>
      </form>
      {list.busy && <Loading />}
      <ErrorBox error={list.error ?? agencies.error} />
      {list.data && shown.length === 0 && <p>{t("noMatters")}</p>}
      <ul className="list">
        {shown.map((m) => (
          <li key={m.name}>
            <button type="button" className="row" onClick={() => onOpen(m.name)} data-matter={m.code}>
              <span className="title">{name(m)}</span>
              <span className="meta">{agencyName(m.agency)} · {t("promised")} {m.promisedLimitDays} {t("workingDays")}
                {m.instantApproval && <span className="badge badge-approved">{t("instant")}</span>}</span>
            </button>
          </li>
        ))}
      </ul>
      {next && (
        <button type="button" onClick={loadMore} disabled={more_.busy}>{t("moreMatters")}</button>
      )}
      <ErrorBox error={more_.error} />
    </Section>
  );
}

export function MatterView({ session, name, onBack, onSubmitted }: {
  session: Session; name: string; onBack: () => void; onSubmitted: (application: string) => void;
}) {
  const { t, name: named } = useT();
  const [consent, setConsent] = useState(false);
  const [pledges, setPledges] = useState<string[]>([]);
  const [requestId] = useState(() => crypto.randomUUID()); // a double click submits once
  const action = useAction();
  const data = useLoad(async () => {
    const [m, wallet, types] = await Promise.all([
      matters.getMatter({ name }),
      certificates.listCertificates({ parent: session.subject, pageSize: 100 }, auth(session)),
      certificates.listCertificateTypes({ pageSize: 100 }),
    ]);
    return { matter: m.matter!, wallet: wallet.certificates, types: types.certificateTypes };
  }, [name, session]);
  if (data.busy && !data.data) return <Loading />;
  if (!data.data) return <ErrorBox error={data.error} />;
  const { matter, wallet, types } = data.data;
  const typeName = (n: string) => ((x) => (x ? named(x) : short(n)))(types.find((x) => x.name === n));
  async function submit(e: FormEvent) {
    e.preventDefault();
    await action.run(async () => {
      const { application } = await matters.submitApplication(
        { matter: matter.name, requestId, pledges }, auth(session));
      onSubmitted(application!.name);
    });
  }
  return (
    <form className="card" onSubmit={submit} aria-labelledby="matter-title">
      <button type="button" className="link" onClick={onBack}>← {t("back")}</button>
      <h2 id="matter-title">{named(matter)}</h2>
      <p className="meta">{t("promised")} {matter.promisedLimitDays} {t("workingDays")} · {t("legal")}{" "}
        {matter.legalLimitDays} {t("workingDays")}{matter.instantApproval && <> · <span className="badge badge-approved">{t("instant")}</span></>}</p>
      <h3>{t("materials")}</h3>
      <ul className="materials">
        {matter.materials.map((mat) => {
          const held = wallet.filter((c) => mat.certificateTypes.includes(c.type) &&
            c.status === CertificateStatus.ACTIVE);
          return (
            <li key={mat.code}>
              <strong>{named(mat)}</strong>
              {held.length > 0 ? (
                <div className="ok">{t("willPull")}: {held.map((c) => `${typeName(c.type)} (${short(c.name).slice(0, 8)}…)`).join("、")}</div>
              ) : mat.certificateTypes.length > 0 ? (
                <div className="warn">{t("noCertHeld")}: {mat.certificateTypes.map(typeName).join("、")}</div>
              ) : (
                <div className="warn">{t("upload")}</div>
              )}
              {mat.pledgeAllowed && (
                <label className="check">
                  <input type="checkbox" checked={pledges.includes(mat.code)} onChange={(e) =>
                    setPledges(e.target.checked ? [...pledges, mat.code] : pledges.filter((p) => p !== mat.code))} />
                  {t("pledge")} <span className="badge">{t("pledgeAllowed")}</span>
                </label>
              )}
            </li>
          );
        })}
      </ul>
      {matter.steps.length > 0 && (
        <>
          <h3>{t("steps")}</h3>
          <ol>{matter.steps.map((s) => <li key={s.code}>{named(s)} ({s.timeLimitDays} {t("workingDays")})</li>)}</ol>
        </>
      )}
      <label className="check">
        <input type="checkbox" name="consent" required checked={consent} onChange={(e) => setConsent(e.target.checked)} />
        {t("consent")}
      </label>
      <ErrorBox error={action.error} />
      <button type="submit" disabled={!consent || action.busy}>{action.busy ? t("submitting") : t("submit")}</button>
    </form>
  );
}
