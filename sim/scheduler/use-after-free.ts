/**
 * A use of something QEMU has freed (a job after its last reference, an
 * IOThread's AioContext after the IOThread was deleted): QEMU would touch
 * freed memory, so the run fails here. Invariants tell it from other
 * failures by its class (`no-use-after-free` against `no-crash`). Its name
 * stays "Error", so a failure's text (hashed) is its message alone.
 */
export class UseAfterFree extends Error {}
