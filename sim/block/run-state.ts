/**
 * The VM's run state as the block layer sees it (QEMU runstate: QMP `stop`
 * and `cont`). While stopped, the vCPUs issue no I/O, so guest workloads
 * wait before their next request; requests already in flight finish. Jobs
 * are not stopped by it (QEMU's block jobs run on in a paused VM).
 */
import { Signal } from "../scheduler/index.js";

export class VmRunState {
  running = true;
  /** Notified when the VM runs again. */
  readonly resumed = new Signal<void>("the VM to run (cont)");
}
