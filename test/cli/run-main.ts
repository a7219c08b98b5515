/** The command line run in-process, as the tests of cli/ drive it: exit code and what it printed. */
import { main, type Io } from "../../cli/main.js";

export async function runMain(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = { stdout: "", stderr: "", tty: false, out: (t: string) => void (io.stdout += t), err: (t: string) => void (io.stderr += t) } satisfies Io & { stdout: string; stderr: string };
  const code = await main(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}
