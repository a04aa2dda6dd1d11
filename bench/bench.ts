/*
	npm run bench: one run of the host-simulator benchmarks, side by side.
	  1. update throughput on loopback, node and xs engines, against a plain Node download of the same bytes
	  2. bytes re-fetched per power cut, for three checkpoint intervals
	  3. persistent writes per MiB, for the same intervals
	  4. XS heap slots during a 1 MiB and a 4 MiB update, as metered and after a collection
	  5. time on a real board projected from the W25Q32JV datasheet and the measured flash operations
	Writes bench/results.json, bench/results.md and bench/heap.svg, and prints the markdown.
*/

import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import type { Wear } from "../host-sim/board/board-files";
import type { BoardLayout } from "../host-sim/board/partition-table";
import { prepareFactoryBoard, runDevice, type DeviceOptions, type DeviceOutcome, type EngineName } from "../host-sim/device";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { startUpdateServer } from "../host-sim/server/http-server";
import { seeded } from "../test/support/sim";

const KiB = 1024, MiB = 1024 * KiB;
const repeats = 3;
const cutsPerInterval = 10;
const intervals = [4 * KiB, 16 * KiB, 64 * KiB];
const defaultInterval = 16 * KiB;
const engines = ["node", "xs"] as const;
const heapKinds = ["metered", "live"] as const;
const heapSizes = ["1MiB", "4MiB"] as const;

type Published = { url: string; sha256: string; length: number };
type UpdateTiming = { downloadVerifyMs: number; downloadMs: number; downloadMiBps: number; wholeMs: number };
type CutRun = { cutAt: number; kind: string; refetched: number };
type IntervalResult = {
	checkpointBytes: number;
	ops: number;
	/** First and last persistent write of the download phase, the range the cuts are drawn from. */
	downloadOps: [number, number];
	wear: Wear;
	cuts: CutRun[];
	refetched: { mean: number; max: number };
};
type HeapSample = { received: number; slots: number };
type HeapRun = { peak: number; steady: number; samples: HeapSample[] };
type HeapResults = Record<(typeof heapKinds)[number], Record<(typeof heapSizes)[number], HeapRun>>;

const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b), middle = sorted.length >> 1;
	return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
const note = (text: string) => process.stderr.write(`bench: ${text}\n`);

const started = performance.now();
const work = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-bench-"));
const www = path.join(work, "www");
fs.mkdirSync(www);
const server = await startUpdateServer({ dir: www, port: 0 });
const pristine: Record<BoardLayout, string> = { "4MB": path.join(work, "pristine-4mb"), "16MB": path.join(work, "pristine-16mb") };
let boards = 0;

try {
	const image = publish(MiB), largeImage = publish(4 * MiB);
	for (const layout of ["4MB", "16MB"] as const) prepareFactoryBoard(pristine[layout], layout);

	const throughput = {} as Record<(typeof engines)[number], UpdateTiming & { runs: UpdateTiming[] }>;
	for (const engine of engines) {
		note(`throughput, ${engine} engine`);
		// Untimed first run: builds the device bundle, warms the JIT and the server's ETag cache.
		await timedUpdate(image, engine);
		const runs: UpdateTiming[] = [];
		for (let i = 0; i < repeats; i++) runs.push(await timedUpdate(image, engine));
		const middle = (key: keyof UpdateTiming) => median(runs.map((run) => run[key]));
		throughput[engine] = { downloadVerifyMs: middle("downloadVerifyMs"), downloadMs: middle("downloadMs"), downloadMiBps: middle("downloadMiBps"), wholeMs: middle("wholeMs"), runs };
	}
	await plainDownload(image);
	const plainRuns: number[] = [];
	for (let i = 0; i < repeats; i++) plainRuns.push(await plainDownload(image));
	const plainMs = median(plainRuns);
	const plain = { ms: plainMs, MiBps: image.length / MiB / (plainMs / 1000), runs: plainRuns };

	const cuts: IntervalResult[] = [];
	for (const checkpointBytes of intervals) {
		note(`power cuts, ${checkpointBytes / KiB} KiB checkpoints`);
		cuts.push(await cutRuns(image, checkpointBytes));
	}

	const heap = {} as HeapResults;
	for (const kind of heapKinds) {
		heap[kind] = {} as HeapResults[typeof kind];
		for (const size of heapSizes) {
			note(`xs heap, ${size}, ${kind}`);
			heap[kind][size] = await heapRun(size === "1MiB" ? image : largeImage, kind === "live");
		}
	}

	const projection = project(cuts.find((result) => result.checkpointBytes === defaultInterval)!.wear, image.length);
	const results = {
		date: new Date().toISOString(),
		node: process.version,
		host: `${os.cpus()[0]?.model.trim() ?? "unknown cpu"}, ${os.platform()} ${os.arch()}`,
		imageBytes: image.length,
		seconds: (performance.now() - started) / 1000,
		throughput,
		plainDownload: plain,
		intervals: cuts,
		heap: Object.fromEntries(heapKinds.map((kind) => [kind, Object.fromEntries(heapSizes.map((size) => {
			const run = heap[kind][size];
			return [size, { peak: run.peak, steady: run.steady, downloadSamples: run.samples.length }];
		}))])),
		projection,
	};
	const markdown = renderMarkdown(results, heap);
	fs.writeFileSync(new URL("./results.json", import.meta.url), JSON.stringify(results, null, "\t") + "\n");
	fs.writeFileSync(new URL("./results.md", import.meta.url), markdown);
	fs.writeFileSync(new URL("./heap.svg", import.meta.url), renderHeapSvg(heap));
	console.log(markdown);
	note(`done in ${results.seconds.toFixed(1)} s`);
}
finally {
	await server.close();
	fs.rmSync(work, { recursive: true, force: true });
}

function publish(size: number): Published {
	const bytes = makeAppImage({ size, version: "2.0.0" });
	const name = `app-${size / MiB}m.bin`;
	fs.writeFileSync(path.join(www, name), bytes);
	return { url: `${server.url}/${name}`, sha256: sha256Hex(bytes), length: bytes.length };
}

/** A factory-fresh board: a copy, so creating its flash files stays out of every timing. */
function freshBoard(layout: BoardLayout = "4MB"): string {
	const dir = path.join(work, `board-${++boards}`);
	fs.cpSync(pristine[layout], dir, { recursive: true });
	return dir;
}

function assertUpdated(outcome: DeviceOutcome, target: Published, what: string): void {
	if (outcome.end !== "idle" || outcome.result !== 1 || outcome.running.sha256 !== target.sha256)
		throw new Error(`${what}: the update did not complete (end ${outcome.end}, result ${outcome.result})`);
}

// 1. Throughput: the phases are timed from the device's own reports.
async function timedUpdate(target: Published, engine: EngineName): Promise<UpdateTiming> {
	let state1 = 0, state2 = 0;
	let first: [number, number] | undefined, last: [number, number] | undefined;
	const onEvent: DeviceOptions["onEvent"] = (event) => {
		const now = performance.now();
		if (event.event === "state" && event.state === 1 && !state1) state1 = now;
		else if (event.event === "state" && event.state === 2 && !state2) state2 = now;
		else if (event.event === "progress") {
			first ??= [now, event.received as number];
			last = [now, event.received as number];
		}
	};
	const dir = freshBoard();
	const begin = performance.now();
	const outcome = await runDevice({ dir, engine, url: target.url, onEvent });
	const wholeMs = performance.now() - begin;
	assertUpdated(outcome, target, `${engine} update`);
	if (!first || !last || !state2) throw new Error(`${engine} update: no progress reports`);
	// Progress is reported at checkpoints, so first → last spans all but the first interval.
	const downloadMs = last[0] - first[0];
	return { downloadVerifyMs: state2 - state1, downloadMs, downloadMiBps: (last[1] - first[1]) / MiB / (downloadMs / 1000), wholeMs };
}

async function plainDownload(target: Published): Promise<number> {
	const file = path.join(work, "plain.bin");
	const begin = performance.now();
	await new Promise<void>((done, fail) => {
		http.get(target.url, (response) => {
			const out = fs.createWriteStream(file);
			response.pipe(out);
			out.on("finish", done);
			out.on("error", fail);
		}).on("error", fail);
	});
	const ms = performance.now() - begin;
	if (fs.statSync(file).size !== target.length) throw new Error("plain download incomplete");
	return ms;
}

// 2 and 3. Power cuts and wear (node engine: the agent is the same code on both).
async function cutRuns(target: Published, checkpointBytes: number): Promise<IntervalResult> {
	const config = { checkpointBytes };
	const whole = await runDevice({ dir: freshBoard(), url: target.url, config });
	assertUpdated(whole, target, `uncut update, ${checkpointBytes} byte checkpoints`);
	const cutUpdate = async (cutAt: number) => {
		let lastState = 0;
		const outcome = await runDevice({ dir: freshBoard(), url: target.url, cutAfterOps: cutAt, config, onEvent: (event) => {
			if (event.event === "state") lastState = event.state as number;
		} });
		return { fetched: outcome.bytesFetched, lastState };
	};
	// The download's writes: from the first one after body bytes arrived to the last one before State 2.
	const firstOp = await firstWhere(1, whole.ops, async (n) => (await cutUpdate(n)).fetched > 0);
	const lastOp = await firstWhere(firstOp, whole.ops, async (n) => (await cutUpdate(n)).lastState >= 2) - 1;
	const random = seeded(checkpointBytes);
	const cuts: CutRun[] = [];
	for (let i = 0; i < cutsPerInterval; i++) {
		const cutAt = firstOp + Math.floor(random() * (lastOp - firstOp + 1));
		const dir = freshBoard();
		let kind = "";
		const cut = await runDevice({ dir, url: target.url, cutAfterOps: cutAt, config, onEvent: (event) => {
			if (event.event === "power-cut") kind = event.kind as string;
		} });
		if (cut.end !== "power-cut") throw new Error(`no cut at write ${cutAt}`);
		const resumed = await runDevice({ dir, config });
		assertUpdated(resumed, target, `resume after a cut at write ${cutAt}`);
		cuts.push({ cutAt, kind, refetched: cut.bytesFetched + resumed.bytesFetched - target.length });
	}
	const refetched = cuts.map((cut) => cut.refetched);
	return { checkpointBytes, ops: whole.ops, downloadOps: [firstOp, lastOp], wear: whole.wear, cuts, refetched: { mean: mean(refetched), max: Math.max(...refetched) } };
}

/** Smallest n in [low, high] for which `holds` is true; it is false, then true, as n grows. */
async function firstWhere(low: number, high: number, holds: (n: number) => Promise<boolean>): Promise<number> {
	while (low < high) {
		const middle = (low + high) >> 1;
		if (await holds(middle)) high = middle;
		else low = middle + 1;
	}
	return low;
}

// 4. XS heap, on the 16 MB board: a 4 MiB image does not fit the default 1.875 MiB slot.
async function heapRun(target: Published, heapAfterGc: boolean): Promise<HeapRun> {
	let state = 0, received = 0;
	const samples: HeapSample[] = [];
	const outcome = await runDevice({
		dir: freshBoard("16MB"), engine: "xs", layout: "16MB", url: target.url, heapAfterGc,
		onEvent: (event) => {
			if (event.event === "state") state = event.state as number;
			else if (event.event === "progress") received = event.received as number;
		},
		onHeap: (slots) => { if (state === 1) samples.push({ received, slots }); },
	});
	assertUpdated(outcome, target, `xs heap run, ${target.length} bytes`);
	const secondHalf = samples.slice(samples.length >> 1).map((sample) => sample.slots);
	return { peak: Math.max(...outcome.heapSlots), steady: median(secondHalf), samples };
}

/*
	5. Winbond W25Q32JV, typical / maximum. Moddable runs the download, erase and program on one core, one
	after the other, so the honest projection is their sum; max(link, flash) is what full overlap would give.
	Page programs = ceil(bytes / 256) (a fragment that straddles pages costs a few more in practice). Each
	preference set costs two page programs (the new entry; the old one marked erased), and NVS page recycling
	one 4 KiB sector erase per 4 KiB of preference bytes.
*/
function project(wear: Wear, imageBytes: number) {
	const datasheet = { sectorErase: [0.045, 0.4], blockErase: [0.15, 2], pageProgram: [0.0004, 0.003] };
	const seconds = (erases: number, blockErases: number, programs: number) => [0, 1].map((i) =>
		erases * datasheet.sectorErase[i] + blockErases * datasheet.blockErase[i] + programs * datasheet.pageProgram[i]);
	const imagePages = Math.ceil(imageBytes / 256);
	const measured = {
		sectorErases: wear.flashErases + Math.ceil(wear.preferenceBytes / 4096),
		pagePrograms: Math.ceil(wear.flashBytes / 256) + 2 * wear.preferenceSets,
	};
	const flashSeconds = {
		measured: seconds(measured.sectorErases, 0, measured.pagePrograms),
		sectorFloor: seconds(Math.ceil(imageBytes / 4096), 0, imagePages),
		blockFloor: seconds(0, Math.ceil(imageBytes / 65536), imagePages),
	};
	const links = [1, 10].map((mbps) => {
		const link = (imageBytes * 8) / (mbps * 1e6);
		return {
			mbps,
			linkSeconds: link,
			sum: flashSeconds.measured.map((flash) => link + flash),
			overlap: flashSeconds.measured.map((flash) => Math.max(link, flash)),
			sumBlockFloor: flashSeconds.blockFloor.map((flash) => link + flash),
		};
	});
	return { datasheet, measured, imagePages, flashSeconds, links };
}

type Results = {
	date: string;
	host: string;
	node: string;
	imageBytes: number;
	seconds: number;
	throughput: Record<(typeof engines)[number], UpdateTiming>;
	plainDownload: { ms: number; MiBps: number };
	intervals: IntervalResult[];
	projection: ReturnType<typeof project>;
};

function renderMarkdown(results: Results, heap: HeapResults): string {
	const fixed = (n: number, digits = 1) => n.toFixed(digits);
	const int = (n: number) => Math.round(n).toLocaleString("en-US");
	const span = ([typical, maximum]: number[]) => `${fixed(typical)} / ${fixed(maximum)}`;
	const ms = (seconds: number[]) => seconds.map((s) => s * 1000).join(" / ");
	const table = (header: string[], rows: string[][]) =>
		[`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((row) => `| ${row.join(" | ")} |`)].join("\n");
	const mib = results.imageBytes / MiB;
	const { plainDownload: plain, projection } = results;
	return [
		`Run of ${results.date.slice(0, 10)}: ${results.host}, Node ${results.node}, ${fixed(results.seconds, 0)} s in all.`,
		"",
		`**Update throughput**: ${mib} MiB image, loopback, median of ${repeats} runs. Download: first to last checkpoint. `
			+ "Download + verify: State 1 to State 2. Whole update: power-on to confirmed, over two boots.",
		"",
		table(["", "download MiB/s", "plain Node is faster by", "download + verify ms", "whole update ms"], [
			...engines.map((engine) => {
				const t = results.throughput[engine];
				return [`simulator, ${engine} engine`, fixed(t.downloadMiBps), `${fixed(plain.MiBps / t.downloadMiBps)}×`, int(t.downloadVerifyMs), int(t.wholeMs)];
			}),
			["plain Node: http.get → file (no verify)", fixed(plain.MiBps), "–", int(plain.ms), "–"],
		]),
		"",
		`**Power cuts and wear** (node engine): ${mib} MiB image, ${cutsPerInterval} seeded cuts per interval at random persistent writes `
			+ "of the download. Re-fetched = bytes fetched by the cut run and the resumed run − image size; the bound is one interval plus "
			+ "the fragment that crossed the last checkpoint, as the checkpoint is saved after that whole fragment is written. "
			+ "Writes per MiB, over the whole update.",
		"",
		table(["checkpoint", "re-fetched per cut: mean", "max", "preference sets", "preference bytes", "flash erases", "flash writes", "flash bytes"],
			results.intervals.map((r) => [
				`${r.checkpointBytes / KiB} KiB`, int(r.refetched.mean), int(r.refetched.max), int(r.wear.preferenceSets / mib),
				int(r.wear.preferenceBytes / mib), int(r.wear.flashErases / mib), int(r.wear.flashWrites / mib), int(r.wear.flashBytes / mib),
			])),
		"",
		"**XS heap slots** (xsnap `currentHeapCount`; a slot is 32 B on x86-64, 16 B on ESP32) after each delivered event. Steady: "
			+ "median over the second half of the download. Metered: as XS reports it, garbage included, as XS collects only when its "
			+ "256 K-slot heap is full. Live: with `gc()` before each reading (a bench-only engine option).",
		"",
		table(["", "1 MiB: peak", "steady", "4 MiB: peak", "steady", "4 MiB ÷ 1 MiB: peak", "steady"], heapKinds.map((kind) => {
			const one = heap[kind]["1MiB"], four = heap[kind]["4MiB"];
			return [kind, int(one.peak), int(one.steady), int(four.peak), int(four.steady), fixed(four.peak / one.peak, 2), fixed(four.steady / one.steady, 2)];
		})),
		"",
		`**Projected on a real board**: ${mib} MiB, W25Q32JV typical / max (4 KiB sector erase ${ms(projection.datasheet.sectorErase)} ms, `
			+ `64 KiB block erase ${ms(projection.datasheet.blockErase)} ms, 256 B page program ${ms(projection.datasheet.pageProgram)} ms). `
			+ "Download, erase and program run one after another on one core, so the time is their sum; max(link, flash) is what full "
			+ "overlap would give. Verification reads and hashing are left out.",
		"",
		table(["flash work", "4 KiB erases", "64 KiB erases", "page programs", "seconds"], [
			[`measured update, ${defaultInterval / KiB} KiB checkpoints`, int(projection.measured.sectorErases), "0", int(projection.measured.pagePrograms), span(projection.flashSeconds.measured)],
			["floor: the image alone, sector erase", int(Math.ceil(results.imageBytes / 4096)), "0", int(projection.imagePages), span(projection.flashSeconds.sectorFloor)],
			["floor: the image alone, block erase", "0", int(Math.ceil(results.imageBytes / 65536)), int(projection.imagePages), span(projection.flashSeconds.blockFloor)],
		]),
		"",
		table(["link (Wi-Fi, effective)", "download s", "update s (sum)", "max(link, flash)", "sum with block erase"],
			projection.links.map((link) => [`${link.mbps} Mbit/s`, fixed(link.linkSeconds), span(link.sum), span(link.overlap), span(link.sumBlockFloor)])),
		"",
	].join("\n");
}

/** Heap slots against MiB downloaded, metered and live, for both image sizes; plain SVG, no dependencies. */
function renderHeapSvg(heap: HeapResults): string {
	const width = 640, height = 320, left = 56, right = 16, top = 28, bottom = 40;
	const plotWidth = width - left - right, plotHeight = height - top - bottom;
	const highest = Math.max(...heapKinds.flatMap((kind) => heapSizes.map((size) => heap[kind][size].peak)));
	const yStep = 50000, yMax = Math.ceil(highest / yStep) * yStep, xMax = 4;
	const x = (mib: number) => left + (mib / xMax) * plotWidth;
	const y = (slots: number) => top + plotHeight - (slots / yMax) * plotHeight;
	const colours = { "1MiB": "#1f77b4", "4MiB": "#ff7f0e" };
	const parts = [
		`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
		`<rect width="${width}" height="${height}" fill="white"/>`,
		`<text x="${left}" y="16" font-size="13">XS heap slots during the download (xs engine, after each event)</text>`,
	];
	for (let slots = 0; slots <= yMax; slots += yStep) {
		parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(slots)}" y2="${y(slots)}" stroke="#ddd"/>`);
		parts.push(`<text x="${left - 6}" y="${y(slots) + 4}" text-anchor="end">${slots ? `${slots / 1000}K` : 0}</text>`);
	}
	for (let mib = 0; mib <= xMax; mib++) parts.push(`<text x="${x(mib)}" y="${top + plotHeight + 16}" text-anchor="middle">${mib}</text>`);
	parts.push(`<text x="${left + plotWidth / 2}" y="${height - 6}" text-anchor="middle">MiB downloaded</text>`);
	parts.push(`<polyline fill="none" stroke="#333" points="${left},${top} ${left},${top + plotHeight} ${width - right},${top + plotHeight}"/>`);
	const legendX = left + 8;
	const legend = [`<rect x="${legendX}" y="${top}" width="256" height="62" fill="white" fill-opacity="0.85"/>`];
	let entries = 0;
	for (const kind of heapKinds) {
		// The 1 MiB line on top: the two overlap wherever both exist.
		for (const size of ["4MiB", "1MiB"] as const) {
			// One min-to-max stroke per pixel column keeps the file small and the sawtooth visible.
			const columns = new Map<number, [number, number]>();
			for (const { received, slots } of heap[kind][size].samples) {
				const column = Math.round(x(received / MiB));
				const range = columns.get(column);
				columns.set(column, range ? [Math.min(range[0], slots), Math.max(range[1], slots)] : [slots, slots]);
			}
			const points = [...columns].flatMap(([column, [low, high]]) => [`${column},${y(low).toFixed(1)}`, `${column},${y(high).toFixed(1)}`]);
			const stroke = `stroke="${colours[size]}" stroke-width="${kind === "live" ? 2.5 : 1}"${kind === "live" ? "" : ` stroke-dasharray="4 2"`}`;
			parts.push(`<polyline fill="none" ${stroke} points="${points.join(" ")}"/>`);
			const ly = top + 10 + 14 * entries++;
			legend.push(`<line x1="${legendX + 4}" x2="${legendX + 28}" y1="${ly}" y2="${ly}" ${stroke}/>`);
			legend.push(`<text x="${legendX + 34}" y="${ly + 4}">${size.replace("MiB", " MiB")} image, ${kind}: steady ${heap[kind][size].steady.toLocaleString("en-US")}</text>`);
		}
	}
	parts.push(...legend, "</svg>");
	return parts.join("\n") + "\n";
}
