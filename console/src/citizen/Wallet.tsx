// The wallet: certificates, the QR code of each one's compact form, and who read it.
import { useState } from "react";
import { QRCodeSVG } from "qrcode.react";
import { CertificateStatus, type AccessRecord, type Certificate } from "@govflow/client";
import { auth, certificates, short, when, type Session } from "../api";
import { useT } from "../i18n";
import { Badge, ErrorBox, Loading, Section, useLoad } from "../ui";

export function Wallet({ session }: { session: Session }) {
  const { t, name } = useT();
  const data = useLoad(async () => {
    const [certs, types, access] = await Promise.all([
      certificates.listCertificates({ parent: session.subject, pageSize: 100 }, auth(session)),
      certificates.listCertificateTypes({ pageSize: 100 }),
      certificates.listAccessRecords({ parent: session.subject, pageSize: 200 }, auth(session)),
    ]);
    return { certs: certs.certificates, types: types.certificateTypes, access: access.accessRecords };
  }, [session]);
  return (
    <Section title={t("wallet")}>
      {data.busy && <Loading />}
      <ErrorBox error={data.error} />
      {data.data && data.data.certs.length === 0 && <p>{t("noCerts")}</p>}
      <ul className="wallet">
        {(data.data?.certs ?? []).map((c) => (
          <CertificateCard key={c.name} session={session} cert={c}
            typeName={((x) => (x ? name(x) : short(c.type)))(data.data!.types.find((x) => x.name === c.type))}
            access={data.data!.access.filter((r) => r.certificate === c.name)} />
        ))}
      </ul>
    </Section>
  );
}

function CertificateCard({ session, cert, typeName, access }: {
  session: Session; cert: Certificate; typeName: string; access: AccessRecord[];
}) {
  const { t, lang } = useT();
  const [qr, setQr] = useState(false);
  const [log, setLog] = useState(false);
  const compact = useLoad(async () => (qr
    ? (await certificates.getCompactCertificate({ name: cert.name }, auth(session))).token : ""), [qr, cert.name]);
  const status = CertificateStatus[cert.status] ?? "UNSPECIFIED";
  return (
    <li className="certificate" data-type={short(cert.type)}>
      <div className="cert-head">
        <strong>{typeName}</strong> <Badge status={status} />
      </div>
      <dl>
        {Object.entries(cert.fields).map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}
        <div><dt>{t("issuer")}</dt><dd>{short(cert.issuer)} · {cert.keyId}</dd></div>
        <div><dt>{t("validUntil")}</dt><dd>{when(cert.validUntil, lang)}</dd></div>
      </dl>
      <div className="actions">
        <button type="button" className="secondary" aria-expanded={qr} onClick={() => setQr(!qr)}>{qr ? t("hideQr") : t("showQr")}</button>
        <button type="button" className="secondary" aria-expanded={log} onClick={() => setLog(!log)}>
          {log ? t("hideLog") : `${t("accessLog")} (${access.length})`}</button>
      </div>
      {qr && (
        <figure className="qr">
          {compact.busy && <Loading />}
          <ErrorBox error={compact.error} />
          {compact.data && <QRCodeSVG value={compact.data} size={220} level="L" marginSize={2} title={typeName} />}
          <figcaption>{t("qrHint")}</figcaption>
        </figure>
      )}
      {log && (access.length === 0 ? <p>{t("noAccess")}</p> : (
        <table className="access">
          <thead><tr><th>{t("time")}</th><th>{t("accessor")}</th><th>{t("action")}</th><th>{t("purpose")}</th></tr></thead>
          <tbody>{access.map((r) => (
            <tr key={r.name}><td>{when(r.accessTime, lang)}</td><td>{r.party || r.accessor}</td><td>{r.action}</td>
              <td>{r.purpose}{r.application && <> · <code>{short(r.application).slice(0, 8)}</code></>}</td></tr>
          ))}</tbody>
        </table>
      ))}
    </li>
  );
}
