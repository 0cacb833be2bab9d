/** `npm run bench [-- name …]`: runs the registered benchmarks and prints their figures. */
import { benches } from "./index.js"

const wanted = process.argv.slice(2)
const selected = wanted.length === 0 ? benches.filter((b) => !b.only) : benches.filter((b) => wanted.includes(b.name))
if (selected.length === 0) {
  process.stderr.write(`no such benchmark: ${wanted.join(", ")} (have: ${benches.map((b) => b.name).join(", ")})\n`)
  process.exit(2)
}
for (const bench of selected) {
  const started = Date.now()
  process.stdout.write(`== ${bench.name}\n`)
  const lines = await bench.run()
  for (const line of lines) process.stdout.write(`${line}\n`)
  process.stdout.write(`   (${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
}
