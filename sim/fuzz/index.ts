/** Fuzzing and schedule exploration: arbitraries, the property API, explorers, shrinking, replay files. */
export * from "./model.js";
export * from "./arbitraries.js";

export * from "./property.js";
