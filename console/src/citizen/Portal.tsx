// The citizen portal, phone first: services (catalogue), my applications, wallet.
import { useState } from "react";
import { type Session } from "../api";
import { useT } from "../i18n";
import { ApplicationView, MyApplications } from "./Applications";
import { Catalogue, MatterView } from "./Catalogue";
import { Wallet } from "./Wallet";

type Tab = "catalogue" | "applications" | "wallet";

export function CitizenPortal({ session }: { session: Session }) {
  const { t } = useT();
  const [tab, setTab] = useState<Tab>("catalogue");
  const [matter, setMatter] = useState("");
  const [application, setApplication] = useState("");
  const go = (next: Tab) => { setTab(next); setMatter(""); setApplication(""); };
  let page;
  if (application) {
    page = <ApplicationView session={session} name={application} onBack={() => go("applications")}
      onWallet={() => go("wallet")} />;
  } else if (tab === "catalogue" && matter) {
    page = <MatterView session={session} name={matter} onBack={() => setMatter("")}
      onSubmitted={(app) => { setTab("applications"); setApplication(app); }} />;
  } else if (tab === "catalogue") {
    page = <Catalogue onOpen={setMatter} />;
  } else if (tab === "applications") {
    page = <MyApplications session={session} onOpen={setApplication} />;
  } else {
    page = <Wallet session={session} />;
  }
  return (
    <div className="portal">
      <nav className="tabs" aria-label={t("citizen")}>
        {(["catalogue", "applications", "wallet"] as const).map((k) => (
          <button key={k} type="button" aria-current={tab === k ? "page" : undefined} onClick={() => go(k)}>
            {t(k === "catalogue" ? "tabCatalogue" : k === "applications" ? "tabApplications" : "tabWallet")}
          </button>
        ))}
      </nav>
      {page}
    </div>
  );
}
