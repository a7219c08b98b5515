/** The deterministic kernel: virtual time, processes as generators, choice points, replay. */
export * from "./effects.js";
export * from "./scheduler.js";
export * from "./choice-log.js";
export { Alea, Streams, below, type Rng } from "./prng.js";
export { TraceHash } from "./hash.js";
export { type Strategy, Divergence } from "./strategies/strategy.js";
export { FifoStrategy } from "./strategies/fifo.js";
export { RandomStrategy } from "./strategies/random.js";
export { PctStrategy, type PctOptions } from "./strategies/pct.js";
export { ReplayStrategy, type ReplayOptions } from "./strategies/replay.js";
export { AioContext, AioContexts, aioCoScheduleSelf, coScheduleSelf } from "./aio-context.js";
export { formatTime, formatDuration } from "./time.js";
export { UseAfterFree } from "./use-after-free.js";
