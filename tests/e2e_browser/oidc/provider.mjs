// A real OpenID provider on 127.0.0.1 for the dashboard's sign-in test: panva's oidc-provider
// (OpenID Certified), with its development login and consent pages (any login name, any
// password). One public client, the dashboard: authorization code + PKCE, refresh tokens, JWT
// access tokens whose audience is the client id (as Cognito's carry client_id).
//
//   node provider.mjs REDIRECT_URI [ACCESS_TOKEN_TTL_S]
//
// Prints one JSON line {"issuer": ...} once listening; exits when its stdin closes, so it
// never outlives the test that started it.

import http from "node:http";
import Provider from "oidc-provider";

const [redirectUri, accessTtl = "3600"] = process.argv.slice(2);
const CLIENT_ID = "imgpipe-dashboard";

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      token_endpoint_auth_method: "none",
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }],
    pkce: { required: () => true },
    scopes: ["openid", "email", "profile", "offline_access"],
    claims: { openid: ["sub"], email: ["email"], profile: ["name"] },
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: `${id}@example.test`, name: id }),
    }),
    issueRefreshToken: () => true,
    ttl: { AccessToken: Number(accessTtl) },
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => "urn:imgpipe:api",
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "openid email profile",
          audience: CLIENT_ID,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
  });
  provider.proxy = false;
  server.on("request", provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, client_id: CLIENT_ID })}\n`);
});

process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
