/** Before any test file: dist/ built from the sources as they are now (the processes tests start run it, as `npm start` does). */
// @ts-expect-error -- a plain ES module of the build, without type declarations
import { buildDist } from "../../scripts/build.mjs"

export default async function setup() {
  await buildDist()
}
