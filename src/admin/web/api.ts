/**
 * The page's one way to the admin API: the bearer token the operator typed, kept for this
 * browser tab's session only (sessionStorage), never in a cookie — so no other site's page can
 * make the browser send it.
 */
const KEY = "voip-bridge.admin-token"

export const session = {
  token: (): string | null => sessionStorage.getItem(KEY),
  set: (token: string) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY)
}

/** A refusal: the contract's code and message, or the HTTP status when there is no JSON. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | undefined,
    message: string
  ) {
    super(message)
  }
}

let signedOut: () => void = () => undefined
/** What to do when the token is refused (it was changed on the server, or mistyped). */
export const onSignedOut = (f: () => void) => {
  signedOut = f
}

const request = async (method: string, path: string, body: unknown, token: string | null): Promise<Response> =>
  fetch(`/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${token ?? ""}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })

const refusal = (status: number, value: unknown): ApiError | undefined => {
  const coded = typeof value === "object" && value !== null && "code" in value ? (value as { code: unknown; message?: unknown }) : undefined
  const code = typeof coded?.code === "number" ? coded.code : undefined
  if (status < 400 && (code === undefined || code === 0)) return undefined
  return new ApiError(status, code, typeof coded?.message === "string" ? coded.message : `HTTP ${status}`)
}

/** A JSON call; a coded refusal (any HTTP status) is thrown as ApiError. */
export const api = async <A>(method: string, path: string, body?: unknown, token = session.token()): Promise<A> => {
  const res = await request(method, path, body, token)
  const text = await res.text()
  let value: unknown
  try {
    value = text === "" ? {} : JSON.parse(text)
  } catch {
    throw new ApiError(res.status, undefined, `HTTP ${res.status}`)
  }
  const failed = refusal(res.status, value)
  if (failed) {
    if (res.status === 401) signedOut()
    throw failed
  }
  return value as A
}

/** A file answer (the capture), saved by the browser under `name`. */
export const download = async (path: string, name: string) => {
  const res = await request("GET", path, undefined, session.token())
  if (!res.ok) {
    const text = await res.text()
    let value: unknown = {}
    try {
      value = JSON.parse(text)
    } catch {
      // not JSON: the status says enough
    }
    throw refusal(res.status, value) ?? new ApiError(res.status, undefined, `HTTP ${res.status}`)
  }
  const url = URL.createObjectURL(await res.blob())
  const a = document.createElement("a")
  a.href = url
  a.download = name
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

/** A query string of the values that are set. */
export const query = (params: Readonly<Record<string, string | number | undefined>>) => {
  const s = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") s.set(k, String(v))
  const text = s.toString()
  return text === "" ? "" : `?${text}`
}
