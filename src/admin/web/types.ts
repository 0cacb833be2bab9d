/** The admin API's answers as the page reads them (src/admin/Api.ts and schemas/admin.ts declare them). */
export interface Attempt {
  readonly n: number
  readonly at: string
  readonly status: number | null
  readonly latencyMs: number
  readonly error: string | null
  readonly response: string | null
}

export interface EventItem {
  readonly id: number
  readonly type: string
  readonly occurredAt: string
  readonly enterprise: string | null
  readonly source: string
  readonly data: unknown
  readonly raw?: string | null
  readonly unreadable?: true
}

export interface DeliveryItem {
  readonly id: number
  readonly target: string
  readonly url?: string
  readonly status: string
  readonly reason: string | null
  readonly webhookId: string
  readonly lastError: string | null
  readonly nextAttemptAt: string | null
  readonly held?: boolean | null
  readonly updatedAt: string
  readonly event: EventItem
  readonly attempts: ReadonlyArray<Attempt>
}

export interface Page<A> {
  readonly items: ReadonlyArray<A>
  readonly next?: number
}

/** what the lead's circuit work adds to a target's answer (absent before it) */
export interface Circuit {
  readonly state: string
  readonly openUntil?: string | number | null
  readonly failures?: number
}

export interface Target {
  readonly name: string
  readonly url: string
  readonly events: ReadonlyArray<string>
  readonly format: "json" | "800ing" | "form"
  readonly transform?: string
  readonly headers: Readonly<Record<string, string>>
  readonly secret?: string
  readonly timeoutMs: number
  readonly retry: { readonly scheduleMs: ReadonlyArray<number> }
  readonly concurrency: number
  readonly rateLimit?: number
  readonly enabled: boolean
  readonly autoDisable: boolean
  readonly circuit?: Circuit
  /** config: the config file's (changed there, not here: only paused and resumed); api: made here */
  readonly origin?: "config" | "api"
}

export interface LiveChannel {
  readonly ch: number
  readonly extension: string | null
  readonly state: number
  readonly stateText: string
  readonly phone: string
  readonly timelen: number | null
  readonly peer: number | null
  readonly serial: string | null
  readonly changedAt: number
}

export interface Device {
  readonly mac: string
  readonly enterprise: string | null
  readonly pending: boolean
  readonly channels: Readonly<Record<string, string>>
  readonly origin: string
  readonly lastAddress: string | null
  readonly lastSeenAt: number | null
  readonly presence: "online" | "offline" | "unseen"
  readonly alert: string | null
  readonly live: ReadonlyArray<LiveChannel>
}

export interface CaptureStatus {
  readonly enabled: boolean
  readonly file: string
  readonly keepCredentials: boolean
  readonly records: number
  readonly failures: number
}
