/*
	What the device bundle's code holds in the xsnap heap. Under xsnap nothing is preloaded, so every function
	and table of every module lives in the heap, unlike the device build, which preloads them into flash; the
	bench's live heap figures include it.
	  codeSlots(): live slots once the firmware's modules are loaded, before the agent is built.
	  node --import ./host-sim/register.mjs bench/heap-code.ts: adds the bundle's modules one at a time, in the
	  order esbuild evaluates them, and prints the live slots each adds (importing a whole module keeps exports the
	  firmware's bundle drops, so the total runs somewhat above codeSlots()).
*/

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { runDevice } from "../host-sim/device";
import { deviceBundle } from "../host-sim/engines/bundle";

const root = fileURLToPath(new URL("../", import.meta.url));

/** Live slots after one event on a board whose firmware is `entry` (relative to the repository root, or absolute). */
async function liveSlots(entry: string): Promise<number> {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-heap-code-"));
	try {
		let slots = 0;
		await runDevice({ dir, engine: "xs", entry, heapAfterGc: true, runFor: 100, onHeap: (live) => { slots = live; } });
		return slots;
	}
	finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

export function codeSlots(): Promise<number> {
	return liveSlots("bench/heap-code-entry.ts");
}

/** The slots each module of the firmware adds, in evaluation order, after an entry that loads none of them. */
async function perModule(): Promise<{ empty: number; modules: { module: string; slots: number }[] }> {
	// esbuild's bundle names each module in a comment before its code, in evaluation order.
	const order = [...deviceBundle().matchAll(/^ {2}\/\/ (\S+\.ts)$/gm)].map((match) => match[1])
		.filter((module) => !["host-sim/device-entry.ts", "host-sim/modules/host.ts", "host-sim/modules/timer.ts"].includes(module));
	const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-heap-modules-"));
	const entry = (count: number) => {
		const file = path.join(scratch, `entry-${count}.ts`);
		const imports = order.slice(0, count).map((module, i) => `import * as m${i} from ${JSON.stringify(path.join(root, module))};\nkeep.push(m${i});`);
		fs.writeFileSync(file, [
			`import Timer from "timer";`,
			`import { dispatch } from ${JSON.stringify(path.join(root, "host-sim/modules/host.ts"))};`,
			"const keep: unknown[] = [];",
			"(globalThis as any).deviceDeliver = dispatch;",
			"(globalThis as any).keep = keep;",
			...imports,
			"Timer.set(() => {}, 1);",
		].join("\n"));
		return file;
	};
	try {
		const empty = await liveSlots(entry(0));
		const modules: { module: string; slots: number }[] = [];
		let previous = empty;
		for (let count = 1; count <= order.length; count++) {
			const slots = await liveSlots(entry(count));
			modules.push({ module: order[count - 1], slots: slots - previous });
			previous = slots;
		}
		return { empty, modules };
	}
	finally {
		fs.rmSync(scratch, { recursive: true, force: true });
	}
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
	const code = await codeSlots();
	const { empty, modules } = await perModule();
	const int = (n: number) => n.toLocaleString("en-US");
	console.log(`firmware code loaded, no agent built: ${int(code)} live slots`);
	console.log(`an entry with no module of the firmware (xsnap, the engine's prelude, the host bridge, a timer): ${int(empty)}`);
	console.log("\n| module | live slots it adds |\n|---|---|");
	for (const { module, slots } of modules) console.log(`| ${module} | ${int(slots)} |`);
	console.log(`| all modules, whole | ${int(modules.reduce((sum, { slots }) => sum + slots, 0))} |`);
}
