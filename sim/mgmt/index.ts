/** The management layer: a libvirt-style domain with its job rules, block job APIs, clients, profiles, histograms, invariants. */
export * from "./domain.js";
export * from "./errors.js";
export * from "./api.js";
export * from "./clients.js";
export * from "./histogram.js";
export * from "./invariants.js";
export * from "./profiles.js";
export * from "./timeline.js";
