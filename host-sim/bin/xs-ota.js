#!/usr/bin/env node
// Runs the TypeScript command line directly (esbuild strips the types as modules load).
import { register } from "node:module";
register("../ts-loader.mjs", import.meta.url);
const { main } = await import("../cli.ts");
await main(process.argv.slice(2));
