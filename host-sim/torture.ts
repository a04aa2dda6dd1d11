/*
	Power-cut torture: for one published image, cut the power at every persistent write of the whole update
	life cycle (download, checkpoints, verify, switch, first boot, self-test, confirm, report), power on again
	until idle, and check the invariants after each run. A sample of runs gets a second cut during the
	recovery from the first.

	Invariants:
	  bootable      every boot ran a valid image (the boot event names its version)
	  image         the final running image is byte-identical to the published one
	  boots         the update completes within maxBoots boots after the last cut
	  reported      the final result reached the server at least once, always the same result, and more than
	                once only when the cut fell after the acknowledgement and before the record's save
	  refetch       bytes fetched beyond the image size ≤ one checkpoint interval plus the fragment in flight
	                per cut (the worst case is a cut that tears the checkpoint's own save: the bytes since the
	                previous checkpoint, and the rest of the fragment that crossed the boundary, come again)
*/

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { prepareFactoryBoard, runDevice, type DeviceReport, type EngineName } from "./device";
import { makeAppImage, sha256Hex } from "./image";
import { startUpdateServer } from "./server/http-server";
import { defaultFragmentBytes } from "./board/network";

export interface TortureOptions {
	engine: EngineName;
	/** Image size in bytes (K sectors of 4 KiB, plus a partial one to exercise the tail). */
	imageBytes: number;
	checkpointBytes: number;
	/** Try every stride-th cut point (1 = every persistent write). */
	stride: number;
	/** Every n-th cut point also gets a second cut during recovery (0 = none). */
	doubleCutEvery: number;
	maxBoots: number;
	seed: number;
	onRun?: (run: TortureRun) => void;
}

export interface TortureRun {
	cuts: number[];
	violations: string[];
	refetched: number;
	bootsToCompletion: number;
	resultReports: number;
}

export interface TortureSummary {
	engine: EngineName;
	transport: "http";
	totalOps: number;
	cutPointsTried: number;
	doubleCuts: number;
	violations: string[];
	refetchPerCut: { mean: number; max: number };
	bootsToCompletion: { mean: number; max: number };
	duplicateReports: number;
	seconds: number;
}

export async function torture(options: TortureOptions): Promise<TortureSummary> {
	const started = performance.now();
	const work = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-torture-"));
	const www = path.join(work, "www");
	fs.mkdirSync(www);
	const image = makeAppImage({ size: options.imageBytes, version: "7.7.7" });
	const published = sha256Hex(image);
	fs.writeFileSync(path.join(www, "app.bin"), image);
	const server = await startUpdateServer({ dir: www, port: 0 });
	const url = `${server.url}/app.bin`;
	const config = { checkpointBytes: options.checkpointBytes, backoffBaseMs: 100 };
	const pristine = path.join(work, "pristine");
	prepareFactoryBoard(pristine);
	let random = options.seed >>> 0;
	const next = () => (random = (Math.imul(random, 1664525) + 1013904223) >>> 0) / 2 ** 32;
	try {
		const whole = await runDevice({ dir: copyBoard(pristine, work, "whole"), engine: options.engine, url, config });
		if (whole.result !== 1) throw new Error(`the uncut update failed with ${whole.result}`);
		const totalOps = whole.ops;
		const runs: TortureRun[] = [];
		let doubleCuts = 0;
		for (let cut = 1; cut <= totalOps; cut += options.stride) {
			const board = copyBoard(pristine, work, `cut-${cut}`);
			const reports: DeviceReport[] = [];
			const onEvent = (event: DeviceReport) => { if (event.event === "result" || event.event === "boot") reports.push(event); };
			const cuts = [cut];
			let fetched = 0;
			const first = await runDevice({ dir: board, engine: options.engine, url, config, cutAfterOps: cut, onEvent });
			fetched += first.bytesFetched;
			const violations: string[] = [];
			if (first.end !== "power-cut") violations.push(`cut ${cut} did not land`);
			// Like an LwM2M server whose write was never acknowledged, write the Package URI again.
			let request = first.requestAcknowledged ? undefined : url;
			if (options.doubleCutEvery && (cuts[0] % options.doubleCutEvery === 0)) {
				const left = (await runDevice({ dir: copyBoard(board, work, `probe-${cut}`), engine: options.engine, url: request, config })).ops;
				if (left > 0) {
					const second = 1 + Math.floor(next() * left);
					const recovery = await runDevice({ dir: board, engine: options.engine, url: request, config, cutAfterOps: second, onEvent });
					fetched += recovery.bytesFetched;
					if (recovery.requestAcknowledged) request = undefined;
					cuts.push(second);
					doubleCuts++;
				}
			}
			const final = await runDevice({ dir: board, engine: options.engine, url: request, config, onEvent, maxBoots: options.maxBoots });
			fetched += final.bytesFetched;
			for (const boot of reports.filter((event) => event.event === "boot"))
				if (!boot.version) violations.push(`booted slot ${boot.slot} without a valid image`);
			if (final.running.sha256 !== published) violations.push(`running ${final.running.version}, not the published image`);
			if (final.result !== 1) violations.push(`final result ${final.result}`);
			if (final.boots > options.maxBoots) violations.push(`${final.boots} boots to complete`);
			const results = reports.filter((event) => event.event === "result");
			if (results.length === 0) violations.push("final result never reported");
			if (new Set(results.map((event) => `${event.updateId}:${event.result}`)).size > 1) violations.push("conflicting results reported");
			const refetched = fetched - image.length;
			if (refetched > cuts.length * (options.checkpointBytes + defaultFragmentBytes)) violations.push(`re-fetched ${refetched} bytes for ${cuts.length} cut(s)`);
			const run = { cuts, violations, refetched, bootsToCompletion: final.boots, resultReports: results.length };
			runs.push(run);
			options.onRun?.(run);
			fs.rmSync(board, { recursive: true, force: true });
		}
		const perCut = runs.map((run) => run.refetched / run.cuts.length);
		const boots = runs.map((run) => run.bootsToCompletion);
		return {
			engine: options.engine,
			transport: "http",
			totalOps,
			cutPointsTried: runs.length,
			doubleCuts,
			violations: runs.flatMap((run) => run.violations.map((v) => `cut ${run.cuts.join("+")}: ${v}`)),
			refetchPerCut: { mean: Math.round(mean(perCut)), max: Math.max(...perCut) },
			bootsToCompletion: { mean: Number(mean(boots).toFixed(2)), max: Math.max(...boots) },
			duplicateReports: runs.filter((run) => run.resultReports > 1).length,
			seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
		};
	}
	finally {
		await server.close();
		fs.rmSync(work, { recursive: true, force: true });
	}
}

function copyBoard(from: string, work: string, name: string): string {
	const to = path.join(work, name);
	fs.rmSync(to, { recursive: true, force: true });
	fs.cpSync(from, to, { recursive: true });
	return to;
}

function mean(values: number[]): number {
	return values.length ? values.reduce((sum, value) => sum + value, 0) / values.length : 0;
}

export function tortureTable(summaries: TortureSummary[]): string {
	const lines = [
		"| transport | engine | writes in the life cycle | cut points tried | double cuts | violations | re-fetched per cut (mean / max) | boots to completion (mean / max) | repeated result reports | seconds |",
		"|---|---|---|---|---|---|---|---|---|---|",
	];
	for (const s of summaries)
		lines.push(`| ${s.transport} | ${s.engine} | ${s.totalOps} | ${s.cutPointsTried} | ${s.doubleCuts} | ${s.violations.length} | ${s.refetchPerCut.mean} / ${s.refetchPerCut.max} B | ${s.bootsToCompletion.mean} / ${s.bootsToCompletion.max} | ${s.duplicateReports} | ${s.seconds} |`);
	return lines.join("\n");
}
