// Boards and fixtures for the tests of patched updates: the detools fixtures (test/fixtures/delta/), fresh
// boards whose factory image is the patches' base, and what a board holds (its inactive slot, its record).

import * as fs from "node:fs";
import * as path from "node:path";
import { BoardStorage } from "../../host-sim/board/board-files";
import { PowerSupply } from "../../host-sim/board/power";
import { fillSlotWithNoise, prepareFactoryBoard } from "../../host-sim/device";
import { test } from "uvu";
import { startUpdateServer } from "../../host-sim/server/http-server";
import { RecordStore } from "../../src/agent/record";
import { tempDir } from "./sim";

export const deltaFixture = (name: string) => new Uint8Array(fs.readFileSync(new URL(`../fixtures/delta/${name}`, import.meta.url)));

/** The image every fixture patch makes. */
export const patchTarget = deltaFixture("new.bin");

/** Copies of one factory board (slot 1 full of noise), in a folder removed by close(). */
export class DeltaBoards {
	readonly work: string;
	#pristine: string;
	#count = 0;

	constructor(name: string) {
		this.work = tempDir(name);
		this.#pristine = path.join(this.work, "pristine");
		prepareFactoryBoard(this.#pristine);
		fillSlotWithNoise(this.#pristine, 1, 22);
	}

	next(): string {
		const dir = path.join(this.work, `board-${++this.#count}`);
		fs.cpSync(this.#pristine, dir, { recursive: true });
		return dir;
	}

	close(): void {
		fs.rmSync(this.work, { recursive: true, force: true });
	}
}

/** The inactive slot's first bytes, as long as the patched image. */
export const slotBytes = (dir: string) => BoardStorage.open(dir, new PowerSupply()).appSlot(1).read(0, patchTarget.length);

/** The download record the board holds. */
export function storedRecord(dir: string) {
	const nvs = BoardStorage.open(dir, new PowerSupply()).nvs;
	return new RecordStore({ get: (key) => nvs.get("xs-ota", key), set() {}, delete() {} }, () => {}).load();
}

/** An HTTP server over the boards' folder for the suite's tests: started before them, closed with the boards after. */
export function servedOverHttp(boards: DeltaBoards): { readonly url: string } {
	let server: Awaited<ReturnType<typeof startUpdateServer>>;
	test.before(async () => {
		server = await startUpdateServer({ dir: boards.work, port: 0 });
	});
	test.after(async () => {
		await server.close();
		boards.close();
	});
	return { get url() { return server.url; } };
}
