// Referral statuses (modelled on FHIR Task) and closing outcomes, as the referrals API names them.
export const STATUSES = ["requested", "received", "accepted", "rejected", "in-progress", "on-hold", "completed", "cancelled", "failed"];
export const CLOSED = ["rejected", "completed", "cancelled", "failed"];
export const OUTCOMES = [["", "No outcome"], ["connected", "Connected"], ["could_not_contact", "Could not contact"], ["not_eligible", "Not eligible"], ["no_capacity", "No capacity"], ["no_longer_interested", "No longer interested"]];
