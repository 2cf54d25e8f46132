// The public JSON API, exactly as every other client uses it. The session is
// the HttpOnly cookie; unsafe methods echo the wi_csrf cookie in X-CSRF-Token.

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `Request failed (${status}).`);
    this.status = status;
    this.code = error.code || "error";
    this.details = error.details || null;
  }
}

/** Raised (and broadcast) when the session is gone: the app sends the user to sign in. */
export class SessionExpired extends ApiError {}

function csrfToken() {
  const match = document.cookie.split("; ").find((c) => c.startsWith("wi_csrf="));
  return match ? decodeURIComponent(match.slice("wi_csrf=".length)) : "";
}

export function query(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    for (const v of [].concat(value)) search.append(key, String(v));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// How many API calls are in flight, on <html data-pending="n">: lets a person's
// tools (and our browser tests) know when the page has settled.
let pending = 0;
document.documentElement.dataset.pending = "0";
function track(delta) {
  pending += delta;
  document.documentElement.dataset.pending = String(pending);
}

export async function request(method, path, opts = {}) {
  track(1);
  try {
    return await send(method, path, opts);
  } finally {
    track(-1);
  }
}

async function send(method, path, { body, params, contentType, allow401 = false, headers: extra = {} } = {}) {
  const headers = { ...extra, Accept: "application/json" };
  let payload;
  if (body !== undefined) {
    if (body instanceof FormData) {
      payload = body; // the browser writes multipart/form-data with its boundary
    } else if (contentType) {
      headers["Content-Type"] = contentType;
      payload = body;
    } else {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers["X-CSRF-Token"] = csrfToken();
  let response;
  try {
    response = await fetch(path + query(params), { method, headers, body: payload, credentials: "same-origin", cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, { error: { code: "network", message: "The server could not be reached. Check your connection and try again." } });
  }
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("application/json") ? await response.json().catch(() => null) : await response.text();
  if (response.ok) return data;
  if (response.status === 401 && !allow401) {
    const err = new SessionExpired(401, data);
    window.dispatchEvent(new CustomEvent("wi:session-expired", { detail: err }));
    throw err;
  }
  throw new ApiError(response.status, typeof data === "object" ? data : null);
}

export const api = {
  get: (path, params, opts) => request("GET", path, { params, ...opts }),
  post: (path, body, opts) => request("POST", path, { body, ...opts }),
  put: (path, body, opts) => request("PUT", path, { body, ...opts }),
  patch: (path, body, opts) => request("PATCH", path, { body, ...opts }),
  del: (path, opts) => request("DELETE", path, opts),
};

/** Every item of a paged list endpoint (bounded: at most maxPages pages). */
export async function allPages(path, params = {}, maxPages = 20) {
  const items = [];
  for (let page = 1; page <= maxPages; page += 1) {
    const data = await api.get(path, { ...params, page });
    const batch = (data && data.items) || [];
    items.push(...batch);
    const total = data && typeof data.total === "number" ? data.total : items.length;
    if (!batch.length || items.length >= total) break;
  }
  return items;
}

/** A same-origin href for a CSV/HTML download of an API endpoint. */
export function href(path, params) {
  return path + query(params);
}
