// What every page shares: sign-in wiring, API calls, money, the cart, Stripe.js and small DOM helpers.
import * as auth from "/static/auth.js";

export { auth };

function embedded(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : {};
}

export const pageConfig = { oidc: embedded("fusion-oidc"), stripe: embedded("fusion-stripe") };
auth.configure(pageConfig.oidc);

export const body = document.body;
export const resourceId = body.dataset.id || "";

/** An element with attributes and children (strings become text: data never becomes markup). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** The answer of the API as {status, ok, data}; `data` is the JSON body (or null). */
async function decode(response) {
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { message: `The shop answered ${response.status}. Please try again.` }; }
  }
  return { status: response.status, ok: response.ok, data, headers: response.headers };
}

/** A public read of the API (catalog, stock, campaigns, tracking): no token needed. */
export async function publicApi(path) {
  return decode(await fetch(path, { headers: { Accept: "application/json" } }));
}

/** A call as the signed-in user with `json` as its body (auth.fetchApi adds the token, sends JSON and signs in
 * again on a 401). */
export async function api(path, { json, ...options } = {}) {
  return decode(await auth.fetchApi(path, { ...options, body: json }));
}

/** POSTs `json` to `path` until the platform has heard of what it names: a 404 or 409 means "not yet", asked
 * again every half second up to `attempts` times while `waiting()` (called between tries) says to go on.
 * The API's last answer, or null when the attempts ran out or `waiting()` gave up. */
export async function postWhenReady(path, json, { attempts, waiting = async () => true }) {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const answer = await api(path, { method: "POST", json });
    // 409/404: not there yet; 503: being started, or a service briefly unavailable (it says to try again)
    if (![404, 409, 503].includes(answer.status)) return answer;
    if (!(await waiting())) return null;
    await sleep(500);
  }
  return null;
}

/** The message an API error carries, for a person. */
export function problem(answer, fallback = "Something went wrong. Please try again.") {
  return (answer && answer.data && answer.data.message) || fallback;
}

export function money(amount, currency) {
  const value = Number(amount);
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency}`;
  }
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

export function shortId(id) {
  return String(id).slice(0, 8).toUpperCase();
}

export function statusBadge(status, attrs = {}) {
  return el("span", { class: `status ${status}`, ...attrs }, String(status).replace("_", " "));
}

/** A notice (role=alert for problems) put in `slot`, replacing what was there. */
export function notice(slot, kind, ...content) {
  if (!slot) return;
  slot.replaceChildren(el("div", { class: `notice ${kind}`, role: kind === "bad" ? "alert" : "status" }, ...content));
}

export function announce(message) {
  const toast = document.getElementById("toast");
  toast.textContent = "";
  window.setTimeout(() => { toast.textContent = message; }, 50);
  window.clearTimeout(announce.timer);
  announce.timer = window.setTimeout(() => { toast.textContent = ""; }, 5000);
}

export const sleep = (ms) => new Promise((resolve) => window.setTimeout(resolve, ms));

export function signInHere(staff = false) {
  auth.signIn({ staff, returnTo: location.pathname + location.search });
}

/** The header: who is signed in, sign-in and sign-out buttons, the cart's count. */
export function wireHeader({ staff = false } = {}) {
  const user = auth.user();
  for (const button of $$("[data-sign-in]")) {
    button.hidden = Boolean(user);
    button.addEventListener("click", () => signInHere(staff));
  }
  for (const button of $$("[data-sign-out]")) {
    button.hidden = !user;
    button.addEventListener("click", () => { auth.signOut(); location.assign(staff ? "/console" : "/"); });
  }
  const name = $("[data-user-name]");
  if (name && user) name.textContent = user.staff ? `Staff ${user.sub}` : `Hello, ${user.sub}`;
  showCartCount();
  return user;
}

// The cart: kept in localStorage, one line per product.
const CART_KEY = "fusion.cart";

export function cart() {
  try {
    const lines = JSON.parse(localStorage.getItem(CART_KEY) || "[]");
    return Array.isArray(lines) ? lines : [];
  } catch {
    return [];
  }
}

export function saveCart(lines) {
  localStorage.setItem(CART_KEY, JSON.stringify(lines.filter((line) => line.quantity > 0)));
  showCartCount();
}

export function addToCart(product, quantity) {
  const lines = cart();
  if (lines.length && lines[0].currency !== product.currency) {
    return `Your cart is in ${lines[0].currency}; ${product.name} is sold in ${product.currency}. Check out first.`;
  }
  const line = lines.find((item) => item.productId === product.id);
  if (line) {
    line.quantity += quantity;
    Object.assign(line, { price: product.price, name: product.name });
  } else {
    lines.push({ productId: product.id, sku: product.sku, name: product.name, price: product.price,
                 currency: product.currency, category: product.category, quantity });
  }
  saveCart(lines);
  return null;
}

export function cartTotal(lines) {
  // Summed in minor units (cents), so 0.1 + 0.2 is 0.30.
  const cents = lines.reduce((sum, line) => sum + Math.round(Number(line.price) * 100) * line.quantity, 0);
  return cents / 100;
}

function showCartCount() {
  const count = cart().reduce((sum, line) => sum + line.quantity, 0);
  for (const node of $$("[data-cart-count]")) node.textContent = String(count);
}

export function thumb(product, extraClass = "") {
  const known = ["apparel", "kitchen", "books"];
  const kind = known.includes(product.category) ? product.category : "other";
  const letters = String(product.name || "?").split(/\s+/).slice(0, 2).map((word) => word[0]).join("").toUpperCase();
  return el("div", { class: `thumb ${kind} ${extraClass}`.trim(), "aria-hidden": "true" }, letters);
}

// Stripe.js, loaded once from the address the page names (Stripe's, or locally localstripe's stand-in).
let stripeLoading = null;

export function loadStripe() {
  if (!stripeLoading) {
    stripeLoading = new Promise((resolve, reject) => {
      const script = el("script", { src: pageConfig.stripe.jsUrl });
      script.addEventListener("load", () => resolve(window.Stripe(pageConfig.stripe.publishableKey)));
      script.addEventListener("error", () => reject(new Error("Stripe.js could not be loaded")));
      document.head.append(script);
    });
  }
  return stripeLoading;
}

/** A card Element mounted in `container`; `confirm(clientSecret)` confirms a PaymentIntent with it. */
export async function cardForm(container) {
  const stripe = await loadStripe();
  const card = stripe.elements().create("card");
  card.mount(container);
  for (const input of container.querySelectorAll("input")) {
    // The stand-in's fields carry only placeholders: give them names a screen reader says.
    if (!input.getAttribute("aria-label")) input.setAttribute("aria-label", `Card ${input.placeholder.replace("_", " ")}`);
  }
  return {
    async confirm(clientSecret) {
      const result = await stripe.confirmCardPayment(clientSecret, { payment_method: { card } });
      // Already confirmed (a retry, or a platform that confirms test payments itself): that is a success.
      const intent = result.error && result.error.payment_intent;
      if (result.error && result.error.code === "payment_intent_unexpected_state" && intent
          && ["succeeded", "processing", "requires_capture"].includes(intent.status)) {
        return { paymentIntent: intent };
      }
      return result;
    },
  };
}

/** A fresh random id (an Idempotency-Key). */
export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID()
    : [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}
