/** Another process holding a SQLite database's write lock, as a second bridge or a backup tool would. */
import { spawn } from "node:child_process"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../..")

/** Holds `file`'s write lock for `ms`; resolves once it holds it, with when it let go. */
export const holdWriteLock = (file: string, ms: number) =>
  new Promise<{ readonly released: Promise<number> }>((resolve, reject) => {
    const code = `
      const db = new (require("better-sqlite3"))(process.argv[1]);
      db.exec("BEGIN EXCLUSIVE");
      process.stdout.write("held\\n");
      setTimeout(() => { db.exec("ROLLBACK"); db.close(); }, Number(process.argv[2]));`
    const child = spawn(process.execPath, ["-e", code, file, String(ms)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    const released = new Promise<number>((done) => child.on("exit", () => done(Date.now())))
    child.stdout.once("data", () => resolve({ released }))
    child.once("error", reject)
  })
