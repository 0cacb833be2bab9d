/** Every HTTP route of the bridge, in one list. */
import { routes as jsondata } from "../api/routes.js"
import { routes as recordings } from "../recordings/routes.js"
import { routes as health } from "./health.js"
import type { Route } from "./Route.js"

export const routes: ReadonlyArray<Route> = [...health, ...jsondata, ...recordings]
