// The shop's pages: each is a shell the server renders; this fills it from the API.
import { openCampaignFor, showCampaign } from "/static/campaign.js";
import {
  $, addToCart, api, auth, body, cardForm, cart, cartTotal, el, money, newKey, notice, postWhenReady, problem,
  publicApi, resourceId, saveCart, shortId, signInHere, sleep, statusBadge, thumb, when, wireHeader,
} from "/static/common.js";

const PAGE_SIZE = 12;
const FINAL = ["delivered", "failed", "cancelled"];
const CANCELLABLE = ["created", "confirmed", "paid"];
const POLL_MS = 1500;

function productCard(product, campaign) {
  const which = () => el("span", { class: "visually-hidden" }, `(${product.name})`);
  const add = el("button", { type: "button", class: "secondary", "data-add": product.sku }, "Add to cart", which());
  add.addEventListener("click", () => {
    const refused = addToCart(product, 1);
    if (refused) notice($("[data-result-summary]"), "warn", refused);
    else add.replaceChildren("Added ✓", which());
  });
  const link = `/shop/products/${product.id}`;
  return el("li", { class: "card", "data-product-card": product.sku },
    el("a", { href: link, tabindex: "-1", "aria-hidden": "true" }, thumb(product)),
    el("div", { class: "body" },
      el("span", { class: "meta" }, product.category || "other"),
      campaign ? el("a", { class: "deal", href: `/shop/campaigns/${campaign.id}` },
        `Group buy: ${Number(campaign.discountPercentage)}% off`) : "",
      el("h3", {}, el("a", { href: link }, product.name)),
      el("div", { class: "actions" },
        el("span", { class: "price" }, money(product.price, product.currency)),
        product.inventory > 0 ? add : el("span", { class: "availability out" }, "Sold out"))));
}

async function homePage() {
  const form = $("[data-search]");
  const query = new URLSearchParams(location.search);
  for (const name of ["q", "category", "minPrice", "maxPrice"]) {
    if (query.get(name)) form.elements[name].value = query.get(name);
  }
  const page = Math.max(1, Number(query.get("page") || "1"));
  const categories = await publicApi("/products?limit=200");
  if (categories.ok) {
    const names = [...new Set(categories.data.map((product) => product.category).filter(Boolean))].sort();
    const select = form.elements.category;
    for (const name of names) select.append(el("option", { value: name, selected: name === query.get("category") }, name));
  }
  const asked = new URLSearchParams();
  for (const name of ["q", "category", "minPrice", "maxPrice"]) {
    if (query.get(name)) asked.set(name, query.get(name));
  }
  asked.set("limit", String(PAGE_SIZE + 1));  // one more than shown tells whether there is a next page
  asked.set("offset", String((page - 1) * PAGE_SIZE));
  const summary = $("[data-result-summary]");
  const answer = await publicApi(`/products?${asked}`);
  if (!answer.ok) {
    notice(summary, "bad", problem(answer));
    return;
  }
  const products = answer.data.slice(0, PAGE_SIZE);
  const open = await publicApi("/campaigns?status=active&limit=200");
  const deals = new Map((open.ok ? open.data : []).map((campaign) => [campaign.productId, campaign]));
  $("[data-products]").replaceChildren(...products.map((product) => productCard(product, deals.get(product.id))));
  summary.textContent = products.length ? `${products.length} product${products.length === 1 ? "" : "s"} on page ${page}`
    : "No product matches. Try another search.";
  const link = (target) => {
    const next = new URLSearchParams(location.search);
    next.set("page", String(target));
    return `/?${next}`;
  };
  const prev = $("[data-prev]");
  const next = $("[data-next]");
  prev.hidden = page <= 1;
  prev.href = link(page - 1);
  next.hidden = answer.data.length <= PAGE_SIZE;
  next.href = link(page + 1);
  $("[data-page-label]").textContent = prev.hidden && next.hidden ? "" : `Page ${page}`;
}

function availabilityText(stock) {
  if (!stock || stock.available <= 0) return ["out", "Out of stock"];
  if (stock.available < 5) return ["low", `Only ${stock.available} left`];
  return ["in", `In stock (${stock.available} available)`];
}

async function productPage() {
  const answer = await publicApi(`/products/${resourceId}`);
  if (!answer.ok) {
    notice($("[data-error]"), "bad", answer.status === 404 ? "This product does not exist." : problem(answer));
    return;
  }
  const product = answer.data;
  document.title = `${product.name} · FusionCommerce`;
  $("[data-product]").hidden = false;
  $("[data-thumb]").replaceWith(thumb(product));
  $("[data-name]").textContent = product.name;
  $("[data-category]").textContent = product.category || "";
  $("[data-price]").textContent = money(product.price, product.currency);
  $("[data-description]").textContent = product.description || "";
  const stock = await publicApi(`/inventory/${encodeURIComponent(product.sku)}`);
  const [kind, text] = availabilityText(stock.ok ? stock.data : null);
  const availability = $("[data-availability]");
  availability.className = `availability ${kind}`;
  availability.textContent = text;
  const form = $("[data-add-form]");
  form.querySelector("[data-add]").disabled = kind === "out";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const quantity = Math.max(1, Number(form.elements.quantity.value) || 1);
    const refused = addToCart(product, quantity);
    notice(availability, refused ? "warn" : "ok", refused || `Added ${quantity} × ${product.name} to your cart. `,
      refused ? "" : el("a", { href: "/shop/cart" }, "View cart"));
  });
  const campaign = await openCampaignFor(product.id);
  if (campaign) {
    const slot = $("[data-campaign-slot]");
    showCampaign(slot, campaign.id);
    slot.append(el("p", {}, el("a", { href: `/shop/campaigns/${campaign.id}` }, "Open the group buy page")));
  }
}

async function campaignPage() {
  const answer = await publicApi(`/campaigns/${resourceId}`);
  if (!answer.ok) {
    notice($("[data-error]"), "bad", answer.status === 404 ? "This group buy does not exist." : problem(answer));
    return;
  }
  const product = await publicApi(`/products/${answer.data.productId}`);
  const name = product.ok ? product.data.name : answer.data.sku;
  $("[data-name]").textContent = `Group buy: ${name}`;
  document.title = `Group buy: ${name} · FusionCommerce`;
  showCampaign($("[data-campaign-slot]"), resourceId);
}

function cartPage() {
  const lines = cart();
  const tbody = $("[data-lines]");
  $("[data-empty]").hidden = lines.length > 0;
  $("[data-checkout]").hidden = lines.length === 0;
  tbody.replaceChildren(...lines.map((line) => {
    const quantity = el("input", { type: "number", min: 0, max: 99, value: line.quantity,
      "aria-label": `Quantity of ${line.name}`, "data-quantity": line.sku });
    quantity.addEventListener("change", () => {
      line.quantity = Math.max(0, Number(quantity.value) || 0);
      saveCart(lines);
      cartPage();
    });
    const remove = el("button", { type: "button", class: "secondary", "aria-label": `Remove ${line.name}` }, "Remove");
    remove.addEventListener("click", () => {
      line.quantity = 0;
      saveCart(lines);
      cartPage();
    });
    return el("tr", { "data-line": line.sku },
      el("td", {}, el("a", { href: `/shop/products/${line.productId}` }, line.name)),
      el("td", { class: "num" }, money(line.price, line.currency)),
      el("td", {}, quantity),
      el("td", { class: "num" }, money(cartTotal([line]), line.currency)),
      el("td", {}, remove));
  }));
  $("[data-subtotal]").textContent = lines.length ? money(cartTotal(lines), lines[0].currency) : "";
}

// Checkout: one Idempotency-Key per attempt (kept in sessionStorage with the cart it was made for), so a
// double click, a retry or a reload sends the same order, and the platform makes it once.
const ATTEMPT_KEY = "fusion.checkout";

function attemptFor(lines) {
  const fingerprint = JSON.stringify(lines.map((line) => [line.sku, line.quantity, line.price]));
  let attempt = null;
  try { attempt = JSON.parse(sessionStorage.getItem(ATTEMPT_KEY) || "null"); } catch { attempt = null; }
  if (!attempt || attempt.fingerprint !== fingerprint) {
    attempt = { key: newKey(), fingerprint };
    sessionStorage.setItem(ATTEMPT_KEY, JSON.stringify(attempt));
  }
  return attempt;
}

function forgetAttempt() {
  sessionStorage.removeItem(ATTEMPT_KEY);
}

async function refreshPrice(lines, sku) {
  // The catalog's price now: the cart line takes it, the shopper sees it before paying.
  const answer = await publicApi(`/products?sku=${encodeURIComponent(sku)}`);
  const product = answer.ok && answer.data[0];
  const line = lines.find((item) => item.sku === sku);
  if (!product || !line) return null;
  const before = line.price;
  line.price = product.price;
  saveCart(lines);
  return { name: line.name, before, after: product.price, currency: product.currency };
}

async function paymentFor(orderId, progress) {
  // The order can be paid once its stock is reserved: until then POST /payments answers 409 order_not_payable
  // (or 404 while the payments service has not yet heard of the order at all).
  let ended = null; // the order, when it failed or was cancelled while waiting
  const answer = await postWhenReady("/payments", { orderId }, {
    attempts: 40,
    async waiting() {
      const order = await api(`/orders/${orderId}`);
      if (order.ok && ["failed", "cancelled"].includes(order.data.status)) {
        ended = order.data;
        return false;
      }
      progress.textContent = "Reserving your items…";
      return true;
    },
  });
  if (ended) return { error: ended.statusReason || `The order was ${ended.status}.`, order: ended };
  if (!answer) return { error: "Your items could not be reserved in time. Please try again." };
  return answer.ok ? { payment: answer.data } : { error: problem(answer) };
}

async function checkoutPage() {
  const lines = cart();
  const slot = $("[data-notice]");
  $("[data-lines]").replaceChildren(...lines.map((line) =>
    el("li", {}, `${line.quantity} × ${line.name} — ${money(cartTotal([line]), line.currency)}`)));
  $("[data-total]").textContent = lines.length ? money(cartTotal(lines), lines[0].currency) : "";
  if (!lines.length) {
    notice(slot, "info", "Your cart is empty. ", el("a", { href: "/" }, "Go shopping"));
    return;
  }
  if (!auth.user()) {
    $("[data-need-sign-in]").hidden = false;
    return;
  }
  const form = $("[data-pay-form]");
  form.hidden = false;
  const card = await cardForm($("#card-element"));
  const button = $("[data-pay]");
  const progress = $("[data-progress]");
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;  // a second click while the first is on its way
    busy = true;
    button.disabled = true;
    try {
      await placeAndPay(cart(), card, slot, progress);
    } finally {
      busy = false;
      button.disabled = false;
    }
  });
}

async function placeAndPay(lines, card, slot, progress) {
  const attempt = attemptFor(lines);
  progress.textContent = "Placing your order…";
  const placed = await api("/orders", {
    method: "POST", headers: { "Idempotency-Key": attempt.key },
    json: { currency: lines[0].currency, items: lines.map((line) => ({ sku: line.sku, quantity: line.quantity, price: line.price })) },
  });
  if (!placed.ok) {
    progress.textContent = "";
    const index = ((placed.data && placed.data.field) || "").match(/^items\[(\d+)\]/);
    const line = index && lines[Number(index[1])];
    if (placed.status === 422 && placed.data.error === "price_mismatch" && line) {
      const changed = await refreshPrice(lines, line.sku);
      forgetAttempt();
      if (changed) {
        notice(slot, "warn", `The price of ${changed.name} changed from ${money(changed.before, changed.currency)} to `,
          el("strong", { "data-new-price": "" }, money(changed.after, changed.currency)),
          ". Your cart has the new price; check the total and place the order again.");
        await checkoutPage.refresh();
        return;
      }
    }
    notice(slot, "bad", problem(placed));
    return;
  }
  const order = placed.data;
  const paying = await paymentFor(order.id, progress);
  if (paying.error) {
    progress.textContent = "";
    forgetAttempt();
    notice(slot, "bad", paying.error, " ", el("a", { href: `/shop/orders/${order.id}` }, "See the order"));
    return;
  }
  const { payment } = paying;
  if (payment.status === "failed") {  // declined before the card form was used (a test card chosen by the platform)
    progress.textContent = "";
    forgetAttempt();
    notice(slot, "bad", el("strong", {}, "Your card was declined: "), payment.failureReason || "the payment failed.",
      " Nothing was charged and the items went back on the shelf.");
    return;
  }
  if (payment.clientSecret && !["succeeded", "processing"].includes(payment.status)) {
    progress.textContent = "Confirming your card…";
    const result = await card.confirm(payment.clientSecret);
    if (result.error) {
      progress.textContent = "";
      forgetAttempt();
      notice(slot, "bad", el("strong", {}, "Your card was declined: "), result.error.message || String(result.error),
        " Nothing was charged and the items went back on the shelf. Try another card.");
      return;
    }
  }
  forgetAttempt();
  saveCart([]);
  location.assign(`/shop/orders/${order.id}?placed=1`);
}
checkoutPage.refresh = async () => {
  const lines = cart();
  $("[data-lines]").replaceChildren(...lines.map((line) =>
    el("li", {}, `${line.quantity} × ${line.name} — ${money(cartTotal([line]), line.currency)}`)));
  $("[data-total]").textContent = lines.length ? money(cartTotal(lines), lines[0].currency) : "";
};

async function ordersPage() {
  if (!auth.user()) {
    $("[data-need-sign-in]").hidden = false;
    return;
  }
  const answer = await api("/orders?limit=50");
  if (!answer.ok) {
    notice($("[data-orders]"), "bad", problem(answer));
    return;
  }
  const orders = [...answer.data].reverse();  // newest first
  $("[data-empty]").hidden = orders.length > 0;
  $("[data-orders]").replaceChildren(...orders.map((order) => el("li", {},
    el("a", { href: `/shop/orders/${order.id}`, "data-order": order.id },
      el("span", {}, el("strong", {}, `Order ${shortId(order.id)}`), " · ", when(order.createdAt),
        order.campaignId ? " · group buy" : ""),
      el("span", {}, statusBadge(order.status), " ", el("strong", {}, money(order.total, order.currency)))))));
}

async function orderPage() {
  if (!auth.user()) {
    $("[data-need-sign-in]").hidden = false;
    return;
  }
  const slot = $("[data-notice]");
  if (new URLSearchParams(location.search).get("placed")) notice(slot, "ok", "Thank you! Your order is placed.");
  let seen = 0;
  let shipment = null;
  const cancel = $("[data-cancel]");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    const answer = await api(`/orders/${resourceId}/cancel`, { method: "POST", json: {} });
    notice(slot, answer.ok ? "ok" : "bad", answer.ok ? "The order is cancelled. Anything paid is refunded." : problem(answer));
    cancel.disabled = false;
  });
  for (;;) {
    const answer = await api(`/orders/${resourceId}`);
    if (!answer.ok) {
      notice($("[data-error]"), "bad", answer.status === 404 ? "There is no such order in your account." : problem(answer));
      $("[data-order]").hidden = true;
      return;
    }
    const order = answer.data;
    $("[data-order]").hidden = false;
    $("[data-order-number]").textContent = shortId(order.id);
    const status = $("[data-status]");
    if (status.textContent !== order.status) {
      status.className = `status ${order.status}`;
      status.textContent = order.status;
    }
    $("[data-status-reason]").textContent = order.statusReason || "";
    const names = await productNames(order.items.map((item) => item.sku));
    $("[data-lines]").replaceChildren(...order.items.map((item) => el("tr", {},
      el("td", {}, names.get(item.sku) || item.sku, el("br"), el("span", { class: "hint" }, item.sku)),
      el("td", {}, String(item.quantity)), el("td", { class: "num" }, money(item.price, order.currency)))));
    $("[data-total]").textContent = money(order.total, order.currency);
    cancel.hidden = !CANCELLABLE.includes(order.status);
    const history = $("[data-history]");
    for (const change of order.history.slice(seen)) {
      history.append(el("li", { "data-history-status": change.status },
        el("strong", {}, change.status), change.reason ? ` — ${change.reason}` : "", el("time", { datetime: change.at }, when(change.at))));
    }
    seen = order.history.length;
    if (["shipped", "delivered"].includes(order.status)) shipment = await showTracking(order, shipment);
    if (FINAL.includes(order.status) && (order.status !== "delivered" || shipment)) return;
    await sleep(POLL_MS);
  }
}

// Product names by sku, asked of the catalog once per page.
const knownNames = new Map();

async function productNames(skus) {
  await Promise.all(skus.filter((sku) => !knownNames.has(sku)).map(async (sku) => {
    const answer = await publicApi(`/products?sku=${encodeURIComponent(sku)}`);
    knownNames.set(sku, answer.ok && answer.data[0] ? answer.data[0].name : sku);
  }));
  return knownNames;
}

async function showTracking(order, known) {
  let shipment = known;
  if (!shipment) {
    const answer = await api(`/shipments?orderId=${encodeURIComponent(order.id)}`);
    if (!answer.ok || !answer.data.length) return null;
    [shipment] = answer.data;
  }
  const tracking = await publicApi(`/tracking/${encodeURIComponent(shipment.trackingNumber)}`);
  if (!tracking.ok) return shipment;
  $("[data-tracking]").hidden = false;
  $("[data-carrier]").textContent = tracking.data.carrier;
  $("[data-tracking-number]").textContent = tracking.data.trackingNumber;
  const badge = $("[data-shipment-status]");
  badge.className = `status ${tracking.data.status}`;
  badge.textContent = tracking.data.status.replace("_", " ");
  const scans = $("[data-scans]");
  if (scans.children.length !== tracking.data.history.length) {
    scans.replaceChildren(...tracking.data.history.map((scan) => el("li", { "data-scan": scan.status },
      el("strong", {}, scan.description), scan.location ? ` — ${scan.location}` : "",
      el("time", { datetime: scan.at }, when(scan.at)))));
  }
  return shipment;
}

async function callbackPage() {
  const slot = $("[data-callback]");
  try {
    const returnTo = await auth.handleCallback();
    location.replace(returnTo && returnTo.startsWith("/") && !returnTo.startsWith("//") ? returnTo : "/");
  } catch (error) {
    slot.className = "notice bad";
    slot.setAttribute("role", "alert");
    slot.replaceChildren(`Signing in failed: ${error.message || error}. `, el("a", { href: "/" }, "Back to the shop"));
  }
}

const PAGES = {
  home: homePage, product: productPage, campaign: campaignPage, cart: cartPage, checkout: checkoutPage,
  orders: ordersPage, order: orderPage, callback: callbackPage, not_found: () => {},
};

if (body.dataset.page !== "callback") wireHeader();
(PAGES[body.dataset.page] || (() => {}))();
