// Builds the device bundle that both engines run: src/ on the emulated Moddable modules, one script.

import { buildSync } from "esbuild";
import { fileURLToPath } from "node:url";

const modules = ["flash", "preference", "timer", "time", "http", "mqtt", "securesocket", "crypt", "modules", "net", "file"];
const aliases: Record<string, string> = { Resource: "resource" };
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

let cached: string | undefined;

export function deviceBundle(): string {
	if (cached) return cached;
	const alias: Record<string, string> = { "mc/config": here("../modules/config.ts"), "mc/ffi": here("../modules/ffi.ts") };
	for (const name of modules) alias[name] = here(`../modules/${name}.ts`);
	for (const [name, file] of Object.entries(aliases)) alias[name] = here(`../modules/${file}.ts`);
	const result = buildSync({
		entryPoints: [here("../device-entry.ts")],
		bundle: true,
		format: "iife",
		target: "es2022",
		write: false,
		alias,
		logLevel: "silent",
	});
	cached = result.outputFiles[0].text;
	return cached;
}
