/**
 * Epochs: the identity of one history of events. Ids count from 1 within an epoch; a new sqlite
 * file, a new memory log, a flushed or emptied Redis each start a new epoch, so an id from
 * another history is never mistaken for a position in this one (Centrifuge's stream positions
 * pair an offset with an epoch for the same reason).
 *
 * On the wire an event's id is `<epoch>-<n>`, e.g. `k3f9q2xa-42`.
 */

/** Where a history stands: its epoch and an id in it (0 before the first event). */
export interface Position {
  epoch: string;
  id: number;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";
const ALPHABET = `${LETTERS}0123456789`;
/** 26 × 36^7 ≈ 2·10^12 epochs: a new one equal to an earlier one is not a practical risk. */
const LENGTH = 8;

/**
 * A new random epoch: 8 lowercase letters and digits, starting with a letter (so that no store
 * reads it back as a number, and it never contains the `-` that separates it from the id).
 */
export function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(LENGTH));
  let epoch = LETTERS[bytes[0]! % LETTERS.length]!;
  for (let i = 1; i < LENGTH; i++) epoch += ALPHABET[bytes[i]! % ALPHABET.length]!;
  return epoch;
}

/** The SSE id of event `id` of `epoch`. */
export function formatEventId(epoch: string, id: number): string {
  return `${epoch}-${id}`;
}

const EVENT_ID = /^([a-z][a-z0-9]{0,31})-(0|[1-9][0-9]{0,15})$/;

/**
 * A `Last-Event-ID` as a position, or `null` when it is not one herald gave (a plain number from before epochs
 * included).
 */
export function parseEventId(value: string): Position | null {
  const match = EVENT_ID.exec(value);
  if (!match) return null;
  const id = Number(match[2]);
  return Number.isSafeInteger(id) ? { epoch: match[1]!, id } : null;
}
