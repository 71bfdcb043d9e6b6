// The office's journey through the web console in a real chromium (Debian's), driven by
// playwright-core. Run by scripts/browser_test.sh, which starts the services, a worker,
// bank-sim and `salur api`, and passes what it made in the environment:
//   BASE            the console's URL
//   MAKER_LOGIN / MAKER_OTP, CHECKER_LOGIN / CHECKER_OTP   people and one-time passwords
//   OTHER_LOGIN / OTHER_OTP   a maker of another office
//   CSV             the batch file to upload (`salur demo --write-batch`); ROWS and BLOCKED: its
//                   rows, and those blocked; EXPECTED: the generator's records per blocked reason
//                   (JSON); CORRECTIONS: the office's corrections of the blocked records
//   SHOTS           where screenshots go (1366x768)
//   PYTHON, WORK    a python with openpyxl (fills in the workbook), a scratch directory
//   AUDITOR_LOGIN / AUDITOR_OTP   an auditor (reads the bank reconciliations)
//   BIN             salur (bank-sim's statement of the day, `salur reconcile`)
// Exits non-zero on the first failure, saying which step failed.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");
const { spawnSync } = require("child_process");

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env("BASE");
const ROWS = Number(env("ROWS"));
const BLOCKED = Number(env("BLOCKED"));
const SHOTS = env("SHOTS");
const EXPECTED = JSON.parse(env("EXPECTED"));
const CORRECTIONS = env("CORRECTIONS");
const NEW_PASSWORD = "kupang-sehat-2026";

let step = "start";
const started = Date.now();
function log(msg) {
  console.log(`browser: ${((Date.now() - started) / 1000).toFixed(1)} s  ${msg}`);
}
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

async function signInFirstTime(page, login, otp) {
  await page.goto(`${BASE}/`);
  check(page.url().endsWith("/sign-in"), `not signed in, / goes to the sign-in page (${page.url()})`);
  await page.fill("#login", login);
  await page.fill("#password", otp);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/password$/);
  await page.fill("#current", otp);
  await page.fill("#new", NEW_PASSWORD);
  await page.fill("#repeat", NEW_PASSWORD);
  await page.click("form[action='/password'] button[type=submit]");
  await page.waitForURL(/\/batches/);
}

/// The number shown in a funnel step.
async function funnel(page, id) {
  return Number(await page.textContent(`#${id} strong`));
}

/// Waits until the batch page's progress says nothing is in flight (the script refreshes it).
async function settled(page, timeoutMs) {
  await page.waitForSelector("#progress[data-done='1']", { timeout: timeoutMs });
}

/// The checker approves the batch's payment list of `records` records.
async function approve(page, batchUrl, records, shotName) {
  await page.goto(`${batchUrl}/approval`);
  const summary = await page.textContent("#approval-summary");
  check(summary.includes(`: ${records} `), `${records} records to approve (${summary})`);
  if (shotName) await shot(page, shotName);
  await page.click("#approve");
  await page.waitForSelector(".ok");
  check((await page.textContent(".ok")).includes("disetujui"), "approved");
  log(`the checker approved ${records} records`);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const viewport = { width: 1366, height: 768 };
  const maker = await (await browser.newContext({ viewport, acceptDownloads: true })).newPage();
  const checker = await (await browser.newContext({ viewport })).newPage();
  const other = await (await browser.newContext({ viewport })).newPage();
  const auditor = await (await browser.newContext({ viewport })).newPage();
  try {
    step = "sign in as the maker (one-time password, then their own)";
    await maker.goto(`${BASE}/sign-in`);
    await shot(maker, "01-sign-in");
    // A wrong password first: refused, in Indonesian.
    await maker.fill("#login", env("MAKER_LOGIN"));
    await maker.fill("#password", "not-the-password");
    await maker.click("button[type=submit]");
    await maker.waitForURL(/refused=1/);
    check((await maker.textContent("main")).includes("kata sandi salah"), "a wrong password is refused in words");
    await signInFirstTime(maker, env("MAKER_LOGIN"), env("MAKER_OTP"));
    log("maker signed in");

    step = "upload the CSV";
    await maker.click("a[href='/upload']");
    await maker.selectOption("#program", "BPNT");
    await maker.fill("#period", "2026-Q4");
    await maker.setInputFiles("#file", env("CSV"));
    await shot(maker, "02-upload");
    await maker.click("form[action='/upload'] button[type=submit]");
    await maker.waitForURL(/\/batches\/[0-9a-f-]{36}/);
    const batchUrl = maker.url().split("?")[0];
    const batchId = batchUrl.split("/").pop();
    log(`batch ${batchId} uploaded`);

    step = "watch the batch's progress until nothing is in flight";
    await settled(maker, 600000);
    log("the batch settled (the page refreshed itself)");
    check((await funnel(maker, "f-received")) === ROWS, `received ${ROWS}`);
    const mainText = await maker.textContent("main");
    check(mainText.includes("Nama ibu kandung belum diisi"), "blocked records grouped by reason, in words");
    // The reasons as the page groups them: exactly what the generator put in, per reason.
    const shown = await maker.$$eval("#reasons tbody tr", (trs) =>
      trs.map((tr) => [tr.dataset.reason, Number(tr.querySelector("td.num").textContent)]),
    );
    const shownText = shown.map(([code, n]) => `${code} ${n}`).join(", ");
    const want = Object.entries(EXPECTED).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    check(shown.length >= 5, `several distinct reasons (shown: ${shownText})`);
    check(JSON.stringify(shown) === JSON.stringify(want), `the reasons and counts the generator put in, most frequent first (shown: ${shownText}; expected: ${JSON.stringify(want)})`);
    const blockedTotal = Number(await maker.textContent("#blocked-total"));
    check(blockedTotal === BLOCKED, `${BLOCKED} blocked records in all (shown ${blockedTotal})`);
    const counted = shown.reduce((n, [, c]) => n + c, 0);
    // A record with two problems is counted under both: the counts add up to the blocked
    // records plus those with a second problem, and the page says so.
    check(counted >= BLOCKED, `the counts cover every blocked record (${counted})`);
    check((counted > BLOCKED) === (await maker.isVisible("text=dihitung pada setiap alasannya")), "the note on records counted twice");
    log(`blocked ${blockedTotal} by reason (${counted - blockedTotal} records with two problems): ${shownText}`);
    await shot(maker, "03-batch");
    await maker.evaluate(() => document.querySelector("#reasons").previousElementSibling.scrollIntoView());
    await shot(maker, "03a-batch-reasons");
    await maker.goto(`${BASE}/batches`);
    check((await maker.textContent("main")).includes("penerima.csv"), "the batch is listed");
    await shot(maker, "04-batches");

    step = "a maker has no approve button, and a forged approval is refused";
    await maker.goto(`${batchUrl}/approval`);
    check((await maker.locator("#approve").count()) === 0, "no approve button for a maker");
    const csrf = await maker.getAttribute("input[name=csrf]", "value");
    let forged = await maker.request.post(`${batchUrl}/approval`, {
      form: { csrf, decision: "approve", list_hash: "0".repeat(64) },
      maxRedirects: 0,
    });
    check(forged.status() === 403, `a maker's approval post is refused (got ${forged.status()})`);
    forged = await maker.request.post(`${batchUrl}/replay`, { form: {}, maxRedirects: 0 });
    check(forged.status() === 403, `a form posted without its CSRF token is refused (got ${forged.status()})`);

    step = "another office cannot open the batch by URL";
    await signInFirstTime(other, env("OTHER_LOGIN"), env("OTHER_OTP"));
    const r404 = await other.goto(batchUrl);
    check(r404.status() === 404, `404 for another office's batch (got ${r404.status()})`);
    check((await other.textContent("main")).includes("Halaman tidak ditemukan"), "the 404 page in words");
    check(!(await other.textContent("main")).includes("penerima.csv"), "nothing of the batch shown");

    step = "five wrong passwords slow the sign-in down";
    const signInPage = await other.request.get(`${BASE}/sign-in`);
    const token = /name="csrf" value="([0-9a-f]+)"/.exec(await signInPage.text())[1];
    for (let i = 0; i < 5; i++) {
      const refused = await other.request.post(`${BASE}/sign-in`, {
        form: { login: "nobody", password: "x", csrf: token },
        maxRedirects: 0,
      });
      check(refused.headers()["location"] === "/sign-in?refused=1", "a wrong password is refused");
    }
    const t0 = Date.now();
    await other.request.post(`${BASE}/sign-in`, { form: { login: "nobody", password: "x", csrf: token }, maxRedirects: 0 });
    const slowed = Date.now() - t0;
    check(slowed >= 1000, `the sixth wrong sign-in waits (took ${slowed} ms)`);
    log(`isolation, CSRF and a forged approval refused; a sixth wrong sign-in took ${slowed} ms`);

    step = "approve as the checker, in a second browser session";
    await signInFirstTime(checker, env("CHECKER_LOGIN"), env("CHECKER_OTP"));
    await approve(checker, batchUrl, ROWS - BLOCKED, "06-approval");

    step = "see the payments go out";
    await maker.goto(batchUrl);
    await settled(maker, 600000);
    let disbursed = await funnel(maker, "f-disbursed");
    check(disbursed === ROWS - BLOCKED, `disbursed ${ROWS - BLOCKED} (shown ${disbursed})`);
    log(`${disbursed} disbursed, ${BLOCKED} blocked`);

    step = "open a blocked record and fix it";
    await maker.goto(`${batchUrl}?state=blocked&reason=MOTHER_NAME_MISSING`);
    await shot(maker, "03b-batch-blocked");
    const first = maker.locator("#records ~ table tbody tr a").first();
    const fixedRow = Number((await first.textContent()).trim());
    const show = spawnSync(env("PYTHON"), [path.join(__dirname, "fill_fixes.py"), "--show", CORRECTIONS, String(fixedRow)], { encoding: "utf8" });
    check(show.status === 0, `the correction of row ${fixedRow}: ${show.stderr}`);
    const correction = JSON.parse(show.stdout);
    check("mother_name" in correction, `row ${fixedRow}'s correction gives the mother's name`);
    await first.click();
    await maker.waitForURL(/\/records\/\d+/);
    check(await maker.isVisible("tr.problem"), "the field with a problem is highlighted");
    check((await maker.textContent("main")).includes("Nama ibu kandung belum diisi"), "the reason in words");
    await shot(maker, "05-record");
    // Every field the office's files correct for this record (a second problem too).
    for (const [key, value] of Object.entries(correction)) await maker.fill(`#fix-${key}`, value);
    await maker.click("form[action$='/fix'] button[type=submit]");
    await maker.waitForSelector(".ok");
    check((await maker.textContent(".ok")).includes("siap dikirim ulang"), "the fixed record is ready");

    step = "replay it";
    await maker.click("form[action$='/replay'] button[type=submit]");
    await maker.waitForSelector(".ok");
    check((await maker.textContent(".ok")).includes("1"), "one record replayed");
    await maker.goto(batchUrl);
    await settled(maker, 600000);
    log("the record fixed on screen went through again");

    step = "download the blocked records' workbook and fill it in";
    const [download] = await Promise.all([
      maker.waitForEvent("download"),
      maker.click(`a[href='/batches/${batchId}/fixes.xlsx']`),
    ]);
    const xlsx = path.join(env("WORK"), "perbaikan.xlsx");
    await download.saveAs(xlsx);
    const fill = (mode) => {
      const out = path.join(env("WORK"), `perbaikan-${mode}.xlsx`);
      const r = spawnSync(env("PYTHON"), [path.join(__dirname, "fill_fixes.py"), xlsx, out, CORRECTIONS, mode], { encoding: "utf8" });
      check(r.status === 0, `fill_fixes.py ${mode}: ${r.stderr}`);
      return [out, JSON.parse(r.stdout)];
    };
    const [bad] = fill("bad");
    const [good, filled] = fill("good");
    check(filled.rows === BLOCKED - 1, `${BLOCKED - 1} records in the workbook, each with its correction (filled ${filled.rows})`);
    check(JSON.stringify(filled.unused) === JSON.stringify([fixedRow]), `every correction used but the record fixed on screen (unused: ${filled.unused})`);
    log(`the workbook downloaded and filled in from the office's corrections (${filled.rows} rows, ${filled.cells} cells)`);

    step = "upload the workbook with a wrong cell: refused by row and column";
    await maker.goto(batchUrl);
    await maker.setInputFiles("#fixes", bad);
    await maker.click("form[action$='/fixes'] button[type=submit]");
    await maker.waitForSelector(".error");
    const refusal = await maker.textContent(".error");
    check(refusal.includes("tidak ada yang diubah") && /baris 2, kolom P/.test(refusal), `refused at row 2, column P: ${refusal}`);
    await shot(maker, "08-fixes-refused");
    await maker.goto(batchUrl);
    check((await funnel(maker, "f-disbursed")) === ROWS - BLOCKED, "nothing changed");

    step = "upload the filled workbook, replay on confirmation";
    await maker.setInputFiles("#fixes", good);
    await maker.click("form[action$='/fixes'] button[type=submit]");
    await maker.waitForSelector("#fixes-applied");
    const applied = await maker.textContent("#fixes-applied");
    check(applied.includes(`: ${BLOCKED - 1} `) && applied.trim().endsWith(`: ${BLOCKED - 1}`), `every fix applied, every record ready (${applied})`);
    await shot(maker, "09-fixes-applied");
    await maker.click("#confirm-replay");
    await maker.waitForSelector(".ok");
    await maker.goto(batchUrl);
    await settled(maker, 600000);
    log("the workbook's fixes applied and replayed");

    step = "approve the new list, see every record paid";
    await approve(checker, batchUrl, BLOCKED, null);
    await maker.goto(batchUrl);
    await settled(maker, 600000);
    disbursed = await funnel(maker, "f-disbursed");
    check(disbursed === ROWS, `disbursed ${ROWS} (shown ${disbursed})`);
    await shot(maker, "07-batch-disbursed");

    step = "reconcile bank 002's statement of the day: returns and two exceptions, read-only pages";
    const salur = (args) => {
      const r = spawnSync(env("BIN"), args, { encoding: "utf8" });
      check(r.status === 0, `salur ${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    const statement = path.join(env("WORK"), "002.csv");
    salur(["bank-sim", "statement", "--bank", "002", "--format", "csv", "--return-rate", ROWS >= 1000 ? "0.01" : "0.1", "--seed", "3", "-o", statement]);
    const edited = path.join(env("WORK"), "002-edited.csv");
    const ed = spawnSync(env("PYTHON"), [path.join(__dirname, "edit_statement.py"), statement, edited], { encoding: "utf8" });
    check(ed.status === 0, `edit_statement.py: ${ed.stderr}`);
    const report = JSON.parse(salur(["reconcile", edited, "--bank", "002", "--person", "Rina Auditor", "--json"]));
    check(report.exception_count === 2 && report.exceptions_by_kind.missing === 1 && report.exceptions_by_kind.amount_mismatch === 1,
      `exactly the two exceptions made (${JSON.stringify(report.exceptions_by_kind)})`);
    check(report.returned > 0, `some payments came back (${report.returned})`);
    log(`bank 002's statement reconciled: ${report.matched} matched, ${report.returned} returned, 2 exceptions`);
    await maker.goto(batchUrl);
    const section = await maker.textContent("#reconciliation");
    check(section.includes("Tersalurkan di Salur, tidak ada di rekening koran") && section.includes("Nominal berbeda dengan transfer"), `the batch's exceptions in words: ${section}`);
    const returnedShown = Number(await maker.textContent("#returned strong"));
    check(returnedShown === report.returned, `${report.returned} returned records on the batch page (shown ${returnedShown})`);
    check((await maker.locator("a[href='/reconciliations']").count()) === 0, "no reconciliation pages for an office's maker");
    await maker.evaluate(() => document.querySelector("#reconciliation").scrollIntoView());
    await shot(maker, "10-batch-reconciliation");
    await signInFirstTime(auditor, env("AUDITOR_LOGIN"), env("AUDITOR_OTP"));
    await auditor.click("a[href='/reconciliations']");
    await auditor.waitForURL(/\/reconciliations$/);
    await shot(auditor, "11-reconciliations");
    await auditor.click(`a[href='/reconciliations/${report.id}']`);
    await auditor.waitForURL(/\/reconciliations\/[0-9a-f-]{36}$/);
    check(Number(await auditor.textContent("#exception-count")) === 2, "two exceptions listed");
    check((await auditor.locator("#exceptions tbody tr").count()) === 2, "each exception on a row");
    await shot(auditor, "12-reconciliation");
    log("the reconciliation read on the batch page and by an auditor");

    log(`journey done: ${disbursed} of ${ROWS} disbursed, then ${report.returned} came back on bank 002's statement`);
    await browser.close();
  } catch (e) {
    console.error(`browser: FAILED at step "${step}": ${e.message}`);
    try {
      await shot(maker, "failure-maker");
      await shot(checker, "failure-checker");
      await shot(auditor, "failure-auditor");
    } catch (_) {}
    await browser.close();
    process.exit(1);
  }
})();
