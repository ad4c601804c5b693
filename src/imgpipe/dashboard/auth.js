// How the dashboard proves who it is, in the mode /dashboard/config.json names:
//
// - "none": nothing.
// - "token" (`imgpipe serve --token`): the access token is asked for once (on the first 401) and
//   kept in sessionStorage for the tab; never written to disk or sent anywhere but this origin.
// - "oidc" (Cognito on AWS, `imgpipe serve --oidc-issuer` locally): sign-in at the OpenID
//   provider with the authorization-code flow and PKCE (S256). Tokens live in memory only; the
//   access token is renewed with the refresh token before it expires; a 401 sends the user to
//   sign in again. Only the PKCE verifier and state cross the redirect, in sessionStorage.
//
// Rendition URLs come signed (or from the CDN) in the records, so <img> needs no header.

const TOKEN_KEY = "imgpipe.token";
const PKCE_KEY = "imgpipe.pkce";
const RENEW_BEFORE_MS = 60_000;

let mode = "none";
let oidc = null; // the provider's endpoints and our client id
let tokens = null; // {access, refresh, expiresAt}
let renewing = null;
let askForToken = async () => null;

/** `ask(retry)` shows the token prompt and resolves to a token, or null when the user gives up. */
export function onTokenNeeded(ask) {
  askForToken = ask;
}

export const authMode = () => mode;
export const signedIn = () => (mode === "token" ? Boolean(storedToken()) : Boolean(tokens));

function storage(action) {
  try {
    return action(sessionStorage);
  } catch {
    return null; // storage disabled: the prompt comes back on every page load
  }
}
const storedToken = () => storage((s) => s.getItem(TOKEN_KEY)) || "";
const storeToken = (token) =>
  storage((s) => (token ? s.setItem(TOKEN_KEY, token) : s.removeItem(TOKEN_KEY)));

// -- PKCE -------------------------------------------------------------------------------------

const base64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const randomString = () => base64url(crypto.getRandomValues(new Uint8Array(32)));
const redirectUri = () => location.origin + location.pathname;

/** Off to the provider's sign-in page; we come back to this page with ?code=&state=. */
export async function beginSignIn() {
  const verifier = randomString();
  const state = randomString();
  const challenge = base64url(await crypto.subtle.digest("SHA-256",
    new TextEncoder().encode(verifier)));
  storage((s) => s.setItem(PKCE_KEY, JSON.stringify({ verifier, state, hash: location.hash })));
  const query = new URLSearchParams({
    response_type: "code", client_id: oidc.client_id, redirect_uri: redirectUri(),
    scope: oidc.scopes || "openid", state, code_challenge: challenge,
    code_challenge_method: "S256",
  });
  location.assign(`${oidc.authorization_endpoint}?${query}`);
  return new Promise(() => {}); // the page is going away
}

async function tokenRequest(fields) {
  const response = await fetch(oidc.token_endpoint, {
    method: "POST", cache: "no-store", credentials: "omit",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({ client_id: oidc.client_id, ...fields }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || typeof answer.access_token !== "string") {
    throw new Error(answer.error_description || answer.error || `sign-in failed (${response.status})`);
  }
  tokens = {
    access: answer.access_token,
    refresh: answer.refresh_token || tokens?.refresh || "",
    expiresAt: Date.now() + 1000 * Number(answer.expires_in || 300),
  };
}

/** Finish a sign-in this page was redirected back from (?code=&state=), if any. */
async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const returned = params.get("state");
  const error = params.get("error");
  if (!code && !error) return null;
  const pending = JSON.parse(storage((s) => s.getItem(PKCE_KEY)) || "null");
  storage((s) => s.removeItem(PKCE_KEY));
  for (const name of ["code", "state", "error", "error_description", "session_state", "iss"]) {
    params.delete(name);
  }
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") +
    (pending?.hash || location.hash));
  if (error) return `the sign-in was refused: ${error}`;
  if (!pending || pending.state !== returned) return "the sign-in could not be checked; try again";
  try {
    await tokenRequest({ grant_type: "authorization_code", code, redirect_uri: redirectUri(),
      code_verifier: pending.verifier });
  } catch (failure) {
    return String(failure.message || failure);
  }
  return null;
}

async function renew() {
  if (!tokens?.refresh) return false;
  renewing ||= tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh })
    .then(() => true, () => false)
    .finally(() => { renewing = null; });
  return renewing;
}

// -- what api.js uses -------------------------------------------------------------------------

/**
 * Start in the mode `config` names; finishes a sign-in the page came back from. Resolves to an
 * error message when that sign-in failed (the page shows it and offers to sign in again).
 */
export async function startAuth(config) {
  mode = config.auth || "none";
  oidc = config.oidc || null;
  if (mode === "oidc" && !oidc) mode = "none";
  return mode === "oidc" ? completeSignIn() : null;
}

/** The headers that authorize a call now (renewing an access token about to expire). */
export async function authHeaders() {
  if (mode === "token") {
    const token = storedToken();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }
  if (mode === "oidc" && tokens) {
    if (tokens.expiresAt - Date.now() < RENEW_BEFORE_MS) await renew();
    return { Authorization: `Bearer ${tokens.access}` };
  }
  return {};
}

/** A call got a 401: true when it should be sent again (new credentials), else false. */
export async function unauthorized(retry) {
  if (mode === "oidc") {
    if (!retry && (await renew())) return true;
    tokens = null;
    await beginSignIn();
    return false;
  }
  storeToken("");
  const token = ((await askForToken(retry)) || "").trim();
  if (!token) return false;
  storeToken(token);
  return true;
}

/** Forget this tab's credentials; with a provider, end its session too (the page leaves). */
export function signOut() {
  storeToken("");
  const hadTokens = Boolean(tokens);
  tokens = null;
  if (mode === "oidc" && hadTokens && oidc.end_session_endpoint) {
    const back = redirectUri();
    const query = new URLSearchParams({ client_id: oidc.client_id, logout_uri: back,
      post_logout_redirect_uri: back });
    location.assign(`${oidc.end_session_endpoint}?${query}`);
    return true;
  }
  return false;
}
