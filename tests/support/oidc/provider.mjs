// A real OpenID provider for the single sign-on tests: panva's oidc-provider (certified
// OpenID Connect), on loopback, on a port the OS picks. tests/support/oidc_provider.py
// starts it and reads the first line it prints: {"issuer": "http://127.0.0.1:<port>"}.
//
// The provider is used as its author meant (configuration, findAccount, provider.use
// middleware). What a test needs on top lives under /__test/ on the same port:
//   PUT  /__test/clients          [{client_id, client_secret, redirect_uris, post_logout_redirect_uris}]
//   PUT  /__test/accounts/<id>    {email, email_verified, name}: the claims of account <id>
//   POST /__test/rotate-keys      a new signing key (published first, the old one after it)
//   POST /__test/tamper-next      {"how": "audience" | "expired" | "foreign_key"}: the next
//                                 token response's ID token is re-signed wrong in that way
//   GET  /__test/stats            {"jwks_requests", "token_requests"}
// The provider's own login page (devInteractions) takes any password for an account id.
import http from 'node:http';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader, importJWK } from 'jose';
import Provider from 'oidc-provider';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const accounts = new Map();
let clients = [];
let signingKeys = [];
let tamper = null;
const stats = { jwks_requests: 0, token_requests: 0 };
let handler = null;

async function newKey(n) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `test-key-${n}-${Date.now()}`, use: 'sig', alg: 'RS256' };
}

async function resign(idToken, how) {
  const claims = decodeJwt(idToken);
  const header = decodeProtectedHeader(idToken);
  const now = Math.floor(Date.now() / 1000);
  let key = signingKeys[0];
  if (how === 'audience') claims.aud = 'some-other-relying-party';
  else if (how === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
  else if (how === 'foreign_key') key = { ...(await newKey('forged')), kid: header.kid };
  else throw new Error(`unknown tampering ${how}`);
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: header.kid, typ: header.typ })
    .sign(await importJWK(key, 'RS256'));
}

function build() {
  const made = new Provider(issuer, {
    clients,
    jwks: { keys: signingKeys },
    cookies: { keys: ['weintervene-test-cookie-key'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    pkce: { required: () => true },
    // Scope claims (email, email_verified, name) in the ID token itself, as Google, Entra ID,
    // Clever and ClassLink put them (the provider's default keeps them for userinfo).
    conformIdTokenClaims: false,
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() { return { sub: id, ...(accounts.get(id) || {}) }; },
      };
    },
  });
  made.use(async (ctx, next) => {
    if (ctx.path === '/jwks') stats.jwks_requests += 1;
    if (ctx.path === '/token') stats.token_requests += 1;
    await next();
    if (ctx.path === '/token' && tamper && ctx.body && ctx.body.id_token) {
      const how = tamper;
      tamper = null;
      ctx.body = { ...ctx.body, id_token: await resign(ctx.body.id_token, how) };
    }
  });
  made.on('server_error', (ctx, err) => console.error('provider error', err));
  return made;
}

async function readJson(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return raw ? JSON.parse(raw) : {};
}

async function control(req, res) {
  const url = new URL(req.url, issuer);
  const answer = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'PUT' && url.pathname === '/__test/clients') {
    clients = (await readJson(req)).map((c) => ({
      token_endpoint_auth_method: 'client_secret_basic', response_types: ['code'],
      grant_types: ['authorization_code'], ...c,
    }));
    handler = build().callback();
    return answer(200, { clients: clients.length });
  }
  if (req.method === 'PUT' && url.pathname.startsWith('/__test/accounts/')) {
    accounts.set(decodeURIComponent(url.pathname.slice('/__test/accounts/'.length)), await readJson(req));
    return answer(200, { accounts: accounts.size });
  }
  if (req.method === 'POST' && url.pathname === '/__test/rotate-keys') {
    signingKeys = [await newKey(signingKeys.length + 1), ...signingKeys].slice(0, 2);
    handler = build().callback();
    return answer(200, { kids: signingKeys.map((k) => k.kid) });
  }
  if (req.method === 'POST' && url.pathname === '/__test/tamper-next') {
    tamper = (await readJson(req)).how;
    return answer(200, { tamper });
  }
  if (req.method === 'GET' && url.pathname === '/__test/stats') return answer(200, stats);
  return answer(404, { error: 'unknown control path' });
}

signingKeys = [await newKey(1)];
handler = build().callback();
server.on('request', (req, res) => {
  if (req.url.startsWith('/__test/')) {
    control(req, res).catch((err) => { res.writeHead(500); res.end(String(err)); });
    return;
  }
  handler(req, res);
});
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
