// The web console in a real browser: Debian's chromium driven by playwright-core (Playwright's
// own browser builds cannot be downloaded here), against a running stack whose gateway serves
// the built console at / (same origin as the API):
//   node console/test/console-e2e.mjs GATEWAY_URL CONFIG_JSON
// CONFIG_JSON: {"senior": [id, password], "citizen": [id, password], "acceptor": [...],
//   "reviewer": [...], "supervisor": [...], "agency": "agencies/sz-amr", "artifacts": DIR,
//   "totp": [id, password, base32 secret] (a person with a confirmed authenticator),
//   "lead": [id, password] (a supervisor who also reviews: sees the review step and reassigns
//   it), "reviewerPerson": "persons/..." (the reviewer's resource name, whom it goes to)}
// Prints one JSON line with what it saw; tests/e2e/test_console.py asserts on it. Exits
// non-zero when a step could not be done at all (with the step named).
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [gateway, configJson] = process.argv.slice(2);
if (!gateway || !configJson) {
  console.error("usage: console-e2e.mjs GATEWAY_URL CONFIG_JSON");
  process.exit(2);
}
const config = JSON.parse(configJson);
mkdirSync(config.artifacts, { recursive: true });
const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];
const PHONE = { width: 375, height: 812 };
const DESK = { width: 1280, height: 900 };

const seen = { screenshots: [], consoleErrors: [], overflow: [], steps: [] };
let step = "start";
let refusalExpected = false;

async function open(viewport, hash = "") {
  const context = await browser.newContext({ viewport, locale: "zh-CN" });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // The refusal the test provokes comes back as an HTTP error status, which chromium
    // logs as a failed resource load; anything else is a defect.
    if (refusalExpected && m.text().startsWith("Failed to load resource")) return;
    seen.consoleErrors.push(`${step}: ${m.text()}`);
  });
  page.on("pageerror", (e) => seen.consoleErrors.push(`${step}: ${e.message}`));
  await page.goto(`${gateway}/${hash}`);
  return page;
}

async function shot(page, name) {
  const path = join(config.artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  seen.screenshots.push(path);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (wide > 0) seen.overflow.push(`${name}: ${wide}px wider than the window`);
}

async function login(page, [id, password], agency = "") {
  await page.getByLabel("身份证号").fill(id);
  await page.getByLabel("密码").fill(password);
  if (agency) await page.getByLabel("所属部门").selectOption(agency);
  await page.getByLabel("密码").press("Enter"); // keyboard: the form submits on Enter
  await page.getByRole("button", { name: "退出" }).waitFor();
}

async function openTask(page, task) {
  // The inbox looks again every few seconds: the task appears once the step has opened.
  await page.locator(`tr[data-task="${task}"] button`).click({ timeout: 60_000 });
  await page.locator(".task-panel").waitFor();
}

async function claimAndApprove(page, task, name) {
  await openTask(page, task);
  await page.getByRole("button", { name: "认领", exact: true }).click();
  await page.getByRole("button", { name: "通过", exact: true }).waitFor({ timeout: 30_000 });
  await shot(page, name);
  await page.getByRole("button", { name: "通过", exact: true }).click();
  await page.locator(`tr[data-task="${task}"]`).waitFor({ state: "detached", timeout: 60_000 });
}

/** RFC 6238 (SHA-1, 6 digits, 30 s) for the step after the current one: the step the
 *  enrolment confirmed is used up, and the server allows one step of drift. */
function nextTotp(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000) + 1));
  const mac = createHmac("sha1", key).update(counter).digest();
  const at = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
try {
  // 0. A person with an authenticator: the password alone is answered OTP_REQUIRED, and the
  //    form then asks for the one-time code.
  step = "totp";
  refusalExpected = true;
  const otpPage = await open(PHONE);
  const [otpId, otpPassword, otpSecret] = config.totp;
  await otpPage.getByLabel("身份证号").fill(otpId);
  await otpPage.getByLabel("密码").fill(otpPassword);
  await otpPage.getByLabel("密码").press("Enter");
  await otpPage.getByLabel("动态口令（6 位）").waitFor({ timeout: 30_000 });
  seen.otpAsked = await otpPage.locator(".error").innerText();
  await shot(otpPage, "citizen-login-otp-375");
  refusalExpected = false;
  await otpPage.getByLabel("动态口令（6 位）").fill(nextTotp(otpSecret));
  await otpPage.getByLabel("动态口令（6 位）").press("Enter");
  await otpPage.getByRole("button", { name: "退出" }).waitFor({ timeout: 30_000 });
  seen.steps.push("totp");

  // 1. A senior applies for the senior-citizen card (instant approval) and finds it in the wallet.
  step = "senior";
  const senior = await open(PHONE);
  await senior.getByLabel("身份证号").waitFor();
  await shot(senior, "citizen-login-375");
  await login(senior, config.senior);
  await senior.locator('[data-matter="senior-citizen-card"]').waitFor();
  await shot(senior, "citizen-catalogue-375");
  await senior.getByLabel("搜索事项").fill("优待"); // the Chinese name finds it
  // The matters service searches (ListMatters' keyword): the other matters go.
  await senior.locator('[data-matter="individual-business-registration"]').waitFor({ state: "detached" });
  seen.searched = await senior.locator("[data-matter]").evaluateAll((els) => els.map((e) => e.dataset.matter));
  await senior.locator('[data-matter="senior-citizen-card"]').click();
  await senior.locator(".materials .ok").first().waitFor();
  seen.matterTitle = await senior.locator("#matter-title").innerText();
  seen.willPull = await senior.locator(".materials .ok").allInnerTexts();
  await senior.locator('input[name="consent"]').check();
  await shot(senior, "citizen-matter-375");
  const submitted = Date.now();
  await senior.getByRole("button", { name: "提交申请" }).click();
  await senior.locator('.application[data-status="APPROVED"], .application[data-status="COMPLETED"]')
    .waitFor({ timeout: 30_000 });
  seen.instantMs = Date.now() - submitted;
  await senior.locator('.application[data-status="COMPLETED"]').waitFor({ timeout: 30_000 });
  await senior.locator('.timeline li[data-kind="certificate_issued"]').waitFor({ timeout: 30_000 });
  seen.issuedLabel = await senior.locator('.timeline li[data-kind="certificate_issued"] strong').innerText();
  seen.issuedDetail = await senior.locator('.timeline li[data-kind="certificate_issued"] .meta').innerText();
  seen.seniorDetails = await senior.locator(".timeline li .meta").allInnerTexts();
  seen.seniorTimeline = await senior.locator(".timeline li").evaluateAll(
    (els) => els.map((e) => e.getAttribute("data-kind")));
  seen.seniorReceipt = await senior.locator(".receipt li").allInnerTexts();
  await shot(senior, "citizen-application-375");
  await senior.getByRole("button", { name: "在证照夹中查看" }).click();
  const card = senior.locator('li.certificate[data-type="senior-citizen-card"]');
  await card.waitFor();
  seen.wallet = await senior.locator("li.certificate").evaluateAll(
    (els) => els.map((e) => e.getAttribute("data-type")));
  await card.getByRole("button", { name: "出示二维码" }).click();
  await card.locator(".qr svg").waitFor({ timeout: 30_000 });
  seen.qr = await card.locator(".qr svg path").count() > 0;
  const idCard = senior.locator('li.certificate[data-type="resident-id-card"]');
  await idCard.getByRole("button", { name: /使用记录/ }).click();
  seen.accessRows = await idCard.locator("table.access tbody tr").count();
  await shot(senior, "citizen-wallet-375");
  seen.steps.push("senior");

  // 2. Three steps: the citizen applies; an acceptor, then a reviewer-approver decide in the
  //    workbench; a rejection without reasons is refused with the server's message.
  step = "three-step";
  const citizen = await open(PHONE);
  await login(citizen, config.citizen);
  await citizen.locator('[data-matter="individual-business-registration"]').click();
  await citizen.locator('input[name="consent"]').check();
  await citizen.getByRole("button", { name: "提交申请" }).click();
  const appDiv = citizen.locator(".application[data-application]");
  await appDiv.waitFor();
  const application = await appDiv.getAttribute("data-application");
  const id = application.split("/")[1];
  const agency = config.agency.split("/")[1];
  seen.application = application;

  const acceptor = await open(DESK, "#/officer");
  await login(acceptor, config.acceptor, config.agency);
  await claimAndApprove(acceptor, `tasks/${id}-acceptance-${agency}`, "officer-task-1280");
  await shot(acceptor, "officer-inbox-1280");

  // A supervisor who also reviews reassigns the review step to the reviewer, who then
  // finds it claimed for them and approves it without claiming.
  step = "reassign";
  const review = `tasks/${id}-review-${agency}`;
  const lead = await open(DESK, "#/officer");
  await login(lead, config.lead, config.agency);
  await openTask(lead, review);
  // The step and matter by their catalogue names, once the matter has loaded.
  await lead.locator(".task-panel h2", { hasText: "个体工商户设立登记" }).waitFor({ timeout: 30_000 });
  seen.reviewTitle = await lead.locator(".task-panel h2").innerText();
  await lead.locator(".reassign select").selectOption(config.reviewerPerson);
  await lead.getByRole("button", { name: "转派", exact: true }).click();
  await lead.locator(".task-panel .ok[role=status]").waitFor({ timeout: 30_000 });
  seen.reassigned = await lead.locator(".task-panel .ok[role=status]").innerText();
  seen.reassignedTo = await lead.locator(".task-panel dl > div:nth-child(3) dd").innerText();
  await shot(lead, "officer-reassigned-1280");
  step = "three-step";
  const reviewer = await open(DESK, "#/officer");
  await login(reviewer, config.reviewer, config.agency);
  await openTask(reviewer, review);
  await reviewer.getByRole("button", { name: "通过", exact: true }).waitFor({ timeout: 30_000 });
  seen.reviewClaimShown = await reviewer.getByRole("button", { name: "认领", exact: true }).count();
  await shot(reviewer, "officer-review-1280");
  await reviewer.getByRole("button", { name: "通过", exact: true }).click();
  await reviewer.locator(`tr[data-task="${review}"]`).waitFor({ state: "detached", timeout: 60_000 });
  const approval = `tasks/${id}-approval-${agency}`;
  await openTask(reviewer, approval);
  await reviewer.getByRole("button", { name: "认领", exact: true }).click();
  await reviewer.getByRole("button", { name: "不予通过" }).waitFor({ timeout: 30_000 });
  step = "refusal";
  refusalExpected = true;
  await reviewer.getByRole("button", { name: "不予通过" }).click(); // no reasons given
  const refusal = reviewer.locator(".task-panel .error[role=alert]");
  await refusal.waitFor({ timeout: 30_000 });
  seen.refusal = await refusal.innerText();
  await shot(reviewer, "officer-refused-1280");
  refusalExpected = false;
  step = "three-step";
  await reviewer.getByRole("button", { name: "通过", exact: true }).click();
  await reviewer.locator(`tr[data-task="${approval}"]`).waitFor({ state: "detached", timeout: 60_000 });
  await reviewer.getByRole("button", { name: "统计分析" }).click();
  await reviewer.locator(".chart svg, .stats, .card p").first().waitFor();
  await reviewer.locator("table.stats").waitFor({ timeout: 30_000 });
  await shot(reviewer, "officer-stats-1280");
  await reviewer.setViewportSize(PHONE); // the workbench on a phone too
  await reviewer.getByRole("button", { name: "待办任务" }).click();
  await reviewer.getByRole("button", { name: "24 小时内到期" }).click();
  await reviewer.locator(".inbox table.tasks, .inbox p:has-text('没有任务')").first().waitFor();
  await shot(reviewer, "officer-inbox-375");

  await citizen.locator('.application[data-status="COMPLETED"]').waitFor({ timeout: 60_000 });
  seen.citizenStatus = await citizen.locator(".status-line").innerText();
  seen.citizenResult = await citizen.locator(".result").count() > 0;
  await shot(citizen, "citizen-result-375");
  seen.steps.push("three-step");

  // 3. A low rating opens a follow-up that the supervisor sees (with the reassign form).
  step = "rating";
  await citizen.getByLabel("评分").selectOption("2");
  await citizen.getByLabel("留言（可选）").fill("等待时间太长");
  await citizen.getByRole("button", { name: "提交评价" }).click();
  await citizen.getByRole("heading", { name: "您的评价" }).waitFor({ timeout: 30_000 });
  const supervisor = await open(DESK, "#/officer");
  await login(supervisor, config.supervisor, config.agency);
  await supervisor.getByRole("button", { name: "回访与督办" }).click();
  await openTask(supervisor, `tasks/${id}-follow-up`);
  await supervisor.locator(".reassign select option").nth(1).waitFor({ state: "attached" });
  seen.followUp = await supervisor.locator(".task-panel h2").innerText();
  await shot(supervisor, "officer-follow-up-1280");
  seen.steps.push("rating");

  // 4. Another application: the acceptor asks for a supplement, the citizen supplies the ID
  //    card from the wallet, then withdraws.
  step = "supplement";
  await citizen.getByRole("button", { name: "办事指南" }).click();
  await citizen.locator('[data-matter="individual-business-registration"]').click();
  await citizen.locator('input[name="consent"]').check();
  await citizen.getByRole("button", { name: "提交申请" }).click();
  const second = await citizen.locator(".application[data-application]").getAttribute("data-application");
  await citizen.locator('.application[data-status="IN_REVIEW"]').waitFor({ timeout: 60_000 });
  const acceptance = `tasks/${second.split("/")[1]}-acceptance-${agency}`;
  await openTask(acceptor, acceptance);
  await acceptor.getByRole("button", { name: "认领", exact: true }).click();
  await acceptor.getByLabel("需补正的材料编码，逗号分隔").fill("id-card");
  await acceptor.getByRole("button", { name: "要求补正" }).click();
  await citizen.locator('.application[data-status="SUPPLEMENT_REQUESTED"]').waitFor({ timeout: 60_000 });
  const pick = citizen.getByLabel("选用证照");
  const value = await pick.locator("option", { hasText: "resident-id-card" }).first().getAttribute("value");
  await pick.selectOption(value);
  await shot(citizen, "citizen-supplement-375");
  await citizen.getByRole("button", { name: "提交补正" }).click();
  await citizen.locator('.application[data-status="IN_REVIEW"]').waitFor({ timeout: 60_000 });
  await citizen.getByLabel("撤回原因（可选）").fill("信息填错了");
  await citizen.getByRole("button", { name: "撤回申请" }).click();
  await citizen.locator('.application[data-status="WITHDRAWN"]').waitFor({ timeout: 60_000 });
  seen.secondTimeline = await citizen.locator(".timeline li").evaluateAll(
    (els) => els.map((e) => e.getAttribute("data-kind")));
  seen.steps.push("supplement");

  // 5. The English switch, at desk width.
  step = "english";
  const desk = await open(DESK);
  await login(desk, config.citizen);
  await desk.getByRole("button", { name: "English" }).click();
  await desk.getByRole("button", { name: "Wallet" }).waitFor();
  seen.english = await desk.locator("nav.tabs").innerText();
  await desk.locator('[data-matter="senior-citizen-card"]').waitFor();
  seen.englishTitle = await desk.locator('[data-matter="senior-citizen-card"] .title').innerText();
  await shot(desk, "citizen-catalogue-en-1280");
  // The timeline's own messages in English (message_en) behind the switch.
  await desk.getByRole("button", { name: "My applications" }).click();
  await desk.locator("ul.list button.row").first().click();
  await desk.locator('.timeline li[data-kind="submitted"] .meta').waitFor({ timeout: 30_000 });
  seen.englishDetails = await desk.locator(".timeline li .meta").allInnerTexts();
  seen.steps.push("english");
  console.log(JSON.stringify(seen));
} catch (err) {
  console.log(JSON.stringify({ ...seen, failedAt: step, error: String(err) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
