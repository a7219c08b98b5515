/** `blocksim schema`: the scenario file's JSON Schema, for editors. */
import { z } from "zod";
import { Scenario } from "../sim/scenario/schema.js";
import { EXIT_OK, type Io } from "./args.js";

export function printSchema(io: Io): number {
  const schema = z.toJSONSchema(Scenario, { io: "input", unrepresentable: "any" });
  io.out(JSON.stringify({ ...schema, title: "blocksim scenario file" }, null, 1) + "\n");
  return EXIT_OK;
}
