/**
 * Reading browser form bodies into plain fields, once, at the edge.
 */
import { HttpError } from "./errors.ts";

/** Text fields of a form post; a field given twice keeps its first value. */
export type FormFields = Record<string, string>;

const FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data"];

/** Parses a urlencoded or multipart body. 415 for another content type, 400 for a malformed body. */
export async function readForm(req: Request): Promise<FormFields> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (!FORM_TYPES.includes(type)) {
    throw new HttpError(415, `Send this form as application/x-www-form-urlencoded or multipart/form-data, not ${type || "a body without a content type"}.`);
  }
  const data = await req.formData().catch(() => {
    throw new HttpError(400, "The form data could not be read: the body is malformed.");
  });
  const fields: FormFields = {};
  for (const [name, value] of data.entries()) {
    if (typeof value !== "string") throw new HttpError(400, `The field "${name}" is a file; this form takes only text.`);
    if (!(name in fields)) fields[name] = value;
  }
  return fields;
}
