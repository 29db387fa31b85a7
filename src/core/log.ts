/**
 * What the core writes to a log: the server's logger fits it, and so does `console`-like code of
 * an app that uses the hub on its own.
 */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Log {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}
