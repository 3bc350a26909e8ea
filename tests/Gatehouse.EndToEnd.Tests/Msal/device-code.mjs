// Microsoft's MSAL for Node (@azure/msal-node, pinned in package-lock.json) as a real client of Gatehouse.
//
// Usage: node device-code.mjs AUTHORITY CLIENT_ID SCOPE   (with NODE_EXTRA_CA_CERTS naming the gateway's certificate)
//
// The device code flow (msal-node polls with grant_type=device_code; the message goes to standard output at once, the
// test enters the code in a browser), then what an application does on its next run: getAllAccounts() must find the
// account, and acquireTokenSilent() must renew the access token from the refresh token without interaction
// (forceRefresh, so the refresh really happens). Each access token is tried on the admin API. The last line is
// "RESULT <json>" with what the test checks; no token is printed.
import { createHash } from "node:crypto";
import { PublicClientApplication } from "@azure/msal-node";

const [authority, clientId, scope] = process.argv.slice(2);
const base = new URL(authority).origin;
const scopes = scope.split(" ");

const digest = (token) => (token ? createHash("sha256").update(token, "ascii").digest("hex") : null);

async function adminStatus(token) {
  const response = await fetch(`${base}/admin/v1/users`, { headers: { Authorization: `Bearer ${token}` } });
  return response.status;
}

async function summary(result) {
  if (!result) {
    return { result: null };
  }
  const claims = result.idTokenClaims ?? {};
  return {
    access_token_sha256: digest(result.accessToken),
    id_token_claims: Object.fromEntries(["iss", "aud", "sub", "oid", "tid", "preferred_username", "name"].map((k) => [k, claims[k] ?? null])),
    account: result.account ? { homeAccountId: result.account.homeAccountId, username: result.account.username } : null,
    admin_api_status: await adminStatus(result.accessToken),
  };
}

async function attempt(stage, action) {
  try {
    return await action();
  } catch (error) {
    console.log("RESULT " + JSON.stringify({ stage, error: error.errorCode ?? error.name, error_description: error.errorMessage ?? error.message }));
    process.exit(1);
  }
}

// The authority is the developer's own (knownAuthorities): no instance discovery at Microsoft's cloud.
const app = new PublicClientApplication({
  auth: { clientId, authority, knownAuthorities: [new URL(authority).host] },
});

const device = await attempt("acquireTokenByDeviceCode", () =>
  app.acquireTokenByDeviceCode({ scopes, deviceCodeCallback: (response) => console.log(response.message) }));
const accounts = await attempt("getAllAccounts", () => app.getAllAccounts());
const silent = accounts.length === 0
  ? null
  : await attempt("acquireTokenSilent", () => app.acquireTokenSilent({ account: accounts[0], scopes, forceRefresh: true }));

console.log("RESULT " + JSON.stringify({
  device_code: await summary(device),
  accounts: accounts.map((a) => ({ home_account_id: a.homeAccountId, environment: a.environment, username: a.username, local_account_id: a.localAccountId, realm: a.tenantId })),
  silent: await summary(silent),
}));
