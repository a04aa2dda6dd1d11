// The persisted job list: what a cut at any preference write leaves (the old list or the new one, never a
// mix), corrupt generations, the history budget, and the mapping from Object 5 states to job states.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { type Job, JobList, jobFor, jobListKeys, jobStateOf } from "../src/agent/job-list";
import { Result, State } from "../src/agent/firmware-object";
import { emptyRecord } from "../src/agent/record";
import type { KeyValueStore, StoredValue } from "../src/platform/ports";
import { PreferenceStore } from "../host-sim/board/nvs";
import { PowerCutError, PowerSupply } from "../host-sim/board/power";
import { tempDir } from "./support/sim";

/** The board's NVS (real limits, non-atomic set) as the agent's store. */
function boardStore(dir: string, power = new PowerSupply()): KeyValueStore {
	const nvs = PreferenceStore.open(dir, power);
	return {
		get: (key) => nvs.get("xs-ota", key) as StoredValue | undefined,
		set: (key, value) => nvs.set("xs-ota", key, value),
		delete: (key) => nvs.delete("xs-ota", key),
	};
}

function job(updateId: number, state: Job["state"], uri = `http://updates.example.com/fleet/app-${updateId}.bin`): Job {
	const record = { ...emptyRecord(), updateId, uri, state: State.downloading };
	return { ...jobFor(record, { severity: "major", maxDeferSeconds: 3600 }, 1_700_000_000_000 + updateId), state };
}

function ids(jobs: readonly Job[]): number[] {
	return jobs.map((entry) => entry.updateId);
}

test("a saved list loads back field for field in a new power-on", () => {
	const dir = tempDir("jobs");
	const list = new JobList(boardStore(dir), () => {}, true);
	list.add(job(1, "succeeded"));
	list.add(job(2, "downloading", "http://host/ü/app.bin?recovery=restart"));
	const loaded = new JobList(boardStore(dir), () => {}, true).load();
	assert.equal(loaded, list.jobs);
	assert.is(loaded[1].uri, "http://host/ü/app.bin?recovery=restart");
	assert.is(loaded[1].parameters.maxDeferSeconds, 3600);
});

test("a cut at any write of a save leaves the old list or the new one, never a mix", () => {
	const outcomes = new Set<string>();
	for (let cut = 1; ; cut++) {
		const dir = tempDir("jobs-cut");
		const before = new JobList(boardStore(dir), () => {}, true);
		// Two generations on disk, the second one long enough to need two chunks.
		for (let i = 1; i <= 6; i++) before.add(job(i, "succeeded", `http://updates.example.com/${"x".repeat(400)}/${i}.bin`));
		const old = ids(before.jobs);
		const power = new PowerSupply({ cutAfterOps: cut });
		const during = new JobList(boardStore(dir, power), () => {}, true);
		during.load();
		let completed = true;
		try {
			during.add(job(7, "downloading"));
		}
		catch (error) {
			if (!(error instanceof PowerCutError)) throw error;
			completed = false;
		}
		const logs: string[] = [];
		const after = ids(new JobList(boardStore(dir), (line) => logs.push(line), true).load());
		const expectedNew = [...old, 7].slice(-7);
		assert.ok(JSON.stringify(after) === JSON.stringify(old) || JSON.stringify(after) === JSON.stringify(expectedNew), `cut at ${cut}: ${after}`);
		if (completed) assert.equal(after, expectedNew, "an uncut save is loaded");
		outcomes.add(JSON.stringify(after) === JSON.stringify(old) ? "old" : "new");
		fs.rmSync(dir, { recursive: true, force: true });
		if (completed) break;
	}
	assert.equal([...outcomes].sort(), ["new", "old"], "some cuts keep the old list, the last ones the new");
});

test("a corrupt or torn generation is logged and the other one is used", () => {
	const dir = tempDir("jobs-corrupt");
	const store = boardStore(dir);
	const list = new JobList(store, () => {}, true);
	list.add(job(1, "succeeded"));
	list.add(job(2, "failed"));
	// The newest generation's chunk loses a byte: its CRC no longer matches.
	const newest = jobListKeys.find((key) => {
		const other = jobListKeys.find((candidate) => candidate !== key)!;
		return new DataView(store.get(key) as ArrayBuffer).getUint32(4, true) > new DataView(store.get(other) as ArrayBuffer).getUint32(4, true);
	})!;
	const chunk = new Uint8Array(store.get(`${newest}0`) as ArrayBuffer);
	chunk[10] ^= 1;
	store.set(`${newest}0`, chunk.buffer);
	const logs: string[] = [];
	assert.equal(ids(new JobList(store, (line) => logs.push(line), true).load()), [1], "the older, intact generation");
	assert.ok(logs.some((line) => line.includes(`job list ${newest} discarded: crc mismatch`)), logs.join("\n"));
	store.set(jobListKeys[0], "not a header");
	store.set(jobListKeys[1], new ArrayBuffer(3));
	assert.equal(ids(new JobList(store, () => {}, true).load()), [], "nothing trustworthy: an empty list, not a crash");
});

test("history is bounded: the oldest finished jobs go first, the active job never", () => {
	const dir = tempDir("jobs-trim");
	const list = new JobList(boardStore(dir), () => {}, true);
	list.add(job(1, "downloading"));
	for (let i = 2; i <= 20; i++) list.add(job(i, "succeeded", `http://updates.example.com/${"y".repeat(300)}/${i}.bin`));
	const kept = ids(new JobList(boardStore(dir), () => {}, true).load());
	assert.is(kept[0], 1, "the active job stays");
	assert.ok(kept.length <= 9, `kept ${kept.length}`);
	assert.equal(kept.slice(1), kept.slice(1).sort((a, b) => a - b), "history in order");
	assert.is(kept[kept.length - 1], 20, "the newest finished job stays");
	const generations = jobListKeys.map((key) => PreferenceStore.open(dir, new PowerSupply()).get("xs-ota", key)).filter(Boolean).length;
	assert.is(generations, 2, "two generations");
});

test("with reboot persistence off nothing is written, and a stored list is forgotten", () => {
	const dir = tempDir("jobs-off");
	new JobList(boardStore(dir), () => {}, true).add(job(1, "downloading"));
	const off = new JobList(boardStore(dir), () => {}, false);
	assert.equal(off.load(), []);
	off.add(job(2, "downloading"));
	assert.equal(ids(off.jobs), [2], "kept in RAM");
	const nvs = PreferenceStore.open(dir, new PowerSupply());
	assert.equal(nvs.keys("xs-ota").filter((key) => key.startsWith("jl.")), [], "no header or chunk left in NVS");
});

test("job states follow Object 5: deferred is Downloaded with 11, a cancel or reset is cancelled", () => {
	assert.is(jobStateOf(State.downloading, Result.initial), "downloading");
	assert.is(jobStateOf(State.downloaded, Result.initial), "downloaded");
	assert.is(jobStateOf(State.downloaded, Result.deferred), "deferred");
	assert.is(jobStateOf(State.updating, Result.initial), "installing");
	assert.is(jobStateOf(State.idle, Result.success), "succeeded");
	assert.is(jobStateOf(State.idle, Result.integrityFailure), "failed");
	assert.is(jobStateOf(State.idle, Result.cancelled), "cancelled");
	const list = new JobList(boardStore(tempDir("jobs-follow")), () => {}, true);
	const record = { ...emptyRecord(), updateId: 5, uri: "http://h/a.bin", state: State.downloading };
	list.add(jobFor(record, { severity: "critical", maxDeferSeconds: 0 }, 1000));
	list.follow({ ...record, state: State.downloaded, result: Result.deferred }, 2000);
	list.follow({ ...record, state: State.updating }, 3000);
	const followed = list.find(5)!;
	assert.equal([followed.state, followed.previousState, followed.downloadTime, followed.installTime, followed.lastActivity], ["installing", "deferred", 2000, 3000, 3000]);
	assert.is(followed.id, "lwm2m-5", "a server's request");
	const app = jobFor({ ...emptyRecord(), updateId: 6, uri: "http://h/b.bin", automatic: true }, { severity: "major", maxDeferSeconds: 0 }, 4000);
	assert.equal([app.id, app.source], ["app-6", "app"], "the app's own request (config.update, --url) is not labelled as an LwM2M server's");
	assert.is(followed.parameters.policy, "save point");
});

test.run();
