// A real OpenID provider for the tests (the npm package oidc-provider, OpenID
// Certified), on 127.0.0.1: one confidential client (jitsudod), four people with
// groups, and a sign-in form with an "MFA" box that sets amr/acr as a second factor
// would. Test hooks under /test/ (this is a test double, never a product):
//   /test/next?mutate=aud|expired|unknown-key|tampered  the next token response's ID
//       token is re-signed with that fault;
//   /test/last-callback  the last authorization response sent to the client.
// Environment: OIDC_PORT, OIDC_CLIENT_SECRET, OIDC_REDIRECT, OIDC_KID (the signing
// key's id: restarting with another one is a key rotation).
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const kid = process.env.OIDC_KID || 'key-1';

const people = {
  alice: ['dev'],
  bob: ['sre'],
  carol: ['sre', 'dba'],
  dave: [],
};

async function rsaKey(id) {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: id, alg: 'RS256', use: 'sig' };
}
const signing = await rsaKey(kid);
const stranger = await rsaKey('not-published');

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'jitsudod',
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: [process.env.OIDC_REDIRECT],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }, {
    // jitsudoctl login: a public client for the device authorization grant.
    client_id: 'jitsudoctl',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
    response_types: [],
    redirect_uris: [],
  }],
  jwks: { keys: [signing] },
  pkce: { required: () => true, methods: ['S256'] },
  scopes: ['openid', 'profile'],
  // acr and amr in the ID token (oidc-provider puts only claims a scope names there).
  claims: { openid: ['sub', 'acr', 'amr', 'auth_time'], profile: ['preferred_username', 'groups'] },
  conformIdTokenClaims: false,
  acrValues: ['pwd', 'mfa'],
  features: {
    devInteractions: { enabled: false },
    // The provider's own pages, plain: its defaults load a web font from the internet.
    deviceFlow: {
      enabled: true,
      userCodeInputSource: (ctx, form) => { ctx.body = page('Enter the code', form + '<button type="submit" id="code-submit" form="op.deviceInputForm">Continue</button>'); },
      userCodeConfirmSource: (ctx, form, client, info, code) => { ctx.body = page('Confirm', `<p id="user-code">${code}</p>${form}<button type="submit" id="confirm" form="op.deviceConfirmForm">Continue</button>`); },
      successSource: (ctx) => { ctx.body = page('Signed in', '<p id="device-done">Signed in; return to your terminal.</p>'); },
    },
  },
  renderError: (ctx, out) => { ctx.type = 'html'; ctx.body = page('Error', `<p id="provider-error">${JSON.stringify(out).replace(/</g, '&lt;')}</p>`); },
  logoutSource: (ctx, form) => { ctx.body = page('Sign out', form + '<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>'); },
  postLogoutSuccessSource: (ctx) => { ctx.body = page('Signed out', '<p>Signed out.</p>'); },
  cookies: { keys: ['test-cookie-key-not-secret'] },
  ttl: { IdToken: 3600, AccessToken: 3600, Session: 3600, Interaction: 600, Grant: 3600 },
  findAccount: (ctx, id) => (id in people ? {
    accountId: id,
    claims: () => ({ sub: id, preferred_username: id, groups: people[id] }),
  } : undefined),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // Consent is not what is tested: every sign-in of this client is granted its scopes.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile');
    grant.addOIDCClaims(['preferred_username', 'groups']);
    await grant.save();
    return grant;
  },
});

let mutate = null;
let lastCallback = '';

function page(title, body) {
  return `<!DOCTYPE html><html><head><title>Test provider: ${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;
}

function form(uid, prompt) {
  return `<!DOCTYPE html><html><head><title>Test provider: sign in</title></head><body>
<h1>Test provider</h1><p id="prompt">${prompt}</p>
<form method="post" action="/interaction/${uid}/login">
<input id="login" name="login" autocomplete="off">
<label><input type="checkbox" id="mfa" name="mfa" value="1"> second factor (MFA)</label>
<button type="submit" id="submit">Sign in</button></form></body></html>`;
}

async function body(ctx) {
  let text = '';
  for await (const chunk of ctx.req) text += chunk;
  return new URLSearchParams(text);
}

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const unb64 = (s) => JSON.parse(Buffer.from(s, 'base64url').toString());

async function resign(idToken, how) {
  const claims = unb64(idToken.split('.')[1]);
  const now = Math.floor(Date.now() / 1000);
  let key = signing;
  if (how === 'aud') claims.aud = 'someone-else';
  if (how === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
  if (how === 'unknown-key') key = stranger;
  const priv = await jose.importJWK(key, 'RS256');
  const jwt = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
    .sign(priv);
  if (how === 'tampered') {
    const [h, , s] = jwt.split('.');
    return `${h}.${b64({ ...claims, preferred_username: 'carol', groups: ['sre', 'admin'] })}.${s}`;
  }
  return jwt;
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/test/next') {
    mutate = ctx.query.mutate || null;
    ctx.body = { mutate };
    return;
  }
  if (ctx.path === '/test/last-callback') {
    ctx.body = { url: lastCallback };
    return;
  }
  const m = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (m) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (!m[2] && ctx.method === 'GET') {
      ctx.type = 'html';
      ctx.body = form(details.uid, details.prompt.name);
      return;
    }
    if (m[2] && ctx.method === 'POST') {
      const p = await body(ctx);
      const login = p.get('login');
      if (!(login in people)) {
        ctx.type = 'html';
        ctx.body = form(details.uid, 'unknown person');
        return;
      }
      const mfa = p.get('mfa') === '1';
      const result = { login: { accountId: login, amr: mfa ? ['pwd', 'otp'] : ['pwd'], acr: mfa ? 'mfa' : 'pwd', remember: true } };
      const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(to);
      return;
    }
  }
  await next();
  const loc = ctx.response.get('location');
  if (loc && loc.startsWith(process.env.OIDC_REDIRECT)) lastCallback = loc;
  if (ctx.path === '/token' && ctx.method === 'POST' && ctx.status === 200 && mutate && ctx.body && ctx.body.id_token) {
    const how = mutate;
    mutate = null;
    ctx.body = { ...ctx.body, id_token: await resign(ctx.body.id_token, how) };
  }
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer} ${kid}`);
});
