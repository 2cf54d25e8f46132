// Referral statuses (modelled on FHIR Task) and closing outcomes, as the referrals API names them.
export const STATUSES = ["requested", "received", "accepted", "rejected", "in-progress", "on-hold", "completed", "cancelled", "failed"];
/** Follow-up due: still open and its follow-up date has come (the API's own filter is ?due=true). */
export function isDue(r) {
  if (r.follow_up_due !== undefined) return !!r.follow_up_due;
  if (!r.follow_up_on || CLOSED.includes(r.status)) return false;
  return r.follow_up_on <= new Date().toISOString().slice(0, 10);
}

export const CLOSED = ["rejected", "completed", "cancelled", "failed"];
export const OUTCOMES = [["", "No outcome"], ["connected", "Connected"], ["could_not_contact", "Could not contact"], ["not_eligible", "Not eligible"], ["no_capacity", "No capacity"], ["no_longer_interested", "No longer interested"]];
