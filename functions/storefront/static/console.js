// The staff console: each page shows only what the signed-in staff's scopes allow; the API enforces it too.
import {
  $, $$, api, auth, body, el, money, notice, problem, publicApi, shortId, statusBadge, when, wireHeader,
} from "/static/common.js";

const PAGE_SCOPE = {
  products: "catalog:write", orders: "orders:manage", campaigns: "campaigns:write",
  shipments: "shipping:manage", operations: "operations:manage",
};

const user = wireHeader({ staff: true });
const scopes = new Set((user && user.scopes) || []);
const can = (scope) => scopes.has(scope);
const slot = () => $("[data-notice]");

function button(label, onClick, attrs = {}) {
  const node = el("button", { type: "button", ...attrs }, label);
  node.addEventListener("click", async () => {
    node.disabled = true;
    try { await onClick(); } finally { node.disabled = false; }
  });
  return node;
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function report(answer, done) {
  notice(slot(), answer.ok ? "ok" : "bad", answer.ok ? done : problem(answer));
  return answer.ok;
}

// Products: the catalog with edit and stock forms; a new product is orderable at once.
async function productsPage() {
  const form = $("[data-create]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    const answer = await api("/products", { method: "POST", json: {
      sku: values.sku.trim(), name: values.name.trim(), description: values.description.trim() || null,
      price: Number(values.price), currency: values.currency.trim().toUpperCase(),
      inventory: Number(values.inventory), category: values.category.trim() || null,
    } });
    if (report(answer, `Created ${answer.data && answer.data.name}. It is on sale now.`)) {
      form.reset();
      await listProducts();
    }
  });
  await listProducts();
}

async function listProducts() {
  const answer = await publicApi("/products?limit=200");
  if (!answer.ok) return notice(slot(), "bad", problem(answer));
  // The stock as inventory keeps it (the catalog knows only what a product came with).
  const levels = can("inventory:write") ? await api("/inventory?limit=200") : null;
  const stock = new Map((levels && levels.ok ? levels.data : []).map((level) => [level.sku, level]));
  $("[data-products]").replaceChildren(...answer.data.map((product) => productRow(product, stock.get(product.sku))));
  return null;
}

function productRow(product, level) {
  const edit = el("form", { class: "stack", "data-edit": product.sku },
    el("div", { class: "field-row" },
      el("div", { class: "field" }, el("label", { for: `name-${product.id}` }, "Name"),
        el("input", { id: `name-${product.id}`, name: "name", value: product.name, required: true })),
      el("div", { class: "field" }, el("label", { for: `price-${product.id}` }, `Price (${product.currency})`),
        el("input", { id: `price-${product.id}`, name: "price", type: "number", min: 0, step: "0.01", value: product.price, required: true }))),
    el("div", { class: "field" }, el("label", { for: `category-${product.id}` }, "Category"),
      el("input", { id: `category-${product.id}`, name: "category", value: product.category || "" })),
    el("button", { type: "submit" }, "Save"));
  edit.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(edit);
    const answer = await api(`/products/${product.id}`, { method: "PATCH", json: {
      name: values.name.trim(), price: Number(values.price), category: values.category.trim() || null,
    } });
    if (report(answer, `Saved ${product.name}.`)) await listProducts();
  });
  const stock = el("form", { class: "field-row", "data-stock": product.sku },
    el("div", { class: "field" }, el("label", { for: `stock-${product.id}` }, "Stock on hand"),
      el("input", { id: `stock-${product.id}`, name: "quantity", type: "number", min: 0, step: 1, required: true })),
    el("div", { class: "field" }, el("button", { type: "submit", class: "secondary" }, "Set stock")));
  stock.addEventListener("submit", async (event) => {
    event.preventDefault();
    const quantity = Number(formValues(stock).quantity);
    const answer = await api("/inventory", { method: "PUT", json: { sku: product.sku, quantity } });
    if (report(answer, `Stock of ${product.sku} set to ${quantity}.`)) await listProducts();
  });
  const actions = [el("details", { class: "edit" }, el("summary", {}, "Edit"), edit)];
  if (can("inventory:write")) actions.push(el("details", { class: "edit" }, el("summary", {}, "Stock"), stock));
  return el("tr", { "data-product-row": product.sku },
    el("td", {}, el("a", { href: `/shop/products/${product.id}` }, product.name)),
    el("td", {}, product.sku),
    el("td", { class: "num" }, money(product.price, product.currency)),
    el("td", { class: "num", "data-stock-level": "" }, level ? `${level.available} of ${level.quantity}` : String(product.inventory)),
    el("td", {}, ...actions));
}

// Orders: filter by status and customer; cancel, refund.
async function ordersPage() {
  const form = $("[data-filters]");
  const query = new URLSearchParams(location.search);
  for (const name of ["status", "customerId"]) if (query.get(name)) form.elements[name].value = query.get(name);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = new URLSearchParams();
    for (const [name, value] of Object.entries(formValues(form))) if (value.trim()) values.set(name, value.trim());
    history.replaceState(null, "", `?${values}`);
    listOrders(values);
  });
  await listOrders(query);
}

async function listOrders(filters) {
  const asked = new URLSearchParams({ limit: "100" });
  for (const name of ["status", "customerId"]) if (filters.get(name)) asked.set(name, filters.get(name));
  const answer = await api(`/orders?${asked}`);
  if (!answer.ok) return notice(slot(), "bad", problem(answer));
  const orders = [...answer.data].reverse();
  $("[data-orders]").replaceChildren(...orders.map(orderRow));
  if (!orders.length) $("[data-orders]").append(el("tr", {}, el("td", { colspan: 6 }, "No order matches.")));
  return null;
}

function orderRow(order) {
  const actions = [];
  if (["created", "confirmed", "paid"].includes(order.status)) {
    actions.push(button("Cancel", async () => {
      const answer = await api(`/orders/${order.id}/cancel`, { method: "POST", json: {} });
      if (report(answer, `Order ${shortId(order.id)} cancelled.`)) await listOrders(new URLSearchParams(location.search));
    }, { class: "secondary", "data-cancel": order.id }));
  }
  if (can("payments:refund") && ["paid", "shipped", "delivered"].includes(order.status)) {
    actions.push(button("Refund", () => refund(order), { class: "danger", "data-refund": order.id }));
  }
  return el("tr", { "data-order-row": order.id },
    el("td", {}, shortId(order.id), order.campaignId ? el("span", { class: "hint" }, " group") : ""),
    el("td", {}, order.customerId),
    el("td", {}, statusBadge(order.status)),
    el("td", { class: "num" }, money(order.total, order.currency)),
    el("td", {}, when(order.createdAt)),
    el("td", {}, el("div", { class: "row-actions" }, ...actions)));
}

async function refund(order) {
  const payments = await api(`/payments?orderId=${encodeURIComponent(order.id)}`);
  const paid = payments.ok && payments.data.find((payment) => payment.status === "succeeded");
  if (!paid) return notice(slot(), "warn", `Order ${shortId(order.id)} has no captured payment to refund.`);
  const answer = await api(`/payments/${paid.id}/refund`, { method: "POST", json: {} });
  report(answer, `Refunded ${money(paid.amount, paid.currency)} for order ${shortId(order.id)}.`);
  return listOrders(new URLSearchParams(location.search));
}

// Campaigns: start one for a product, close an open one.
async function campaignsPage() {
  const products = await publicApi("/products?limit=200");
  const byId = new Map((products.ok ? products.data : []).map((product) => [product.id, product]));
  const select = $("[data-create] [name=productId]");
  select.replaceChildren(...[...byId.values()].map((product) =>
    el("option", { value: product.id }, `${product.name} (${money(product.price, product.currency)})`)));
  const form = $("[data-create]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    const expiresAt = new Date(Date.now() + Number(values.days) * 86400000 - 60000).toISOString();
    const answer = await api("/campaigns", { method: "POST", json: {
      productId: values.productId, minParticipants: Number(values.minParticipants),
      maxParticipants: Number(values.maxParticipants), discountPercentage: Number(values.discountPercentage), expiresAt,
    } });
    if (report(answer, "Campaign started. It opens once the stock for its seats is reserved.")) await listCampaigns(byId);
  });
  await listCampaigns(byId);
}

async function listCampaigns(products) {
  const answer = await publicApi("/campaigns?limit=200");
  if (!answer.ok) return notice(slot(), "bad", problem(answer));
  const rows = [...answer.data].reverse().map((campaign) => {
    const product = products.get(campaign.productId);
    const open = ["pending", "active"].includes(campaign.status);
    const close = button("Close", async () => {
      const closed = await api(`/campaigns/${campaign.id}/close`, { method: "POST", json: {} });
      if (closed.status === 404 && closed.data && closed.data.error === "not_found" && /no route/.test(closed.data.message)) {
        return notice(slot(), "warn", "Closing campaigns is not available on this platform yet.");
      }
      if (report(closed, `Campaign closed: ${closed.data && closed.data.status}.`)) await listCampaigns(products);
      return null;
    }, { class: "secondary", "data-close": campaign.id, disabled: !open });
    return el("tr", { "data-campaign-row": campaign.id },
      el("td", {}, el("a", { href: `/shop/campaigns/${campaign.id}` }, product ? product.name : campaign.sku)),
      el("td", {}, statusBadge(campaign.status)),
      el("td", {}, `${campaign.actualParticipants} / ${campaign.minParticipants}–${campaign.maxParticipants}`),
      el("td", { class: "num" }, money(campaign.groupPrice, campaign.currency)),
      el("td", {}, when(campaign.expiresAt)),
      el("td", {}, close));
  });
  $("[data-campaigns]").replaceChildren(...rows);
  // A new campaign is pending until inventory holds its stock: look again until none is.
  window.clearTimeout(listCampaigns.again);
  if (answer.data.some((campaign) => campaign.status === "pending")) {
    listCampaigns.again = window.setTimeout(() => listCampaigns(products), 2000);
  }
  return null;
}

// Shipments and their PDF labels (fetched with the token, handed to the browser as a file).
async function shipmentsPage() {
  const answer = await api("/shipments?limit=200");
  if (!answer.ok) return notice(slot(), "bad", problem(answer));
  $("[data-shipments]").replaceChildren(...[...answer.data].reverse().map((shipment) => el("tr", { "data-shipment-row": shipment.id },
    el("td", {}, shipment.trackingNumber),
    el("td", {}, shortId(shipment.orderId)),
    el("td", {}, shipment.carrier),
    el("td", {}, statusBadge(shipment.status)),
    el("td", {}, when(shipment.createdAt)),
    el("td", {}, button("Label (PDF)", () => downloadLabel(shipment), { class: "secondary", "data-label": shipment.id })))));
  if (!answer.data.length) $("[data-shipments]").append(el("tr", {}, el("td", { colspan: 6 }, "No shipments yet.")));
  return null;
}

async function downloadLabel(shipment) {
  const response = await auth.fetchApi(`/shipments/${shipment.id}/label`, { headers: { Accept: "application/pdf" } });
  if (!response.ok) return notice(slot(), "bad", `The label could not be fetched (${response.status}).`);
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: `label-${shipment.trackingNumber}.pdf` });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
  return null;
}

// Operations: health, handler lag and dead letters, the outbox; replay a dead letter in one click.
async function operationsPage() {
  await Promise.all([showStatus(), listDeadLetters()]);
}

async function showStatus() {
  const answer = await api("/operations/status");
  const target = $("[data-status]");
  if (!answer.ok) return notice(target, "bad", problem(answer));
  const status = answer.data;
  const services = el("ul", { class: "facts" }, ...status.services.map((service) => el("li", {},
    el("strong", { class: service.health === "ok" ? "health-ok" : "health-bad" }, service.health),
    el("span", {}, service.name))));
  const handlers = el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Handler"), el("th", { scope: "col" }, "Service"),
      el("th", { scope: "col", class: "num" }, "Lag"), el("th", { scope: "col", class: "num" }, "Dead letters"))),
    el("tbody", {}, ...status.handlers.map((handler) => el("tr", {},
      el("td", {}, handler.name), el("td", {}, handler.service),
      el("td", { class: "num" }, handler.lag === null ? "–" : String(handler.lag)),
      el("td", { class: "num" }, String(handler.deadLettered)))))));
  const waiting = status.outbox.reduce((sum, box) => sum + box.waiting, 0);
  target.replaceChildren(services,
    el("p", {}, `Outbox: ${waiting} event${waiting === 1 ? "" : "s"} waiting to be published. Checked ${when(status.checkedAt)}.`),
    status.unavailable.length ? el("p", { class: "notice warn" }, `Not readable now: ${status.unavailable.join(", ")}`) : "",
    handlers);
  return null;
}

async function listDeadLetters() {
  const answer = await api("/operations/dead-letters?limit=100");
  if (!answer.ok) return notice(slot(), "bad", problem(answer));
  $("[data-no-dead-letters]").hidden = answer.data.length > 0;
  $("[data-dead-letters]").closest(".table-wrap").hidden = answer.data.length === 0;
  $("[data-dead-letters]").replaceChildren(...answer.data.map((letter) => {
    const replay = letter.replayedAt ? el("span", { class: "hint" }, `Replayed ${when(letter.replayedAt)}`)
      : button("Replay", async () => {
        const replayed = await api("/operations/dead-letters/replay", { method: "POST",
          json: { topic: letter.topic, eventIds: [letter.id] } });
        if (report(replayed, `Replayed event ${letter.id} to ${letter.topic}.`)) await listDeadLetters();
      }, { "data-replay": letter.id });
    return el("tr", { "data-dead-letter": letter.id },
      el("td", {}, letter.topic),
      el("td", {}, letter.id, el("br"), el("span", { class: "hint" }, letter.errorCode ? `answered ${letter.errorCode}` : "")),
      el("td", {}, letter.type),
      el("td", {}, el("pre", { class: "payload" }, JSON.stringify(letter.data))),
      el("td", {}, replay));
  }));
  return null;
}

function indexPage() {
  let any = false;
  for (const tile of $$("[data-scope]")) {
    tile.hidden = !can(tile.dataset.scope);
    any = any || !tile.hidden;
  }
  $("[data-no-scopes]").hidden = any;
  $("[data-scopes]").textContent = scopes.size ? `Your scopes: ${[...scopes].join(", ")}` : "";
}

const PAGES = {
  index: indexPage, products: productsPage, orders: ordersPage, campaigns: campaignsPage,
  shipments: shipmentsPage, operations: operationsPage,
};

function start() {
  const signedIn = Boolean(user && user.staff);
  $("[data-signed-out]").hidden = signedIn;
  $("[data-signed-in]").hidden = !signedIn;
  for (const link of $$(".site-nav [data-scope]")) link.hidden = !can(link.dataset.scope);
  if (!signedIn) return;
  const page = body.dataset.page;
  const needed = PAGE_SCOPE[page];
  if (needed && !can(needed)) {
    $("[data-forbidden]").hidden = false;
    $("[data-allowed]").hidden = true;
    return;
  }
  (PAGES[page] || (() => {}))();
}

start();
