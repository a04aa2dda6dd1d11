// RAM bench only: the product's main (src/main.ts) with the XS heap sampled through the update, for the
// Linux simulator builds in bench/ram/<target>/manifest.json (each with one ESP32 target's XS creation sizes).
//
// Every 50 ms, and at each phase change, it collects garbage and reads the heap (heap.c): "live" is what is
// alive then; "metered" is the highest use since the previous reading, garbage included, which XS keeps
// below the heap it has (it collects before it grows, and a fixed heap never grows). Each phase ends with:
//   ram: <phase> live <slots> slots <bytes> B, metered <slots> slots <bytes> B, reserved <slots> slots <bytes> B, <n> samples
// Phases: runtime (one reading before the agent exists: the runtime's own share), start (the agent built,
// restored and started), idle (nothing to do), download, verify (from the last byte to State 2: the image read
// back and hashed), install (State 2 to 3), switch (set the boot slot, restart: no reading, the restart ends
// the launch); after the reboot: start, confirm (self-test, mark valid), report (the result) and idle. A launch
// killed mid-download reports only the phases that ended; the next one resumes, in download from its start.

import config from "mc/config";
import Timer from "timer";
import { createUpdater } from "main";
import { resultNames, stateNames } from "agent/firmware-object";
import heap from "ram-heap";

class Meter {
	#phase = "";
	#live = [0, 0];
	#metered = [0, 0];
	#reserved = [0, 0];
	#samples = 0;
	#timer;
	updater;

	constructor() {
		this.#timer = Timer.repeat(() => this.sample(), 50);
	}

	sample() {
		const [slots, chunks, reservedSlots, reservedChunks, peakSlots, peakChunks] = heap(true);
		this.#live = [Math.max(this.#live[0], slots), Math.max(this.#live[1], chunks)];
		this.#metered = [Math.max(this.#metered[0], peakSlots), Math.max(this.#metered[1], peakChunks)];
		this.#reserved = [reservedSlots, reservedChunks];
		this.#samples++;
	}

	get phase() {
		return this.#phase;
	}

	// The reading at a change ends the phase that was running: a phase is what was read during it and at its end.
	enter(phase) {
		if (phase === this.#phase) return;
		this.sample();
		if (this.#phase) this.#report();
		this.#phase = phase;
		this.#live = [0, 0];
		this.#metered = [0, 0];
		this.#samples = 0;
	}

	end() {
		this.sample();
		this.#report();
		Timer.clear(this.#timer);
		trace("ram: done\n");
	}

	#report() {
		const [live, metered, reserved] = [this.#live, this.#metered, this.#reserved];
		trace(`ram: ${this.#phase} live ${live[0]} slots ${live[1]} B, metered ${metered[0]} slots ${metered[1]} B, reserved ${reserved[0]} slots ${reserved[1]} B, ${this.#samples} samples\n`);
	}
}

function log(message) {
	trace(`xs-ota: ${message}\n`);
}

export default function main() {
	const meter = new Meter();
	meter.enter("runtime");
	meter.enter("start");
	let reported = false;
	const updater = createUpdater({
		maintenance: (status, kind) => log(`${kind} maintenance ${status}`),
		postponed: (next) => log(`scheduled maintenance postponed to ${next}`),
		status(state, result) {
			log(`State ${state} (${stateNames[state]}), Update Result ${result} (${resultNames[result]})`);
			if (state === 1) meter.enter("download");
			else if (state === 2) meter.enter("install");
			else if (state === 3) meter.enter(meter.phase === "start" ? "confirm" : "switch");	// confirm: the new image's first boot
			else if (state === 0 && result !== 0) meter.enter("report");
		},
		progress(received, total) {
			log(`${received} of ${total} bytes`);
			if (received === total) meter.enter("verify");
		},
		result(updateId, result, version, reason) {
			log(`update ${updateId} ended: ${resultNames[result]} ${version}${reason ? ` (${reason})` : ""}`);
			if (!reported) {
				reported = true;
				Timer.set(() => {
					meter.enter("idle");
					Timer.set(() => meter.end(), 500);
				}, 200);
			}
			return true;
		},
		unreachable: (reason) => log(`aws iot jobs stopped: ${reason}`),
	});
	const { agent, start } = updater;
	meter.updater = updater;	// held for the idle readings: with nothing armed the agent would otherwise be garbage
	start();
	const update = typeof config.update === "string" ? config.update : "";
	if (agent.state === 0 && update && update !== agent.packageUri) {
		meter.enter("idle");
		Timer.set(() => agent.request({ uri: update, automatic: true }), 500);
	}
	else if (agent.state === 1) meter.enter("download");	// relaunched mid-download (the bench's power cut): it resumes
	else if (agent.state === 3) meter.enter("confirm");
}
