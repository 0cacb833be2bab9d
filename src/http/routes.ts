/**
 * Every declared HTTP endpoint of the bridge, in one list (the receivers' paths come from
 * config). The paths are disjoint; express tries them in this order, so the platform's
 * pushes — the busiest — come first.
 */
import { endpoints as adminPage } from "../admin/Web.js"
import { jsondata } from "../api/routes.js"
import { endpoints as boxEndpoints } from "../box/routes.js"
import { endpoints as callbacks } from "../callbacks/routes.js"
import type { AppConfigShape } from "../config/AppConfig.js"
import { endpoints as flows } from "../flows/routes.js"
import { endpoints as receivers } from "../receive/routes.js"
import { endpoints as recordings } from "../recordings/routes.js"
import type { Endpoint } from "./Endpoint.js"
import { endpoints as health } from "./health.js"
import { documentEndpoint } from "./OpenApi.js"
import type { Route } from "./Route.js"
import { endpoints as workorders } from "../workorders/routes.js"

export const endpoints: ReadonlyArray<Endpoint> = [...receivers, jsondata, ...health, documentEndpoint(() => endpoints), ...recordings, ...boxEndpoints, ...callbacks, ...flows, ...workorders, ...adminPage]

export const routesFor = (config: AppConfigShape): ReadonlyArray<Route> => endpoints.map((e) => e.route(config))
