/**
 * Drives `blocksim serve` over QMP from TypeScript, with Node's net module only.
 *
 *   npx blocksim serve scenarios/backup.yaml --qmp unix:q.sock --clock step &
 *   npx tsx serve/examples/client.ts q.sock
 *
 * Starts a backup of node `disk` to node `target` (the nodes of
 * scenarios/backup.yaml), moves the simulated clock with
 * x-blocksim-clock-step until the job is gone, and prints every event with
 * its virtual timestamp.
 */
import { connect } from "node:net";
import { createInterface } from "node:readline";

type Msg = Record<string, any>;

async function main(path: string): Promise<void> {
  const sock = connect(path);
  const lines = createInterface({ input: sock })[Symbol.asyncIterator]();
  const events: Msg[] = [];
  let nextId = 1;
  const read = async (): Promise<Msg> => {
    const r = await lines.next();
    if (r.done) throw new Error("QMP connection closed");
    return JSON.parse(r.value) as Msg;
  };
  const cmd = async (execute: string, args?: Msg): Promise<any> => {
    const id = nextId++;
    sock.write(JSON.stringify({ execute, id, ...(args ? { arguments: args } : {}) }) + "\n");
    for (;;) {
      const m = await read();
      if ("event" in m) {
        events.push(m);
        console.log(`${m.timestamp.seconds}.${String(m.timestamp.microseconds).padStart(6, "0")} ${m.event} ${JSON.stringify(m.data)}`);
      } else if (m.id === id) {
        if ("error" in m) throw new Error(`${execute}: ${m.error.class}: ${m.error.desc}`);
        return m.return;
      }
    }
  };
  const greeting = await read();
  console.log("greeting:", JSON.stringify(greeting.QMP.version.qemu));
  await cmd("qmp_capabilities");
  await cmd("blockdev-backup", { "job-id": "ts0", device: "disk", target: "target", sync: "full" });
  for (let i = 0; i < 10_000 && (await cmd("query-jobs")).length > 0; i++) await cmd("x-blocksim-clock-step", { ns: 10_000_000 });
  const done = events.find((e) => e.event === "BLOCK_JOB_COMPLETED" && e.data.device === "ts0");
  console.log("completed:", done ? JSON.stringify(done.data) : "no");
  sock.end();
}

await main(process.argv[2] ?? "q.sock");
