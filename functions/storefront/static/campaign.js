// A group-buy campaign: seats taken against its minimum and maximum, a countdown, the leader, and joining it
// (a seat is held, then the card is authorized for the group price; nobody is charged unless the group tips).
import {
  api, auth, cardForm, el, money, notice, postWhenReady, problem, publicApi, signInHere, sleep,
} from "/static/common.js";

const OPEN = ["pending", "active", "successful"];  // a tipped group takes joiners until it is full or ends
const POLL_MS = 1500;

function countdown(deadline) {
  const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
  const days = Math.floor(left / 86400);
  const hours = Math.floor((left % 86400) / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = left % 60;
  if (left === 0) return "ended";
  return days > 0 ? `${days}d ${hours}h ${minutes}m` : `${hours}h ${minutes}m ${seconds}s`;
}

function headline(campaign) {
  if (campaign.status === "successful") return "The group tipped: everyone pays the group price.";
  if (campaign.status === "closed") return "This group buy is closed.";
  if (campaign.status === "expired") return "This group buy missed its minimum; nobody was charged.";
  const missing = Math.max(0, campaign.minParticipants - campaign.actualParticipants);
  return missing > 0 ? `${missing} more buyer${missing === 1 ? "" : "s"} and the group tips.`
    : "The group has tipped: join while seats last.";
}

/** Shows the campaign in `slot` and keeps it current; returns a function that stops the polling. */
export function showCampaign(slot, campaignId) {
  let deadline = 0;
  let stopped = false;
  let seatState = null;  // what this shopper's own seat is doing, shown under the button

  const panel = el("section", { class: "panel campaign stack", "aria-labelledby": "campaign-heading" });
  const parts = {
    heading: el("h2", { id: "campaign-heading" }, "Group buy"),
    price: el("span", { class: "price" }),
    oldPrice: el("span", { class: "price-old" }),
    status: el("span", { class: "status", "data-campaign-status": "" }),
    headline: el("p", { "data-headline": "", "aria-live": "polite" }),
    meter: el("div", { class: "meter", role: "progressbar", "aria-valuemin": 0, "aria-label": "Seats taken" },
      el("span", { "data-fill": "" })),
    taken: el("strong", { "data-taken": "" }),
    minimum: el("strong", {}),
    countdown: el("strong", { "data-countdown": "" }),
    leader: el("strong", { "data-leader": "" }),
    join: el("button", { type: "button", "data-join": "", disabled: true }, "Join the group"),  // until loaded
    seat: el("div", { "data-seat": "" }),
  };
  panel.append(
    parts.heading,
    el("p", {}, parts.price, parts.oldPrice, " ", parts.status),
    parts.headline,
    parts.meter,
    el("ul", { class: "facts" },
      el("li", {}, parts.taken, el("span", {}, "seats taken")),
      el("li", {}, parts.minimum, el("span", {}, "needed to tip")),
      el("li", {}, parts.countdown, el("span", {}, "left")),
      el("li", {}, parts.leader, el("span", {}, "leader"))),
    el("div", { class: "buy" }, parts.join),
    parts.seat,
  );
  slot.replaceChildren(panel);
  let current = null;
  parts.join.addEventListener("click", () => joinCampaign(current));

  function render(campaign) {
    current = campaign;
    deadline = Date.now() + campaign.secondsLeft * 1000;
    const taken = campaign.actualParticipants;
    const percent = Math.min(100, Math.round((taken / campaign.maxParticipants) * 100));
    const open = campaign.status !== "pending" && OPEN.includes(campaign.status) && campaign.secondsLeft > 0 && taken < campaign.maxParticipants;
    parts.heading.textContent = `Group buy: ${Number(campaign.discountPercentage)}% off`;
    parts.price.textContent = money(campaign.groupPrice, campaign.currency);
    parts.oldPrice.textContent = money(campaign.originalPrice, campaign.currency);
    parts.status.className = `status ${campaign.status}`;
    parts.status.textContent = campaign.status;
    const said = headline(campaign);
    if (parts.headline.textContent !== said) parts.headline.textContent = said;
    parts.meter.classList.toggle("tipped", taken >= campaign.minParticipants);
    parts.meter.setAttribute("aria-valuemax", campaign.maxParticipants);
    parts.meter.setAttribute("aria-valuenow", taken);
    parts.meter.setAttribute("aria-valuetext",
      `${taken} of ${campaign.maxParticipants} seats taken, ${campaign.minParticipants} needed`);
    parts.meter.firstChild.style.width = `${percent}%`;
    parts.taken.textContent = `${taken} / ${campaign.maxParticipants}`;
    parts.minimum.textContent = String(campaign.minParticipants);
    parts.countdown.textContent = countdown(deadline);
    parts.leader.textContent = campaign.leader || "nobody yet";
    parts.join.disabled = !open || seatState !== null;
    parts.join.textContent = seatState === "joined" ? "You are in" : "Join the group";
  }

  async function refresh() {
    const answer = await publicApi(`/campaigns/${campaignId}`);
    if (!answer.ok) {
      notice(parts.headline, "bad", problem(answer, "This group buy cannot be found."));
      return null;
    }
    render(answer.data);
    return answer.data;
  }

  async function seatPayment(campaign, seatSlot) {
    // The seat's payment exists once the platform has heard of the join: retry briefly while it has not.
    const answer = await postWhenReady("/seat-payments", { campaignId: campaign.id }, { attempts: 20 });
    if (answer && answer.ok) return answer.data;
    notice(seatSlot, "bad", answer ? problem(answer)
      : "Your seat's payment is not ready yet. Please try again in a moment.");
    return null;
  }

  async function joinCampaign(campaign) {
    if (!campaign) return;
    if (!auth.user()) {
      signInHere(false);
      return;
    }
    const seatSlot = parts.seat;
    const button = parts.join;
    seatState = "joining";
    button.disabled = true;
    const joined = await api(`/campaigns/${campaign.id}/join`, { method: "POST", json: {} });
    if (!joined.ok && joined.status !== 409) {
      notice(seatSlot, "bad", problem(joined));
      seatState = null;
      button.disabled = false;
      return;
    }
    notice(seatSlot, "info", "Seat held. Authorize your card for the group price: you are charged only if the group tips.");
    const payment = await seatPayment(campaign, seatSlot);
    if (!payment) {
      seatState = null;
      return;
    }
    if (payment.status === "declined") {
      seatState = null;
      notice(seatSlot, "bad", `Your card was not authorized: ${payment.failureReason || "declined"}. Your seat is freed.`);
      return;
    }
    if (["authorized", "captured"].includes(payment.status)) {
      seatState = "joined";
      notice(seatSlot, "ok", "Your card is authorized. You are in the group.");
      return;
    }
    if (!payment.clientSecret) {
      seatState = null;
      button.disabled = false;
      notice(seatSlot, "bad", "Your seat's payment is not ready yet. Please try again in a moment.");
      return;
    }
    const form = el("form", { class: "stack", "data-seat-form": "" },
      el("span", { class: "field-label", id: "seat-card-label" }, "Card for the group price"),
      el("div", { class: "card-element", id: "seat-card", role: "group", "aria-labelledby": "seat-card-label" }),
      el("button", { type: "submit", "data-authorize": "" }, `Authorize ${money(payment.amount, payment.currency)}`));
    seatSlot.append(form);
    const card = await cardForm(form.querySelector("#seat-card"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const submit = form.querySelector("[data-authorize]");
      submit.disabled = true;
      const result = await card.confirm(payment.clientSecret);
      if (result.error) {
        seatState = null;  // the seat is freed: joining again starts afresh
        form.remove();
        notice(seatSlot, "bad", `Your card was not authorized: ${result.error.message || result.error} Your seat is freed.`);
        return;
      }
      seatState = "joined";
      form.remove();
      notice(seatSlot, "ok", "Your card is authorized. You are in the group; we will tell you when it tips.");
      await refresh();
    });
  }

  async function poll() {
    while (!stopped) {
      const campaign = await refresh();
      if (!campaign || !OPEN.includes(campaign.status)) return;
      await sleep(POLL_MS);
    }
  }

  const ticker = window.setInterval(() => {
    const node = panel.querySelector("[data-countdown]");
    if (node) node.textContent = countdown(deadline);
  }, 1000);
  poll();
  return () => { stopped = true; window.clearInterval(ticker); };
}

/** The open campaign for a product, if any. */
export async function openCampaignFor(productId) {
  const answer = await publicApi(`/campaigns?productId=${encodeURIComponent(productId)}&status=active`);
  return answer.ok && answer.data.length ? answer.data[0] : null;
}
