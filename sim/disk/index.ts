/** Simulated devices: timing, faults, content versions, in-flight accounting. */
export { Device, DEVICE_DEFAULTS, transferNs, type DeviceConfig, type DeviceStats, type IoRequest, type LatencyNs } from "./device.js";
export { FaultRules, ActiveFault, IO_OPS, type FaultRule, type FaultDecision, type IoOp } from "./faults.js";
export { ExpectedError, IoError, ERRNOS, strerror, type Errno } from "./errors.js";
export { ZERO_VERSION, sameData, versionAt, type ClusterVersion, type Content } from "./content.js";
export { Waiters, Ticket } from "./waiters.js";
