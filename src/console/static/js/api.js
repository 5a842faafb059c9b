/* global location */
/**
 * Reads /api/v1 with the session cookie (sent by the browser, never seen
 * here: it is HttpOnly). A 401 means the session is gone: the browser goes
 * to the login page and the caller's promise never settles.
 */

/** A problem document (RFC 9457) the API answered with. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && typeof problem.detail === 'string' ? problem.detail : `the API answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** GET `path` with the query `params` (empty values left out); resolves to the parsed JSON body. */
export async function getJson(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (res.status === 401) {
    location.assign('/console/login');
    return new Promise(() => {});
  }
  if (!res.ok) {
    const problem = await res.json().catch(() => ({ detail: `the API answered ${res.status} ${res.statusText}` }));
    throw new ApiError(res.status, problem);
  }
  return res.json();
}

/** Why a section could not be shown, in words for the page. */
export function describeError(err) {
  if (err instanceof ApiError && err.status === 403) return `Your role may not read this: ${err.message}.`;
  if (err instanceof ApiError) return err.message;
  return `The console could not read the API: ${err && err.message ? err.message : String(err)}`;
}
