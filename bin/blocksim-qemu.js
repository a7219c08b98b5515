#!/usr/bin/env node
// Entry point for `blocksim-qemu`, the qemu-system-x86_64 stand-in libvirt can start (serve/libvirt/qemu-standin.ts).
import { register } from "tsx/esm/api";
register();
const { standInMain } = await import("../serve/libvirt/qemu-standin.ts");
process.exitCode = await standInMain(process.argv.slice(2));
process.exit();
