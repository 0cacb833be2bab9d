/**
 * Effect's default scheduler yields to the event loop with `setTimeout(0)` after 2048
 * microtask rounds; Node clamps that to a millisecond, and under load (hundreds of fibers:
 * requests, the group commit, the delivery worker) the bridge spent most of its time idle
 * in those pauses. This one yields with `setImmediate` instead: I/O still gets its turn,
 * without the clamp.
 */
import { FiberRef, type Scheduler } from "effect"

const MICROTASK_ROUNDS = 2048
const resolved = Promise.resolve()

export class ImmediateScheduler implements Scheduler.Scheduler {
  private tasks: Array<Scheduler.Task> = []
  private running = false

  scheduleTask(task: Scheduler.Task): void {
    this.tasks.push(task)
    if (!this.running) {
      this.running = true
      this.next(0)
    }
  }

  shouldYield(fiber: Parameters<Scheduler.Scheduler["shouldYield"]>[0]): number | false {
    return fiber.currentOpCount > fiber.getFiberRef(FiberRef.currentMaxOpsBeforeYield) ? fiber.getFiberRef(FiberRef.currentSchedulingPriority) : false
  }

  private next(depth: number) {
    if (depth >= MICROTASK_ROUNDS) setImmediate(() => this.drain(0))
    // not queueMicrotask: Node wraps each of those in an AsyncResource, which costs more than the task
    else void resolved.then(() => this.drain(depth + 1))
  }

  private drain(depth: number) {
    const tasks = this.tasks
    this.tasks = []
    for (const task of tasks) task()
    if (this.tasks.length === 0) this.running = false
    else this.next(depth)
  }
}
