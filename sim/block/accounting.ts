/**
 * A BlockBackend's I/O accounting (QEMU 7.2 block/accounting.c, what
 * query-blockstats reports per device): requests are counted by whoever
 * issues them on behalf of a device — the guest's virtual disk, and
 * qemu-io's aio_read / aio_write — never by the BlockBackend itself, so a
 * job's I/O and qemu-io's synchronous read / write count nowhere
 * (goldens/blockstats_guest_io). A request counts when it ends: its bytes
 * and one operation if it succeeded, one failed operation if not, and its
 * latency (virtual time from start to end) in the total time either way
 * (account_failed, on by default). The last access is the end of the last
 * request counted.
 */

export type AcctType = "rd" | "wr" | "flush" | "unmap";

/** Counters of one request type. */
export interface AcctCounters {
  bytes: number;
  operations: number;
  failed: number;
  invalid: number;
  merged: number;
  totalTimeNs: number;
}

/** A request being accounted (QEMU's BlockAcctCookie). */
export interface AcctCookie {
  type: AcctType;
  bytes: number;
  startNs: number;
}

const counters = (): AcctCounters => ({ bytes: 0, operations: 0, failed: 0, invalid: 0, merged: 0, totalTimeNs: 0 });

export class BlockAcctStats {
  readonly rd = counters();
  readonly wr = counters();
  readonly flush = counters();
  readonly unmap = counters();
  /** Virtual time of the last request counted; undefined before the first (query-blockstats then has no idle_time_ns). */
  lastAccessNs: number | undefined = undefined;
  /** QEMU block_acct_init: both on; -drive's stats-account-invalid / -failed could turn them off (not modelled). */
  readonly accountInvalid = true;
  readonly accountFailed = true;

  /** QEMU block_acct_start. */
  start(type: AcctType, bytes: number, nowNs: number): AcctCookie {
    return { type, bytes, startNs: nowNs };
  }

  /** QEMU block_acct_done (failed false) or block_acct_failed (true). */
  end(cookie: AcctCookie, failed: boolean, nowNs: number): void {
    const c = this[cookie.type];
    if (failed) c.failed++;
    else {
      c.bytes += cookie.bytes;
      c.operations++;
    }
    if (!failed || this.accountFailed) {
      c.totalTimeNs += nowNs - cookie.startNs;
      this.lastAccessNs = nowNs;
    }
  }
}
