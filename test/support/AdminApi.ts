/** The admin JSON API as an operator calls it: the bearer token from the data directory's file. */
import * as fs from "node:fs"
import * as path from "node:path"

export const adminToken = (server: { readonly dataDir: string }) => fs.readFileSync(path.join(server.dataDir, "admin-token"), "utf8").trim()

/** `method` `/admin/api<p>` with a JSON body when one is given; the status and the JSON answer. */
export const adminApi = async (server: { readonly url: string; readonly dataDir: string }, method: string, p: string, body?: unknown) => {
  const res = await fetch(`${server.url}/admin/api${p}`, {
    method,
    headers: { authorization: `Bearer ${adminToken(server)}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}
