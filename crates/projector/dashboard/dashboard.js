// The operations dashboard's script: reads the JSON routes of the projector's HTTP
// API (same origin) and draws them. Money is shown as the API's decimal strings
// (digits grouped by thousands, nothing rounded or added up here); only the chart's bar
// heights are made from numbers.
"use strict";

const REFRESH_MS = 2000;
const QUEUE_ROWS_MAX = 200;
const BUCKETS = ["M1", "M2", "M3", "NPL"];
const FIGURES = [
  ["outstanding_principal", "outstanding principal"],
  ["active_loans", "active loans"],
  ["borrowers", "borrowers (ever lent to)"],
  ["loans_disbursed", "loans disbursed"],
  ["amount_disbursed", "amount disbursed"],
  ["interest_income", "interest income"],
  ["penalty_income", "penalty income"],
  ["written_off_principal", "written-off principal"],
  ["npl_ratio", "NPL ratio"],
  ["settled_loans", "settled loans"],
  ["average_days_outstanding", "avg days a settled loan ran"],
];

// What the page shows now, for a person's console and for the browser test.
const state = { portfolio: null, overdue: null, refreshes: 0, search: null };
window.dashboard = state;

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

// "1234567.80" -> "1,234,567.80": grouping only, the digits are the API's.
function grouped(value) {
  if (typeof value !== "string" || !/^-?[0-9]+(\.[0-9]+)?$/.test(value)) return String(value);
  const [int, frac] = value.split(".");
  const sign = int.startsWith("-") ? "-" : "";
  const digits = int.replace("-", "").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return sign + digits + (frac === undefined ? "" : "." + frac);
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  let body;
  try {
    body = await response.json();
  } catch (e) {
    body = { error: `HTTP ${response.status}, not JSON` };
  }
  return { status: response.status, body };
}

function banner(message) {
  const node = document.getElementById("banner");
  node.hidden = !message;
  node.textContent = message || "";
}

function loanLink(id) {
  return el("a", { href: "#q=" + encodeURIComponent(id), "data-loan": id }, id);
}

// ---------------------------------------------------------------- portfolio

function showFigures(p) {
  const list = document.getElementById("figures");
  list.replaceChildren(
    ...FIGURES.map(([key, label]) => el("div", {}, el("dt", {}, label), el("dd", { "data-figure": key, title: key }, grouped(p[key]))))
  );
  document.getElementById("business-date").textContent = p.business_date || "not opened";
  document.getElementById("npl-ratio").textContent = p.npl_ratio;
}

function showBuckets(p) {
  const amounts = BUCKETS.map((b) => Number(p.overdue_principal[b]));
  const max = Math.max(...amounts, 1);
  const selected = document.getElementById("queue-bucket").value;
  document.getElementById("buckets").replaceChildren(
    ...BUCKETS.map((b, i) =>
      el(
        "div",
        { class: "bucket" + (selected === b ? " selected" : ""), onclick: () => selectBucket(selected === b ? "" : b) },
        el("span", { class: "name" }, b),
        el("div", { class: "bar" }, el("div", { class: "fill " + b, style: `width: ${(100 * amounts[i]) / max}%` })),
        el("span", { class: "value", "data-bucket": b }, grouped(p.overdue_principal[b]))
      )
    )
  );
}

function showIncome(days) {
  const box = document.getElementById("income-chart");
  const last = document.getElementById("income-last");
  if (!days.length) {
    box.replaceChildren(el("p", { class: "muted" }, "no day closed yet"));
    last.textContent = "";
    return;
  }
  const width = 720, height = 220, left = 64, bottom = 22, top = 8;
  const totals = days.map((d) => Number(d.interest) + Number(d.penalty));
  const max = Math.max(...totals, 0.01);
  const slot = (width - left - 4) / days.length;
  const bar = Math.max(1, slot * 0.8);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, "data-days": days.length });
  for (const fraction of [0, 0.5, 1]) {
    chart.append(svg("line", { class: "axis", x1: left, x2: width, y1: y(max * fraction), y2: y(max * fraction) }));
    chart.append(svg("text", { x: left - 6, y: y(max * fraction) + 4, "text-anchor": "end" }, (max * fraction).toFixed(0)));
  }
  days.forEach((d, i) => {
    const x = left + i * slot + (slot - bar) / 2;
    const interest = Number(d.interest), penalty = Number(d.penalty);
    const tip = `${d.date}: interest ${grouped(d.interest)}, penalty ${grouped(d.penalty)}`;
    const group = svg("g", { "data-date": d.date }, svg("title", {}, tip));
    group.append(svg("rect", { class: "interest", x, width: bar, y: y(interest), height: y(0) - y(interest) }));
    group.append(svg("rect", { class: "penalty", x, width: bar, y: y(interest + penalty), height: y(interest) - y(interest + penalty) }));
    chart.append(group);
  });
  const labelEvery = Math.max(1, Math.ceil(days.length / 6));
  days.forEach((d, i) => {
    if (i % labelEvery === 0 || i === days.length - 1) {
      const anchor = i === days.length - 1 ? "end" : i === 0 ? "start" : "middle";
      chart.append(svg("text", { x: left + i * slot + (anchor === "end" ? slot : anchor === "start" ? 0 : slot / 2), y: height - 6, "text-anchor": anchor }, d.date.slice(5)));
    }
  });
  box.replaceChildren(chart);
  const d = days[days.length - 1];
  last.textContent = `${days.length} days closed; last ${d.date}: interest ${grouped(d.interest)}, penalty ${grouped(d.penalty)}`;
}

// ---------------------------------------------------------------- overdue queue

function selectBucket(bucket) {
  document.getElementById("queue-bucket").value = bucket;
  if (state.portfolio) showBuckets(state.portfolio);
  refreshQueue();
}

async function refreshQueue() {
  const bucket = document.getElementById("queue-bucket").value;
  const { status, body } = await getJson("/v1/overdue" + (bucket ? "?bucket=" + bucket : ""));
  if (status !== 200) throw new Error(body.error || `HTTP ${status}`);
  if (bucket !== document.getElementById("queue-bucket").value) return; // changed meanwhile
  state.overdue = body;
  const rows = body.loans.slice(0, QUEUE_ROWS_MAX).map((l) =>
    el(
      "tr",
      { "data-loan": l.loan_id },
      el("td", {}, loanLink(l.loan_id)),
      el("td", {}, el("a", { href: "#q=" + encodeURIComponent(l.borrower_id) }, l.borrower_id)),
      el("td", {}, l.product),
      el("td", { class: "num" }, l.dpd),
      el("td", {}, l.bucket),
      el("td", { class: "num" }, grouped(l.principal_outstanding)),
      el("td", { class: "num" }, grouped(l.interest_owed)),
      el("td", { class: "num" }, grouped(l.penalty_owed)),
      el("td", {}, l.maturity_date)
    )
  );
  document.querySelector("#queue tbody").replaceChildren(...rows);
  const shown = body.count > QUEUE_ROWS_MAX ? ` (the first ${QUEUE_ROWS_MAX} shown)` : "";
  document.getElementById("queue-count").textContent = `${body.count} overdue loan${body.count === 1 ? "" : "s"}${shown}`;
}

// ---------------------------------------------------------------- search

const STATEMENT_COLUMNS = [
  ["date", "date"],
  ["kind", "entry"],
  ["reference", "reference"],
  ["principal_disbursed", "disbursed"],
  ["interest_charged", "interest"],
  ["penalty_charged", "penalty"],
  ["amount", "received"],
  ["penalty_paid", "to penalty"],
  ["interest_paid", "to interest"],
  ["principal_paid", "to principal"],
  ["principal_outstanding", "principal outst."],
  ["total_owed", "total owed"],
  ["dpd", "DPD"],
  ["bucket", "bucket"],
];

const TEXT_COLUMNS = new Set(["date", "kind", "reference", "bucket"]);

function summary(pairs) {
  return el("dl", { class: "summary" }, pairs.map(([label, value]) => el("div", {}, el("dt", {}, label), el("dd", {}, value))));
}

function showLoan(history, payoff) {
  const l = history.loan;
  const entries = history.entries;
  const table = el(
    "table",
    { id: "statement", "data-loan": l.loan_id },
    el("thead", {}, el("tr", {}, STATEMENT_COLUMNS.map(([key, label]) => el("th", { class: TEXT_COLUMNS.has(key) ? "" : "num" }, label)))),
    el(
      "tbody",
      {},
      entries.map((e) =>
        el(
          "tr",
          { class: e.kind === "ACCRUAL" ? "accrual" : "", "data-kind": e.kind },
          STATEMENT_COLUMNS.map(([key]) => {
            const value = e[key];
            return el("td", { class: TEXT_COLUMNS.has(key) ? "" : "num" }, value === null ? "" : grouped(value));
          })
        )
      )
    )
  );
  const pay = payoff
    ? el(
        "div",
        { class: "payoff", id: "payoff" },
        el("strong", {}, `Payoff on ${payoff.date}: ${grouped(payoff.total)}`),
        ` = penalty ${grouped(payoff.penalty)} + interest ${grouped(payoff.interest)} + principal ${grouped(payoff.principal)}`,
        payoff.settles ? " (settles the loan today)" : " (an inactive loan: paying it settles nothing)"
      )
    : null;
  return el(
    "div",
    { "data-result": "loan" },
    el("h3", {}, `Loan ${l.loan_id} `, el("span", { class: "pill " + l.status }, l.status), " of borrower ", el("a", { href: "#q=" + encodeURIComponent(l.borrower_id) }, l.borrower_id)),
    summary([
      ["product", l.product],
      ["principal", grouped(l.principal)],
      ["disbursed on", l.disbursed_on],
      ["maturity", l.maturity_date + (l.recalled ? " (recalled)" : "")],
      ["principal outstanding", grouped(l.principal_outstanding)],
      ["interest accrued / owed", `${grouped(l.interest_accrued)} / ${grouped(l.interest_owed)}`],
      ["penalty accrued / owed", `${grouped(l.penalty_accrued)} / ${grouped(l.penalty_owed)}`],
      ["DPD, bucket", `${l.dpd}, ${l.bucket}`],
      ["daily rate", l.daily_rate],
      ["overpayment", grouped(l.overpayment)],
      ["recovered", grouped(l.recovered)],
    ]),
    pay,
    el("h3", {}, `Statement: ${entries.length} entries, business date ${history.business_date}`),
    el("div", { class: "scroll" }, table)
  );
}

function showBorrower(b) {
  return el(
    "div",
    { "data-result": "borrower" },
    el("h3", {}, `Borrower ${b.borrower_id}`, b.blacklisted ? " · blacklisted" : "", b.malicious ? " · malicious" : "", b.warning ? " · risk warning" : ""),
    summary([
      ["credit line", grouped(b.credit_line)],
      ["outstanding principal", grouped(b.outstanding_principal)],
      ["score", b.score],
      ["on-time loans", b.on_time_loans],
      ["rewarded", b.rewarded ? "yes" : "no"],
    ]),
    el("h3", {}, `${b.loans.length} loan${b.loans.length === 1 ? "" : "s"}`),
    el(
      "div",
      { class: "scroll" },
      el(
        "table",
        { id: "borrower-loans" },
        el("thead", {}, el("tr", {}, ["loan", "status", "principal", "outstanding", "DPD", "bucket", "maturity"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          b.loans.map((l) =>
            el(
              "tr",
              {},
              el("td", {}, loanLink(l.loan_id)),
              el("td", {}, el("span", { class: "pill " + l.status }, l.status)),
              el("td", { class: "num" }, grouped(l.principal)),
              el("td", { class: "num" }, grouped(l.principal_outstanding)),
              el("td", { class: "num" }, l.dpd),
              el("td", {}, l.bucket),
              el("td", {}, l.maturity_date)
            )
          )
        )
      )
    )
  );
}

// A loan id first (its statement and payoff), else a borrower id.
async function search(id) {
  const result = document.getElementById("result");
  id = id.trim();
  if (!id) return;
  document.getElementById("search-id").value = id;
  result.replaceChildren(el("p", { class: "muted" }, `looking up ${id} …`));
  const path = encodeURIComponent(id);
  try {
    const history = await getJson(`/v1/loans/${path}/history`);
    if (history.status === 200) {
      const payoff = await getJson(`/v1/loans/${path}/payoff`);
      state.search = { kind: "loan", id, history: history.body };
      result.replaceChildren(showLoan(history.body, payoff.status === 200 ? payoff.body : null));
      return;
    }
    if (history.status !== 404) throw new Error(history.body.error || `HTTP ${history.status}`);
    const borrower = await getJson(`/v1/borrowers/${path}`);
    if (borrower.status === 200) {
      state.search = { kind: "borrower", id, borrower: borrower.body };
      result.replaceChildren(showBorrower(borrower.body));
      return;
    }
    if (borrower.status !== 404) throw new Error(borrower.body.error || `HTTP ${borrower.status}`);
    state.search = { kind: "none", id };
    result.replaceChildren(el("p", { class: "error", "data-result": "none" }, `No loan and no borrower has the id ${id}.`));
  } catch (e) {
    result.replaceChildren(el("p", { class: "error" }, `Looking up ${id} failed: ${e.message}`));
  }
}

function searchFromHash() {
  const match = location.hash.match(/^#q=(.*)$/);
  if (match) search(decodeURIComponent(match[1]));
}

// ---------------------------------------------------------------- refresh

async function refresh() {
  try {
    const { status, body } = await getJson("/v1/portfolio");
    if (status !== 200) throw new Error(body.error || `HTTP ${status}`);
    state.portfolio = body;
    showFigures(body);
    showBuckets(body);
    showIncome(body.income_by_day);
    await refreshQueue();
    state.refreshes += 1;
    banner("");
    document.getElementById("refreshed").textContent = "refreshed " + new Date().toLocaleTimeString();
  } catch (e) {
    banner(`The read models cannot be shown now: ${e.message}`);
  }
}

let timer = null;
function schedule() {
  clearTimeout(timer);
  if (document.getElementById("auto-refresh").checked) {
    timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, REFRESH_MS);
  }
}

document.getElementById("queue-bucket").addEventListener("change", () => selectBucket(document.getElementById("queue-bucket").value));
document.getElementById("auto-refresh").addEventListener("change", schedule);
document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = document.getElementById("search-id").value.trim();
  if (location.hash === "#q=" + encodeURIComponent(id)) search(id);
  else location.hash = "q=" + encodeURIComponent(id);
});
window.addEventListener("hashchange", searchFromHash);
refresh().then(schedule);
searchFromHash();
