// The languages families can be written to: the catalogs of services/referrals/locale/ (the
// server's localization.SHIPPED; tests/unit/test_share_languages.py keeps the two lists equal).
// What the share dialog says before sending: which language each contact will receive,
// the nearest shipped one when theirs is not, and that the directory's own texts stay in the
// language they were written in.

export const SHIPPED = [
  ["en", "English"], ["es", "Spanish"], ["ar", "Arabic"], ["zh", "Chinese (Simplified)"], ["vi", "Vietnamese"],
  ["ht", "Haitian Creole"], ["so", "Somali"], ["ru", "Russian"], ["pt", "Portuguese"], ["tl", "Tagalog"], ["ko", "Korean"],
];
// The language the directory's names, descriptions and hours notes are written in.
export const DIRECTORY_LANGUAGE = "en";
const ALIASES = { fil: "tl", cmn: "zh", hat: "ht", som: "so" };
const NAMES = Object.fromEntries(SHIPPED);

/** "es-MX" -> "es"; "fil" -> "tl"; null when not shipped (as localization.normalise). */
export function shipped(code) {
  if (!code) return null;
  let base = String(code).trim().replace("_", "-").split("-")[0].toLowerCase();
  base = ALIASES[base] || base;
  return NAMES[base] ? base : null;
}

/** A language's English name for the sharer: "Arabic", or the code when we do not know it. */
export function languageName(code) {
  const known = shipped(code);
  if (known) return NAMES[known];
  try {
    return new Intl.DisplayNames(["en"], { type: "language" }).of(String(code)) || String(code).toUpperCase();
  } catch {
    return String(code).toUpperCase();
  }
}

/** What one contact receives: {code, note}. The sharer's choice wins; else the contact's
 * preferred language if shipped, else their second language if recorded, else English,
 * and the note says so (never silently). */
export function received(contact, chosen) {
  if (chosen) return { code: chosen, note: "" };
  const preferred = contact.preferred_language;
  const own = shipped(preferred);
  if (own || !preferred) return { code: own || "en", note: "" };
  const second = shipped(contact.second_language);
  const code = second || "en";
  const why = second ? "their second language" : "the nearest we have";
  return { code, note: `${languageName(preferred)} is not available: they will receive ${languageName(code)} (${why})` };
}

/** "Receives Arabic; the services' own details stay in English, and the message says so." */
export function receivedText(contact, chosen) {
  const { code, note } = received(contact, chosen);
  const parts = [note || `receives ${languageName(code)}`];
  if (code !== DIRECTORY_LANGUAGE) {
    parts.push(`the services' own names and descriptions exist only in ${languageName(DIRECTORY_LANGUAGE)}; the message says so in ${languageName(code)}`);
  }
  return parts.join("; ");
}
