// The agency's figures per matter, with plain SVG bars (no chart library needed for this).
import { auth, matters, short, type Session } from "../api";
import { statusText, useT } from "../i18n";
import { ErrorBox, Loading, Section, useLoad } from "../ui";

function Bars({ title, rows, max, unit }: { title: string; rows: { label: string; value: number }[]; max: number; unit: string }) {
  const h = 38; // a label line above each bar, so long matter codes never overlap it
  const width = (v: number) => (max > 0 ? (250 * v) / max : 0);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 320 ${rows.length * h + 4}`} width="100%" role="img" aria-label={title}>
        {rows.map((r, i) => (
          <g key={r.label} transform={`translate(0 ${i * h + 2})`}>
            <text x="0" y="12" fontSize="11">{r.label}</text>
            <rect x="0" y="17" height="14" rx="3" width={width(r.value)} className="bar" />
            <text x={width(r.value) + 4} y="29" fontSize="11">{r.value.toFixed(unit === "%" ? 0 : 1)}{unit}</text>
          </g>
        ))}
      </svg>
    </figure>
  );
}

export function Statistics({ session }: { session: Session }) {
  const { t, lang } = useT();
  const stats = useLoad(async () => (await matters.getStatistics({}, auth(session))).matters, [session]);
  const rows = stats.data ?? [];
  return (
    <Section title={`${t("stats")} · ${short(session.agency)}`}>
      {stats.busy && <Loading />}
      <ErrorBox error={stats.error} />
      {stats.data && rows.length === 0 && <p>{t("noStats")}</p>}
      {rows.length > 0 && (
        <div className="charts">
          <Bars title={t("onTimeRate")} unit="%" max={100}
            rows={rows.map((m) => ({ label: short(m.matter), value: m.onTimeRate * 100 }))} />
          <Bars title={t("avgDays")} unit="" max={Math.max(1, ...rows.map((m) => m.averageWorkingDays))}
            rows={rows.map((m) => ({ label: short(m.matter), value: m.averageWorkingDays }))} />
          <Bars title={t("avgRating")} unit="★" max={5}
            rows={rows.map((m) => ({ label: short(m.matter), value: m.averageRating }))} />
        </div>
      )}
      {rows.length > 0 && (
        <table className="stats">
          <thead><tr><th>{t("matter")}</th><th>{t("decidedCount")}</th><th>{t("onTimeRate")}</th><th>{t("avgDays")}</th><th>{t("avgRating")}</th><th>{t("counts")}</th></tr></thead>
          <tbody>{rows.map((m) => (
            <tr key={m.matter + m.agency}><td>{short(m.matter)}</td><td>{m.decided}</td><td>{(m.onTimeRate * 100).toFixed(0)}%</td>
              <td>{m.averageWorkingDays.toFixed(1)}</td><td>{m.averageRating.toFixed(1)}</td>
              <td>{Object.entries(m.counts).map(([k, v]) => `${statusText[lang][k] ?? k} ${v}`).join("，")}</td></tr>
          ))}</tbody>
        </table>
      )}
    </Section>
  );
}
