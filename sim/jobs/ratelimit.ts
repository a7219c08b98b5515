/**
 * Rate limiting by time slices, as QEMU's ratelimit.h does for block jobs.
 *
 * A slice lasts 100 ms and allows `speed * 0.1 s` bytes (at least 1). Work is
 * accounted after it is done; once a slice's quota is used up the job is told
 * to sleep until the slice, stretched in proportion to the overshoot, ends.
 * So the chunk that crosses the quota is not delayed; the next one is.
 * A job that wakes at the slice's end starts a new one: QEMU's clock has
 * moved past the end by the time it asks (goldens/backup_limit_new_slice_after_sleep).
 * speed 0 means unlimited.
 */
export const SLICE_NS = 100_000_000;

export class RateLimit {
  private quotaBytes = 0;
  private sliceStartNs = 0;
  private sliceEndNs = -1;
  /** The slice's start's place among one instant's timers (Scheduler.tieToken): see tieFor. */
  private sliceTie: number | undefined = undefined;
  private dispatchedBytes = 0;

  constructor(speedBytesPerSec = 0, private readonly tieToken?: () => number) {
    this.setSpeed(speedBytesPerSec);
  }

  setSpeed(speedBytesPerSec: number): void {
    this.quotaBytes = speedBytesPerSec === 0 ? 0 : Math.max((speedBytesPerSec * SLICE_NS) / 1e9, 1);
  }

  /**
   * The place among the timers due at `deadlineNs` of a sleep until then:
   * a sleep to the current slice's end is due as early as the slice's start
   * was (Scheduler.tieToken); any other sleep takes its place when armed
   * (undefined).
   */
  tieFor(deadlineNs: number): number | undefined {
    return deadlineNs === this.sliceEndNs ? this.sliceTie : undefined;
  }

  /** Accounts `bytes` done at `nowNs`; returns how long to sleep before the next chunk (ns, integer). */
  delayNs(nowNs: number, bytes: number): number {
    if (this.quotaBytes === 0) return 0;
    if (this.sliceEndNs <= nowNs) {
      this.sliceStartNs = nowNs;
      this.sliceEndNs = nowNs + SLICE_NS;
      this.sliceTie = this.tieToken?.();
      this.dispatchedBytes = 0;
    }
    this.dispatchedBytes += bytes;
    if (this.dispatchedBytes < this.quotaBytes) return 0;
    const slices = this.dispatchedBytes / this.quotaBytes;
    this.sliceEndNs = this.sliceStartNs + Math.floor(slices * SLICE_NS);
    return Math.max(this.sliceEndNs - nowNs, 0);
  }
}
