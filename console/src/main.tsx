import { StrictMode, useContext, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { type Session } from "./api";
import { LangContext, type Lang, useT } from "./i18n";
import { Login } from "./Login";
import { CitizenPortal } from "./citizen/Portal";
import { Workbench } from "./officer/Workbench";
import "./styles.css";

type Side = "citizen" | "officer";

function sideFromHash(): Side {
  return window.location.hash.startsWith("#/officer") ? "officer" : "citizen";
}

function Shell() {
  const { t, lang } = useT();
  const [side, setSide] = useState<Side>(sideFromHash);
  const [sessions, setSessions] = useState<Partial<Record<Side, Session>>>(() => {
    const saved = sessionStorage.getItem("govflow.sessions");
    return saved ? (JSON.parse(saved) as Partial<Record<Side, Session>>) : {};
  });
  useEffect(() => {
    sessionStorage.setItem("govflow.sessions", JSON.stringify(sessions));
  }, [sessions]);
  useEffect(() => {
    const onHash = () => setSide(sideFromHash());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  const session = sessions[side];
  const { setLang } = useContext(LangContext);
  return (
    <div className={`shell shell-${side}`}>
      <header className="top">
        <h1>{t("appTitle")}</h1>
        <nav aria-label="side" className="sides">
          <a href="#/citizen" aria-current={side === "citizen" ? "page" : undefined}>{t("citizen")}</a>
          <a href="#/officer" aria-current={side === "officer" ? "page" : undefined}>{t("officer")}</a>
        </nav>
        <button type="button" className="link" lang={lang === "zh" ? "en" : "zh"}
          onClick={() => setLang(lang === "zh" ? "en" : "zh")}>{t("switchLang")}</button>
        {session && (
          <span className="who">
            {session.name}
            <button type="button" className="link"
              onClick={() => setSessions({ ...sessions, [side]: undefined })}>{t("logout")}</button>
          </span>
        )}
      </header>
      <main>
        {!session ? (
          <Login officer={side === "officer"} onLogin={(s) => setSessions({ ...sessions, [side]: s })} />
        ) : side === "citizen" ? (
          <CitizenPortal session={session} />
        ) : (
          <Workbench session={session} />
        )}
      </main>
    </div>
  );
}

function App() {
  const [lang, setLang] = useState<Lang>(() => (localStorage.getItem("govflow.lang") as Lang) || "zh");
  useEffect(() => {
    localStorage.setItem("govflow.lang", lang);
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  }, [lang]);
  return (
    <LangContext.Provider value={{ lang, setLang }}>
      <Shell />
    </LangContext.Provider>
  );
}

createRoot(document.getElementById("root")!).render(<StrictMode><App /></StrictMode>);
