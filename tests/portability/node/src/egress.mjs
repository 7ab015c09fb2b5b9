// The egress hook: the component's `wasi:http/outgoing-handler` import is mapped here instead of
// to the shim, so every request the component makes passes the host's policy first. The same
// promise as the Rust host's: only the host the validated configuration resolved, https only,
// a method from the allow-list, the Basic credential attached here (never by the component,
// which never sees it), per-request timeouts, requests paced to the organization's rate.

import { outgoingHandler as shimHandler, types } from '@bytecodealliance/preview2-shim/http';

const ALLOWED_METHODS = new Set(['get', 'head', 'post', 'put', 'patch', 'delete']);
const encoder = new TextEncoder();

/** The policy of the current tenant; `null` refuses everything (fail closed). */
let policy = null;

/**
 * @param {{
 *   hosts: string[],               // what the component declared, intersected with the operator's grants
 *   credentialHost: string,        // the API host of the validated configuration: the only one given the credential
 *   authorization: string | null,  // the `Authorization` value the host attaches there, or null
 *   redirect: string | null,       // `127.0.0.1:PORT` of an emulator (development only), or null
 *   timeoutMs: number,             // per-request timeout
 *   limiter: import('./limiter.mjs').OrgLimiter,
 * }} p
 */
export function setEgressPolicy(p) {
  policy = { ...p, denials: [], sent: 0 };
  return policy;
}

export function clearEgressPolicy() {
  policy = null;
}

function deny(why) {
  policy?.denials.push(why);
  // The component sees the request refused; the reason stays with the host (it may name hosts
  // the plugin should not learn about).
  throw { tag: 'HTTP-request-denied' };
}

/** Checks the request against the policy; returns its host. */
function check(request) {
  if (!policy) deny('no egress policy is set');
  const scheme = request.scheme();
  if (scheme?.tag !== 'HTTPS') deny(`scheme ${scheme?.tag ?? 'none'} refused: https only`);
  const authority = request.authority() ?? '';
  const host = authority.endsWith(':443') ? authority.slice(0, -4) : authority;
  if (!policy.hosts.includes(host)) {
    deny(`host ${JSON.stringify(authority)} is not granted (only ${policy.hosts.join(', ')})`);
  }
  const method = request.method();
  if (!ALLOWED_METHODS.has(method.tag)) deny(`method ${String(method.val ?? method.tag).toUpperCase()} refused`);
  const headers = request.headers();
  for (const name of ['authorization', 'proxy-authorization', 'host']) {
    if (headers.has(name)) deny(`the plugin set its own ${name} header`);
  }
  return host;
}

/** Request options with the host's timeouts; the plugin's own may only be shorter. */
function options(theirs) {
  const ns = BigInt(policy.timeoutMs) * 1_000_000n;
  const opts = new types.RequestOptions();
  const pick = (get) => {
    const v = theirs ? get(theirs) : undefined;
    return v !== undefined && v < ns ? v : ns;
  };
  opts.setConnectTimeout(pick((o) => o.connectTimeout()));
  opts.setFirstByteTimeout(pick((o) => o.firstByteTimeout()));
  opts.setBetweenBytesTimeout(pick((o) => o.betweenBytesTimeout()));
  return opts;
}

export const outgoingHandler = {
  handle(request, requestOptions) {
    const host = check(request);
    policy.limiter.acquire();
    // The request's header list is closed to the component once the request exists; the host
    // adds its own entries to the list the shim sends.
    const entries = request.headers().entries();
    if (policy.authorization && host === policy.credentialHost) {
      entries.push(['authorization', encoder.encode(policy.authorization)]);
    }
    if (policy.redirect) {
      // The component built a real Gladly URL; it goes to the emulator instead. The shim's
      // client takes the Host header from the authority and can only append another, so the
      // emulator sees its own address as Host (and files the requests under its default
      // organization). Against Gladly, Host is the API host, as the component built it.
      request.setScheme({ tag: 'HTTP' });
      request.setAuthority(policy.redirect);
    }
    policy.sent += 1;
    const future = shimHandler.handle(request, options(requestOptions));
    const limiter = policy.limiter;
    const get = future.get.bind(future);
    future.get = () => {
      const ready = get();
      const response = ready?.tag === 'ok' && ready.val?.tag === 'ok' ? ready.val.val : undefined;
      if (response) {
        const [retryAfter] = response.headers().get('retry-after');
        limiter.observe(response.status(), retryAfter && new TextDecoder().decode(retryAfter));
      }
      return ready;
    };
    return future;
  },
};
