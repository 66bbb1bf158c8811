/**
 * Programmer errors: where code that found a bug reports it. Layer: util (imported by kernel/
 * and api/). A bug is not a reply: the call that hit it is answered INTERNAL, and the daemon
 * stops loudly (main wires `onBug` to log the stack and stop with exit status 70, which systemd
 * restarts; replay restores the acknowledged state). Operating errors are `KernelError`s and never
 * come here.
 *
 * Why a process-wide hook rather than a parameter: a bug can surface anywhere (a handler, a
 * detached continuation in the job manager, a timer), and every place must end the same way.
 * Until main sets a handler (unit tests), a bug is rethrown outside any promise chain, so it
 * ends the process as an uncaught exception would.
 */

let handler: (err: unknown) => void = (err) => {
  setImmediate(() => {
    throw err;
  });
};

/** Sets what a reported bug does (main: log it and stop the daemon). */
export function onBug(fn: (err: unknown) => void): void {
  handler = fn;
}

/** Reports a programmer error found at run time. */
export function reportBug(err: unknown): void {
  handler(err);
}
