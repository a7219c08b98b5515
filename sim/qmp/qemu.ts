/**
 * One simulated QEMU: a block graph, a job list and a QMP monitor on a
 * scheduler, wired together, with the behaviour of a profile.
 */
import { BlockGraph } from "../block/index.js";
import { Device, type DeviceConfig } from "../disk/index.js";
import { withDefaults } from "../jobs/job.js";
import { JobManager } from "../jobs/manager.js";
import type { Scheduler } from "../scheduler/index.js";
import { BITMAP_COMMANDS } from "./bitmap-commands.js";
import { BLOCK_COMMANDS } from "./block-commands.js";
import { DEVICE_COMMANDS } from "./device-commands.js";
import type { QemuContext } from "./context.js";
import { HMP_COMMANDS } from "./hmp.js";
import { IOTHREAD_COMMANDS } from "./iothread-commands.js";
import { JOB_COMMANDS } from "./job-commands.js";
import { JOB_START_COMMANDS } from "./job-start-commands.js";
import { LIFECYCLE_COMMANDS } from "./lifecycle-commands.js";
import { RESIZE_COMMANDS } from "./resize-commands.js";
import { STATS_COMMANDS } from "./stats-commands.js";
import { commandTable, Monitor, type Command } from "./monitor.js";
import { QemuProcess } from "./process.js";
import { CURRENT_BEHAVIOUR, type Behaviour } from "./profiles.js";
import { TRANSACTION_COMMANDS } from "./transaction.js";

/** Every QMP command blocksim implements. */
export const COMMANDS: Readonly<Record<string, Command<QemuContext>>> = {
  ...BLOCK_COMMANDS,
  ...BITMAP_COMMANDS,
  ...JOB_COMMANDS,
  ...JOB_START_COMMANDS,
  ...TRANSACTION_COMMANDS,
  ...LIFECYCLE_COMMANDS,
  ...HMP_COMMANDS,
  ...IOTHREAD_COMMANDS,
  ...DEVICE_COMMANDS,
  ...RESIZE_COMMANDS,
  ...STATS_COMMANDS,
};
const COMMAND_TABLE = commandTable(COMMANDS);

export interface Qemu extends QemuContext {
  monitor: Monitor<QemuContext>;
  /** Declares a simulated device that blockdev-add's `file` can name. */
  addDevice(config: DeviceConfig): Device;
}

export function createQemu(sim: Scheduler, behaviour: Partial<Behaviour> = {}): Qemu {
  const full = withDefaults(CURRENT_BEHAVIOUR, behaviour);
  const graph = new BlockGraph(sim);
  const jm = new JobManager(sim, { behaviour: full });
  jm.onIdle(() => graph.kick());
  const devices = new Map<string, Device>(), process = new QemuProcess();
  const ctx: QemuContext = { sim, graph, jm, behaviour: full, devices, fileNodeNames: new Map<Device, string>(), process, emitEvent: noEvent };
  const monitor = new Monitor(sim, ctx, COMMAND_TABLE);
  // Through a local: V8 allocates a function literal stored straight into a property in the old generation
  // (it takes it for a method), which kept this closure's context, and with it the whole world, alive through
  // every young-generation collection after the run.
  const emitEvent: QemuContext["emitEvent"] = (name, data) => monitor.event(name, data);
  ctx.emitEvent = emitEvent;
  // A process that is gone runs no guest any more.
  process.onExit(() => (graph.vm.running = false));
  const addDevice = (config: DeviceConfig): Device => {
    if (devices.has(config.name)) throw new Error(`device '${config.name}' is declared twice`);
    const dev = new Device(sim, config);
    devices.set(config.name, dev);
    return dev;
  };
  return { sim, graph, jm, behaviour: full, devices, fileNodeNames: ctx.fileNodeNames, process, emitEvent, monitor, addDevice };
}

function noEvent(): void {}
