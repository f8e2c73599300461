// One login form for both sides: citizens with ID number and password (and the one-time
// code once asked for it); officers choose the agency they work for.
import { useState, type FormEvent } from "react";
import { identity, sessionFromToken, type Session } from "./api";
import { useT } from "./i18n";
import { ErrorBox, useAction, useLoad } from "./ui";

export function Login({ officer, onLogin }: { officer: boolean; onLogin: (s: Session) => void }) {
  const { t, name } = useT();
  const [idNumber, setIdNumber] = useState("");
  const [password, setPassword] = useState("");
  const [otp, setOtp] = useState("");
  const [agency, setAgency] = useState("");
  const action = useAction();
  const agencies = useLoad(async () => (officer ? (await identity.listAgencies({ pageSize: 100 })).agencies : []),
    [officer]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    await action.run(async () => {
      const { tokens } = await identity.login({ idNumber: idNumber.trim(), password,
        oneTimeCode: otp.trim(), agency: officer ? agency : "" });
      onLogin(sessionFromToken(tokens?.accessToken ?? "", idNumber.trim()));
    });
  }
  // The code is asked for once the server says the account needs one (and kept once typed).
  const otpAsked = ["OTP_REQUIRED", "BAD_OTP"].includes(action.error?.reason ?? "");
  return (
    <form className="card login" onSubmit={submit} aria-labelledby="login-title">
      <h2 id="login-title">{officer ? t("officer") : t("citizen")} · {t("login")}</h2>
      <label>{t("idNumber")}
        <input name="idNumber" autoComplete="username" inputMode="text" required maxLength={18}
          value={idNumber} onChange={(e) => setIdNumber(e.target.value)} />
      </label>
      <label>{t("password")}
        <input name="password" type="password" autoComplete="current-password" required
          value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {officer && (
        <label>{t("agency")}
          <select name="agency" required value={agency} onChange={(e) => setAgency(e.target.value)}>
            <option value="">{t("chooseAgency")}</option>
            {(agencies.data ?? []).map((a) => (
              <option key={a.name} value={a.name}>{name(a)} ({a.code})</option>
            ))}
          </select>
        </label>
      )}
      {(otpAsked || otp) && (
        <label>{t("otp")}
          <input name="oneTimeCode" autoComplete="one-time-code" inputMode="numeric" pattern="[0-9]{6}"
            value={otp} onChange={(e) => setOtp(e.target.value)} autoFocus />
          <small>{t("otpNeeded")}</small>
        </label>
      )}
      <ErrorBox error={agencies.error} />
      <ErrorBox error={action.error} />
      <button type="submit" disabled={action.busy}>{action.busy ? t("loggingIn") : t("login")}</button>
    </form>
  );
}
