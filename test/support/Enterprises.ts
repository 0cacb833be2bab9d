/** A second enterprise with its administrator, as `npm start -- user add <extension> --admin` makes one, on a running test server. */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Passwords } from "../../src/auth/Passwords.js"
import { EXTE_STATUS, ExtensionsRepo } from "../../src/extensions/ExtensionsRepo.js"
import type { RunningServer } from "../../src/http/Server.js"

export const addEnterpriseAdmin = (server: RunningServer, extension: string, password: string) =>
  server.runtime.runPromise(
    Effect.gen(function* () {
      const repo = yield* ExtensionsRepo
      const passwords = yield* Passwords
      const sql = yield* SqlClient.SqlClient
      const password_hash = yield* passwords.hashPlain(password)
      const comp = extension.slice(0, 6)
      yield* sql.withTransaction(
        Effect.zipRight(repo.ensureEnterprise(comp, comp), repo.insert(comp, Number(extension.slice(6)), { password_hash, name: extension, status: EXTE_STATUS.admin }))
      )
    })
  )
