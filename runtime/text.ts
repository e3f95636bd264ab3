// Text from a peer that is not trusted, made fit to store: cut to a length, marked where cut.

/** `text` cut to at most `max` UTF-16 code units, its end marked with an ellipsis when cut (never a lone half of a surrogate pair). */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1; // the high half of a pair whose low half is cut
  return `${text.slice(0, end)}…`;
}

/** Control characters (C0, DEL, C1): but for tab and newline nothing a reader wants, and six bytes each once JSON escapes them. */
const CONTROL = /\p{Cc}/gu;

/**
 * Text from a peer as it may be stored: without control characters (but tab and newline), cut to
 * `max` code units. Stored as JSON it takes at most 3 bytes per code unit.
 */
export function storableText(text: string, max: number): string {
  return clip(text.replace(CONTROL, (char) => (char === '\t' || char === '\n' ? char : '')), max);
}
