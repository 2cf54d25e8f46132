// Who is signed in (from GET /api/v1/me), kept in memory only: never in
// localStorage/sessionStorage, so nothing outlives the tab or the session.
import { api } from "./api.js";

let current = null;
// The provider's sign-out address after signing out of a single sign-on session (memory only).
let providerSignOut = null;

export function setProviderSignOut(url) {
  providerSignOut = url || null;
}

export function takeProviderSignOut() {
  const url = providerSignOut;
  providerSignOut = null;
  return url;
}

export const ROLE_NAMES = {
  teacher: "Teacher / staff",
  school_admin: "School admin",
  district_admin: "District admin",
  program_staff: "Program staff",
  program_admin: "Program admin",
  operator: "Platform operator",
  auditor: "Auditor",
};

export function me() {
  return current;
}

export function setMe(value) {
  current = value;
}

/** Ask the API who we are; null when not signed in (401 is expected here). */
export async function loadMe() {
  try {
    current = await api.get("/api/v1/me", undefined, { allow401: true });
  } catch (err) {
    if (err.status === 401) current = null;
    else throw err;
  }
  return current;
}

export function hasRole(...roles) {
  return !!current && roles.includes(current.role);
}
