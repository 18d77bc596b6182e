// What a failed answer of this server means, in words, for the playground (loaded before
// playground.js). Each error body shape of Venice's spec (§2.4, §3.1) is read for what a person
// at this page can act on; none is shown as raw JSON.
"use strict";

// `page` tells what the answer cannot: {hasKey, quoteUsd (the price shown, or null),
// label(field) (the form's label of a request field, or null)}. Answers {summary, lines}.
async function describeFailure(response, page) {
  const text = await response.text().catch(() => "");
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: its text is the message
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) body = {};
  const message = errorMessage(body) || text.trim().slice(0, 300) || response.statusText;
  const describe = FAILURES[response.status] || (response.status >= 500 ? serverFailed : other);
  const described = describe({ body, message, response, page });
  const lines = described.lines.filter(Boolean);
  if (!lines.length) lines.push(message || "The server gave no details.");
  return { summary: described.summary, lines };
}

// Venice's `error` is a string, or an object with a `message` (the provider content policy
// and the consent flow); some bodies put the words in `message` or `detail` instead.
function errorMessage(body) {
  const error = body.error;
  if (typeof error === "string" && typeof body.message === "string") {
    return /^[A-Z0-9_]+$/.test(error) ? body.message : error; // top-up puts a code in `error`
  }
  if (typeof error === "string") return error;
  if (error && typeof error.message === "string") return error.message;
  if (typeof body.message === "string") return body.message;
  if (typeof body.detail === "string") return body.detail;
  return "";
}

function usd(amount) {
  const number = Number(amount);
  if (!Number.isFinite(number)) return null;
  return number.toLocaleString("en-US", {
    style: "currency",
    currency: "USD",
    minimumFractionDigits: 2,
    maximumFractionDigits: 4,
  });
}

// A DetailedError's `issues`, each as `Field label: message`; a StandardError's message else.
function invalidRequest({ body, message, page }) {
  const issues = Array.isArray(body.issues) ? body.issues : [];
  const lines = issues.map((issue) => {
    const path = Array.isArray(issue.path) ? issue.path : [];
    const [field, ...rest] = path;
    const name = field === undefined ? "" : page.label(String(field)) || String(field);
    const where = [name, ...rest.map((part) => (Number.isInteger(part) ? `#${part + 1}` : part))]
      .filter((part) => part !== "")
      .join(" ");
    const what = String(issue.message || issue.code || "invalid");
    return where ? `${where}: ${what}` : what;
  });
  if (!lines.length) lines.push(message);
  if (typeof body.details === "string" && body.details !== message) lines.push(body.details);
  return { summary: "the request is not valid", lines };
}

function refusedKey({ message, page }) {
  if (!page.hasKey) return { summary: "an API key is needed", lines: ["Paste an API key above."] };
  return { summary: "the API key was refused", lines: [message, "Check the API key above."] };
}

// Three kinds of 402 (spec §2.4): (a) no credentials, an x402 challenge with payment terms;
// (b) a wallet below its minimum, with its balance; (c) a key whose account holds less than
// the job's price, a plain message about Venice's own site.
function paymentRequired({ body, message, page }) {
  if ("x402Version" in body || !page.hasKey) {
    return {
      summary: "an API key is needed",
      lines: ["Paste an API key above: this page pays with a key's balance, not a wallet."],
    };
  }
  if (/spend limit/i.test(message)) {
    return { summary: "the API key's spend limit is reached", lines: [message] };
  }
  const lines = [];
  const balance = usd(body.currentBalanceUsd);
  const minimum = usd(body.minimumBalanceUsd);
  if (balance) lines.push(`The balance is ${balance}${minimum ? `; ${minimum} is needed` : ""}.`);
  const price = usd(page.quoteUsd);
  if (price) lines.push(`This job costs ${price}; the key's account holds less.`);
  lines.push("The operator adds credit with `videoqueue credit --key KEY_ID AMOUNT_USD`.");
  return { summary: "Insufficient balance", lines };
}

function forbidden({ message }) {
  return { summary: "not allowed", lines: [message] };
}

function notFound({ message }) {
  return { summary: "not found", lines: [message] };
}

function conflict({ body, message }) {
  if (body.error?.code === "needs_consent" || "consent_flow" in body) {
    return {
      summary: "the model needs consent for the faces in its inputs",
      lines: [message, "The playground cannot give it: send `consents` through the API."],
    };
  }
  return { summary: "conflict", lines: [message] };
}

function tooLarge({ message }) {
  return {
    summary: "the request is too large",
    lines: [message, "Choose smaller files: they travel inside the request as data URLs."],
  };
}

// A content policy (our prompt rules, or the provider's answer on retrieve), or media out of
// range (a clip too long, an image too large).
function unprocessable({ body, message }) {
  const policy =
    "suggested_prompt" in body ||
    body.error?.type === "provider_content_policy" ||
    "credits_refunded" in body ||
    /content polic/i.test(message);
  if (!policy) return { summary: "an input was refused", lines: [message] };
  const lines = [message];
  if (typeof body.suggested_prompt === "string") {
    lines.push(`Suggested prompt: ${body.suggested_prompt}`);
  }
  const recommended = body.error?.recommended_model;
  if (recommended && !message.includes(recommended)) lines.push(`Try ${recommended} instead.`);
  const refunded = body.error?.credits_refunded ?? body.credits_refunded;
  if (refunded === true && !/refunded/i.test(message)) lines.push("The charge was refunded.");
  return { summary: "refused by the content policy", lines };
}

function tooManyRequests({ message, response }) {
  const seconds = Number(response.headers.get("Retry-After"));
  const wait = Number.isFinite(seconds) && seconds > 0 ? `Try again in ${seconds} s.` : "";
  return { summary: "too many requests", lines: [message, wait || "Wait a little, then retry."] };
}

function serverFailed({ body, message }) {
  const id = typeof body.request_id === "string" ? `Request id: ${body.request_id}.` : "";
  return { summary: "the server failed", lines: [message, id] };
}

function other({ message }) {
  return { summary: "refused", lines: [message] };
}

const FAILURES = {
  400: invalidRequest,
  401: refusedKey,
  402: paymentRequired,
  403: forbidden,
  404: notFound,
  409: conflict,
  413: tooLarge,
  422: unprocessable,
  429: tooManyRequests,
};
