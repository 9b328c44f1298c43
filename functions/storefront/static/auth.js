// Browser sign-in for the storefront and the staff console: the OpenID Connect authorization code flow
// with PKCE (RFC 7636, S256) as a public client, against any provider that publishes a discovery document.
// Tokens live in sessionStorage only (gone with the tab); they never go into URLs and are never logged.

const SESSION_KEY = "fusion.auth.session"; // {accessToken, idToken, expiresAt, obtainedAt}
const PENDING_KEY = "fusion.auth.pending"; // {state, verifier, nonce, redirectUri, returnTo}: one sign-in under way
const EXPIRY_MARGIN_MS = 30_000; // a token this close to its expiry counts as expired: a request takes time
const FRESH_TOKEN_MS = 10_000; // a 401 for a token this new is a misconfiguration, not an expiry: no sign-in loop
const DEFAULT_LIFETIME_S = 300; // when the provider states no lifetime at all

let settings = null;
let discovery = null; // the provider's discovery document, fetched once per page

/** Raised by fetchApi when the API answered 401 and the browser is on its way to sign in again. */
export class SignInRequired extends Error {
  constructor() {
    super("signing in again");
    this.name = "SignInRequired";
  }
}

/** Takes the page's OIDC settings; without an argument, the JSON in <script type="application/json" id="fusion-oidc">. */
export function configure(config = pageConfig()) {
  for (const name of ["issuer", "clientId", "redirectUri", "scope"]) {
    if (typeof config?.[name] !== "string" || !config[name]) throw new Error(`auth.configure: ${name} is missing`);
  }
  settings = {
    issuer: config.issuer.replace(/\/+$/, ""),
    clientId: config.clientId,
    redirectUri: config.redirectUri,
    scope: config.scope,
    scopeClaim: config.scopeClaim || "scope",
    staffScopes: (config.staffScopes || "").split(/\s+/).filter(Boolean),
  };
  discovery = null;
}

/** Goes to the provider's sign-in; comes back to /auth/callback, whose handleCallback() returns `returnTo`. */
export async function signIn({ staff = false, returnTo = currentPath() } = {}) {
  const config = configured();
  const { authorization_endpoint: endpoint } = await providerDocument();
  const pending = {
    state: randomString(32),
    verifier: randomString(48), // 64 characters, within RFC 7636's 43 to 128
    nonce: randomString(32),
    redirectUri: new URL(config.redirectUri, location.origin).href,
    returnTo: samePath(returnTo),
  };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(endpoint);
  const params = {
    response_type: "code",
    client_id: config.clientId,
    redirect_uri: pending.redirectUri,
    scope: config.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await pkceChallenge(pending.verifier),
    code_challenge_method: "S256",
  };
  // Staff sign-in while a customer is signed in: the provider must ask who, not reuse its session.
  const who = user();
  if (staff && who && !who.staff) params.prompt = "login";
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  location.assign(url.href);
}

/** Forgets the tokens here and, when the provider can end its own session, goes there (and back to /). */
export async function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  let endpoint;
  try {
    endpoint = (await providerDocument()).end_session_endpoint;
  } catch {
    return; // signed out here; the provider is unreachable
  }
  if (!endpoint) return;
  const url = new URL(endpoint);
  url.searchParams.set("client_id", configured().clientId);
  url.searchParams.set("post_logout_redirect_uri", new URL("/", location.origin).href);
  location.assign(url.href);
}

/** On /auth/callback: checks the state, trades the code for tokens and returns the path to go back to. */
export async function handleCallback() {
  const config = configured();
  const params = new URLSearchParams(location.search);
  const pending = stored(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY); // one answer per sign-in
  history.replaceState(null, "", location.pathname); // the code is spent either way: keep it out of history
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("this sign-in was not started in this tab, or is already over: sign in again");
  }
  if (params.has("error")) {
    throw new Error(`sign-in refused: ${params.get("error_description") || params.get("error")}`);
  }
  const code = params.get("code");
  if (!code) throw new Error("the provider sent no authorization code");
  const { token_endpoint: endpoint } = await providerDocument();
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: pending.redirectUri,
      client_id: config.clientId,
      code_verifier: pending.verifier,
    }),
    credentials: "omit",
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || typeof answer.access_token !== "string") {
    throw new Error(`the token exchange failed: ${answer.error_description || answer.error || response.status}`);
  }
  checkIdToken(answer.id_token, pending.nonce);
  const now = Date.now();
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({
    accessToken: answer.access_token,
    idToken: typeof answer.id_token === "string" ? answer.id_token : null,
    expiresAt: now + lifetimeSeconds(answer) * 1000,
    obtainedAt: now,
  }));
  return pending.returnTo;
}

/** The access token, or null when nobody is signed in or it has (nearly) expired. */
export function token() {
  return current()?.accessToken ?? null;
}

/** Who is signed in, read from the token's claims (for display: the API checks the token itself). */
export function user() {
  const session = current();
  return session ? userOf(session) : null;
}

/** fetch() of a path on this origin with the bearer token and JSON; a 401 starts a new sign-in. */
export async function fetchApi(path, options = {}) {
  if (typeof path !== "string" || !path.startsWith("/") || path.startsWith("//")) {
    throw new TypeError(`fetchApi takes a path on this origin, such as /orders; got ${String(path)}`);
  }
  const headers = new Headers(options.headers);
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  let body = options.body;
  if (body != null && isPlainData(body)) body = JSON.stringify(body);
  if (typeof body === "string" && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  const session = current();
  if (session) headers.set("Authorization", `Bearer ${session.accessToken}`);
  const response = await fetch(path, { ...options, headers, body, credentials: "same-origin" });
  if (response.status !== 401) return response;
  if (session && Date.now() - session.obtainedAt < FRESH_TOKEN_MS) {
    throw new Error("the API refuses the token just issued: check OIDC_AUDIENCE and the client's audience");
  }
  const last = stored(SESSION_KEY);
  sessionStorage.removeItem(SESSION_KEY);
  await signIn({ staff: last ? userOf(last).staff : false });
  throw new SignInRequired();
}

/** RFC 7636's S256: base64url(SHA-256(verifier)), unpadded. */
export async function pkceChallenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function pageConfig() {
  const element = document.getElementById("fusion-oidc");
  if (!element) throw new Error("auth.configure: the page carries no #fusion-oidc settings");
  return JSON.parse(element.textContent);
}

function configured() {
  if (!settings) throw new Error("auth.configure(config) must be called first");
  return settings;
}

async function providerDocument() {
  const { issuer } = configured();
  discovery ??= fetch(`${issuer}/.well-known/openid-configuration`, { credentials: "omit" }).then(async (response) => {
    if (!response.ok) throw new Error(`the sign-in provider answered ${response.status}`);
    const found = await response.json();
    if (found.issuer !== issuer) throw new Error("the provider's discovery document names another issuer");
    return found;
  });
  try {
    return await discovery;
  } catch (error) {
    discovery = null; // try again next time
    throw error;
  }
}

function current() {
  const session = stored(SESSION_KEY);
  if (!session || typeof session.accessToken !== "string") return null;
  return session.expiresAt - EXPIRY_MARGIN_MS > Date.now() ? session : null;
}

function userOf(session) {
  const claims = claimsOf(session.accessToken) ?? claimsOf(session.idToken) ?? {};
  const scopes = scopesIn(claims, configured().scopeClaim);
  const staffScopes = configured().staffScopes;
  return { sub: String(claims.sub ?? ""), scopes, staff: scopes.some((scope) => staffScopes.includes(scope)) };
}

// The ID token comes straight from the token endpoint over TLS (OIDC Core 3.1.3.7), so its signature is
// not checked here; that it is ours is: issuer, audience and the nonce this sign-in sent.
function checkIdToken(idToken, nonce) {
  if (typeof idToken !== "string") return;
  const claims = claimsOf(idToken);
  const audiences = [].concat(claims?.aud ?? []);
  if (!claims || claims.iss !== configured().issuer || !audiences.includes(configured().clientId)) {
    throw new Error("the ID token was not issued to this client by this issuer");
  }
  if (claims.nonce !== undefined && claims.nonce !== nonce) throw new Error("the ID token answers another sign-in");
}

function lifetimeSeconds(answer) {
  if (Number.isFinite(answer.expires_in) && answer.expires_in > 0) return answer.expires_in;
  const exp = claimsOf(answer.access_token)?.exp;
  return Number.isFinite(exp) ? exp - Date.now() / 1000 : DEFAULT_LIFETIME_S;
}

// The scopes at a dotted claim path (e.g. realm_access.roles): a space-separated string or a list.
function scopesIn(claims, path) {
  let value = claims;
  for (const part of path.split(".")) value = value && typeof value === "object" ? value[part] : undefined;
  if (typeof value === "string") return value.split(/\s+/).filter(Boolean);
  return Array.isArray(value) ? value.map(String) : [];
}

function claimsOf(jwt) {
  const parts = typeof jwt === "string" ? jwt.split(".") : [];
  if (parts.length !== 3) return null; // an opaque token
  try {
    const text = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (char) => char.charCodeAt(0))));
  } catch {
    return null;
  }
}

function stored(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function isPlainData(body) {
  return !(typeof body === "string" || body instanceof FormData || body instanceof Blob ||
    body instanceof URLSearchParams || body instanceof ArrayBuffer || ArrayBuffer.isView(body) ||
    body instanceof ReadableStream);
}

// A path on this origin to come back to; anything else (another origin, "//host") becomes "/".
function samePath(path) {
  try {
    const url = new URL(path, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch {
    return "/";
  }
}

function currentPath() {
  return location.pathname + location.search + location.hash;
}

function randomString(byteCount) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
