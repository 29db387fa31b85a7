/**
 * herald as a library: `createHerald`, the hub it runs on, and the `html` tag its fragments are
 * written with. See docs/publishing.md#library-api.
 *
 * @module
 */
export {
  createHerald,
  type Handler,
  type HandleOptions,
  type HeraldApp,
  type HeraldOptions,
  type Method,
  type Route,
  type RouteTable,
  type Service,
} from "./server/app.ts";
export { loadConfig, type Config } from "./server/config.ts";
export type { AppContext } from "./server/context.ts";
export type { PageDefinition, PageSpec } from "./server/pages.ts";
export type { Action, AuthorizeHook, Principal } from "./server/policy.ts";
export type { User } from "./server/session.ts";
export { Hub, type Publication, type PublishResult } from "./core/hub.ts";
export { EVERYONE, groupChannel, topicChannel, userChannel, type Channel } from "./core/channel.ts";
export { html, raw, type Html } from "../views/html.ts";
