/**
 * Who may subscribe to and publish to which channel: every such decision is made here.
 *
 * Defaults:
 * - subscribe: `everyone` and public topics: anyone (signed in or not, unless `HERALD_ANONYMOUS=off`);
 *   a user channel: only that user; a group channel: only its members; a private topic
 *   (`HERALD_PRIVATE_TOPICS`): only members of `admins`.
 * - publish: an API token: any channel; a signed-in user: any user channel and any public topic;
 *   `everyone`, a group or a private topic: members of `admins` only; anonymous: nothing.
 *
 * Apps that embed herald pass an `authorize` hook, which sees the default decision and returns
 * its own.
 */
import { channelKind, channelName, type Channel } from "../core/channel.ts";
import { HttpError } from "./errors.ts";
import type { User } from "./session.ts";

/** Who is asking. */
export type Principal =
  | { kind: "anonymous" }
  | { kind: "user"; user: User }
  /** A publish API token; `label` is safe to log (`token#1`), the token itself never is. */
  | { kind: "token"; label: string }
  /** A JSON Web Token used for the API: it may publish where its `herald.publish` patterns allow, nowhere else. */
  | { kind: "jwt"; label: string; publish: readonly string[] }
  /** herald itself, publishing for one of its features (`orders`, `inventory`). */
  | { kind: "system"; label: string };

export type Action = "subscribe" | "publish";

/**
 * The hook for apps that embed herald: called for every decision with herald's own default.
 * Return `true` to allow, `false` to refuse.
 */
export type AuthorizeHook = (principal: Principal, action: Action, channel: Channel, byDefault: boolean) => boolean;

/** The group whose members may send to everyone and to groups, and read private topics. */
export const ADMINS = "admins";

export interface PolicyOptions {
  /** Whether anonymous visitors may subscribe at all. Defaults to `true`. */
  anonymous?: boolean;
  /** Private topic patterns; `*` matches any run of characters. Defaults to none. */
  privateTopics?: readonly string[];
  /** Topic patterns whose members are public (presence); `*` matches any run of characters. Defaults to none. */
  presenceTopics?: readonly string[];
  /** Overrides decisions; see `AuthorizeHook`. */
  authorize?: AuthorizeHook;
}

function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`);
}

/** The principal for a request's verified user, or anonymous. */
export function principalOf(user: User | null): Principal {
  return user ? { kind: "user", user } : { kind: "anonymous" };
}

export class Policy {
  readonly #anonymous: boolean;
  readonly #private: RegExp[];
  readonly #presence: RegExp[];
  readonly #hook: AuthorizeHook | undefined;

  constructor(options: PolicyOptions = {}) {
    this.#anonymous = options.anonymous ?? true;
    this.#private = (options.privateTopics ?? []).map(patternToRegExp);
    this.#presence = (options.presenceTopics ?? []).map(patternToRegExp);
    this.#hook = options.authorize;
  }

  readonly #patterns = new Map<string, RegExp>();

  /** Whether `channel` matches one of a token's channel patterns (`*` matches any run of characters). */
  #granted(patterns: readonly string[], channel: Channel): boolean {
    return patterns.some((pattern) => {
      let regexp = this.#patterns.get(pattern);
      if (!regexp) {
        regexp = patternToRegExp(pattern);
        if (this.#patterns.size < 10_000) this.#patterns.set(pattern, regexp);
      }
      return regexp.test(channel);
    });
  }

  /** Whether a topic's members are public: `GET /api/presence` lists them, and it gets `join`/`leave` events. */
  isPresenceTopic(name: string): boolean {
    return this.#presence.some((pattern) => pattern.test(name));
  }

  /** Whether a topic name matches a private pattern. */
  isPrivateTopic(name: string): boolean {
    return this.#private.some((pattern) => pattern.test(name));
  }

  #byDefault(principal: Principal, action: Action, channel: Channel): boolean {
    if (principal.kind === "token" || principal.kind === "system") return action === "publish";
    if (principal.kind === "jwt") return action === "publish" && this.#granted(principal.publish, channel);
    // A token's grants add to what its user may do by default.
    if (principal.kind === "user" && principal.user.grants && this.#granted(principal.user.grants[action], channel))
      return true;
    const user = principal.kind === "user" ? principal.user : null;
    const admin = user?.groups.includes(ADMINS) ?? false;
    const kind = channelKind(channel);
    const name = channelName(channel);
    if (action === "subscribe") {
      if (!user && !this.#anonymous) return false;
      if (kind === "everyone") return true;
      if (kind === "topic") return !this.isPrivateTopic(name) || admin;
      if (kind === "user") return user?.id === name;
      return user?.groups.includes(name) ?? false;
    }
    if (!user) return false;
    if (kind === "user") return true;
    if (kind === "topic") return !this.isPrivateTopic(name) || admin;
    return admin;
  }

  /** Whether `principal` may do `action` on `channel`. */
  allows(principal: Principal, action: Action, channel: Channel): boolean {
    const byDefault = this.#byDefault(principal, action, channel);
    return this.#hook ? this.#hook(principal, action, channel, byDefault) : byDefault;
  }

  /** Throws 401 (anonymous) or 403 with a message naming the channel when `allows` says no. */
  check(principal: Principal, action: Action, channel: Channel): void {
    if (this.allows(principal, action, channel)) return;
    if (principal.kind === "anonymous") {
      throw new HttpError(
        401,
        action === "publish" ? "Sign in to send notifications." : `Sign in to follow ${channel}.`,
      );
    }
    throw new HttpError(
      403,
      action === "publish" ? `You may not send to ${channel}.` : `You may not follow ${channel}.`,
    );
  }
}
