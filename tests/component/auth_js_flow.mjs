// Runs functions/storefront/static/auth.js in Node against a real issuer, with the few browser objects it
// touches (location, history, sessionStorage) stood in for, and prints what it observed as JSON.
// Usage: node auth_js_flow.mjs <auth.js> <issuer> <storefront origin> <client id> <staff scopes>
import { pathToFileURL } from "node:url";

const [authPath, issuer, origin, clientId, staffScopes] = process.argv.slice(2);
const storage = new Map();
globalThis.sessionStorage = {
  getItem: (key) => (storage.has(key) ? storage.get(key) : null),
  setItem: (key, value) => storage.set(key, String(value)),
  removeItem: (key) => storage.delete(key),
};
let here = new URL("/shop/cart?step=2", origin);
let assigned = null;
globalThis.location = {
  get origin() { return here.origin; },
  get pathname() { return here.pathname; },
  get search() { return here.search; },
  get hash() { return here.hash; },
  assign: (url) => { assigned = url; },
};
globalThis.history = { replaceState: (_state, _title, url) => { here = new URL(url, here); } };
const realFetch = globalThis.fetch;
const apiCalls = [];
let apiStatus = 200;
globalThis.fetch = (resource, options = {}) => {
  if (typeof resource === "string" && resource.startsWith("/")) { // the API on the page's origin
    apiCalls.push({ path: resource, headers: Object.fromEntries(new Headers(options.headers)), body: options.body ?? null });
    return Promise.resolve(new Response("{}", { status: apiStatus, headers: { "Content-Type": "application/json" } }));
  }
  return realFetch(resource, options);
};

const auth = await import(pathToFileURL(authPath).href);
const seen = {};
const failure = async (action) => {
  try {
    await action();
    return null;
  } catch (error) {
    return `${error.name}: ${error.message}`;
  }
};
const pending = () => JSON.parse(sessionStorage.getItem("fusion.auth.pending"));

// At the issuer: post the sign-in form the way the development page does, and follow its answer back.
async function signInAtIssuer(authorizeUrl, choice) {
  const form = new URLSearchParams(new URL(authorizeUrl).searchParams);
  for (const [name, value] of choice) form.append(name, value);
  const answer = await realFetch(`${issuer}/authorize`, { method: "POST", body: form, redirect: "manual" });
  here = new URL(answer.headers.get("Location"));
}

seen.rfc7636Challenge = await auth.pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
seen.beforeConfigure = await failure(() => auth.signIn());
auth.configure({ issuer, clientId, redirectUri: "/auth/callback", scope: "openid", scopeClaim: "scope", staffScopes });
seen.signedOutUser = auth.user();

await auth.signIn({ staff: true, returnTo: "/shop/cart?step=2" });
const request = Object.fromEntries(new URL(assigned).searchParams);
seen.authorizeRequest = request;
seen.authorizeEndpoint = assigned.split("?")[0];
seen.challengeOfStoredVerifier = await auth.pkceChallenge(pending().verifier);
seen.verifierLength = pending().verifier.length;

await signInAtIssuer(assigned, [["kind", "staff"], ["name", "sam"], ["staff_scope", staffScopes.split(" ")[0]]]);
seen.callbackHadCode = here.searchParams.has("code");
seen.returnTo = await auth.handleCallback();
seen.urlAfterCallback = here.href;
seen.pendingAfterCallback = sessionStorage.getItem("fusion.auth.pending");
seen.user = auth.user();
const token = auth.token();
seen.hasToken = typeof token === "string" && token.split(".").length === 3;
seen.tokenInAnUrl = [assigned, here.href].some((url) => url.includes(token));

await auth.fetchApi("/orders", { method: "POST", body: { productId: "p-1", quantity: 2 } });
seen.apiCall = apiCalls.at(-1);
seen.apiCallBearerIsToken = seen.apiCall.headers.authorization === `Bearer ${token}`;
seen.foreignFetch = await failure(() => auth.fetchApi("https://evil.example/orders"));
seen.protocolRelativeFetch = await failure(() => auth.fetchApi("//evil.example/orders"));

apiStatus = 401;
seen.freshTokenRefused = await failure(() => auth.fetchApi("/orders"));
const session = JSON.parse(sessionStorage.getItem("fusion.auth.session"));
sessionStorage.setItem("fusion.auth.session", JSON.stringify({ ...session, obtainedAt: Date.now() - 60_000 }));
assigned = null;
seen.staleTokenRefused = await failure(() => auth.fetchApi("/orders"));
seen.signInAgainRequest = assigned && Object.fromEntries(new URL(assigned).searchParams);
seen.tokenAfter401 = auth.token();
apiStatus = 200;

// A token past its expiry is gone; an answer with another state, or an error, signs nobody in.
sessionStorage.setItem("fusion.auth.session", JSON.stringify({ ...session, expiresAt: Date.now() + 1000 }));
seen.expiredToken = auth.token();
seen.expiredUser = auth.user();

await auth.signIn({ returnTo: "//evil.example/steal" });
seen.foreignReturnTo = pending().returnTo;
await signInAtIssuer(assigned, [["kind", "customer"], ["pick", "alice"]]);
here.searchParams.set("state", "forged");
seen.forgedState = await failure(() => auth.handleCallback());

await auth.signIn({});
here = new URL(`/auth/callback?error=access_denied&error_description=nope&state=${pending().state}`, origin);
seen.providerError = await failure(() => auth.handleCallback());

await auth.signIn({ returnTo: "/shop/orders" });
await signInAtIssuer(assigned, [["kind", "customer"], ["pick", "alice"]]);
const callback = here.href;
seen.customerReturnTo = await auth.handleCallback();
seen.customer = auth.user();
here = new URL(callback);
seen.replayedCallback = await failure(() => auth.handleCallback());
await auth.signIn({ staff: true });
seen.staffAfterCustomerPrompt = new URL(assigned).searchParams.get("prompt");

await auth.signOut();
seen.afterSignOut = { token: auth.token(), user: auth.user() };
process.stdout.write(JSON.stringify(seen));
