// Stands in for zod's locale index in the bundle: English only (see bundle.mjs).
export { default as en } from "zod/v4/locales/en.js";
