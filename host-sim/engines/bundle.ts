// Builds the device bundle that both engines run: src/ on the emulated Moddable modules, one script.

import { buildSync } from "esbuild";
import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";

const modules = ["flash", "preference", "timer", "time", "http", "mqtt", "securesocket", "socket", "crypt", "modules", "net", "file", "rng"];
const aliases: Record<string, string> = { Resource: "resource" };
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

const cached = new Map<string, string>();

/** Bundles built so far, by entry: a worker thread is handed its parent's instead of building them again. */
export function builtBundles(): Map<string, string> {
	return new Map(cached);
}

export function adoptBundles(bundles: Map<string, string>): void {
	for (const [entry, bundle] of bundles) cached.set(entry, bundle);
}

/** The bundle of device-entry.ts, or of another firmware entry (a test's, relative to the repository root, or absolute). */
export function deviceBundle(entry = "host-sim/device-entry.ts"): string {
	const known = cached.get(entry);
	if (known) return known;
	const alias: Record<string, string> = { "mc/config": here("../modules/config.ts"), "mc/ffi": here("../modules/ffi.ts") };
	for (const name of modules) alias[name] = here(`../modules/${name}.ts`);
	for (const [name, file] of Object.entries(aliases)) alias[name] = here(`../modules/${file}.ts`);
	const result = buildSync({
		entryPoints: [isAbsolute(entry) ? entry : here(`../../${entry}`)],
		bundle: true,
		format: "iife",
		target: "es2022",
		write: false,
		alias,
		logLevel: "silent",
	});
	const bundle = result.outputFiles[0].text;
	cached.set(entry, bundle);
	return bundle;
}
