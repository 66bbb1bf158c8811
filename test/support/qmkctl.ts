/**
 * Test support: runs qmkctl in-process against a daemon's admin socket and collects what it
 * prints, as an operator's shell would see it.
 */
import { main as qmkctl } from '../../src/cli/qmkctl.js';

export async function runQmkctl(
  socket: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await qmkctl(['--socket', socket, ...args], {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}
