/**
 * HTML templating with escaping by default. Every interpolated value is escaped unless it is
 * already `Html` (the result of another template, or of `raw()`, the one greppable way out).
 */

/** A string of markup that is safe to send as is. */
export class Html {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}

/** A value a template accepts: text (escaped), markup, a list of them, or nothing. */
export type Child = Html | string | number | boolean | null | undefined | readonly Child[];

function render(value: Child): string {
  if (typeof value === "string") return Bun.escapeHTML(value);
  if (value instanceof Html) return value.value;
  // A number's text is digits, ".", "-", "+", "e" or a word (NaN, Infinity): nothing to escape.
  if (typeof value === "number") return String(value);
  if (value === null || value === undefined || typeof value === "boolean") return "";
  return value.map(render).join("");
}

/** The template tag: `html\`<p>${userText}</p>\`` escapes `userText`. */
export function html(strings: TemplateStringsArray, ...values: Child[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Marks trusted markup as safe. Never pass user input. */
export function raw(markup: string): Html {
  return new Html(markup);
}
