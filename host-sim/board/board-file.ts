// A file of a board's storage, opened at its first use. A powered board keeps its files open until power-off
// (Board.shutDown closes them); anyone else reading a board's folder gets them closed before the next turn of
// the event loop, so a forgotten close costs no descriptor.

import * as fs from "node:fs";

export class BoardFile {
	readonly path: string;
	readonly #untilClosed: boolean;
	#fd: number | undefined;

	constructor(path: string, untilClosed: boolean) {
		this.path = path;
		this.#untilClosed = untilClosed;
	}

	/** The descriptor, the file opened at first use: created when `create`, else undefined while it does not exist. */
	open(create: boolean): number | undefined {
		if (this.#fd === undefined) {
			try {
				this.#fd = fs.openSync(this.path, fs.constants.O_RDWR | (create ? fs.constants.O_CREAT : 0));
			}
			catch (error) {
				if (!create && (error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
				throw error;
			}
			if (!this.#untilClosed) setImmediate(() => this.close());
		}
		return this.#fd;
	}

	/** open(true): the file, created if need be. */
	get fd(): number {
		return this.open(true)!;
	}

	close(): void {
		if (this.#fd === undefined) return;
		fs.closeSync(this.#fd);
		this.#fd = undefined;
	}
}

/** What HeldWrites holds: a file with changes not yet written. */
export interface HeldWriter {
	flush(): void;
}

/**
	A powered board's writes to its files, held until the end of the turn of the event loop so that a run of
	writes to one file goes out in one system call, and sent in the order they were made: a write to another
	file first sends the one held. A killed process therefore leaves the files as a power cut at some earlier
	write would (the state after a prefix of the writes), never a later write without an earlier one.
*/
export class HeldWrites {
	#held: HeldWriter | undefined;
	#turnEnds = false;

	hold(writer: HeldWriter): void {
		if (this.#held !== writer) this.flush();
		this.#held = writer;
		if (this.#turnEnds) return;
		this.#turnEnds = true;
		setImmediate(() => {
			this.#turnEnds = false;
			this.flush();
		});
	}

	flush(): void {
		const held = this.#held;
		this.#held = undefined;
		held?.flush();
	}
}