// DTLS on both engines (bench/dtls-entry.ts against host-sim's DTLS server over loopback UDP): the time of one
// PSK handshake from the first ClientHello to the verified server Finished (the host server's share included),
// the record layer's cost per 1 KiB block (one seal and one open, AES-CCM-8 in our TypeScript over the AES
// block port), and, under xsnap, the live XS heap the connected session holds. Standalone:
// `node --import ./host-sim/register.mjs bench/dtls.ts`; `npm run bench` includes it.

import { runDevice } from "../host-sim/device";
import { DtlsServer, onlyIdentity } from "../host-sim/server/dtls-server";
import { tempDir } from "../test/support/sim";

export interface DtlsBench {
	engine: "node" | "xs";
	handshakeMs: number;
	perKiBMs: number;
	/** Live XS slots the connected session adds (xs only). */
	sessionSlots: number | undefined;
}

const psk = { identity: "bench", key: new TextEncoder().encode("bench-dtls-key16") };
const credentials = { "psk-identity": new TextEncoder().encode(psk.identity), "psk-key": psk.key };

export async function dtlsBench(): Promise<DtlsBench[]> {
	const server = await DtlsServer.start({ key: onlyIdentity(psk) });
	const config = { dtlsPort: server.port };
	try {
		const rows: DtlsBench[] = [];
		for (const engine of ["node", "xs"] as const) {
			const handshakes: number[] = [], perKiB: number[] = [];
			for (let round = 0; round < 5; round++) {
				const marks: { [label: string]: number } = {};
				await runDevice({
					dir: tempDir("bench-dtls"), engine, entry: "bench/dtls-entry.ts", credentials, provisioned: true, config, runFor: 3000,
					onEvent: (event) => {
						if (event.event === "log") marks[String(event.message).split(" ")[0]] = performance.now();
					},
				});
				if (marks.sealed === undefined) throw new Error(`dtls bench ${engine}: no handshake (${Object.keys(marks).join(", ")})`);
				handshakes.push(marks.connected - marks.begin);
				perKiB.push((marks.sealed - marks.records) / 100);
			}
			let sessionSlots: number | undefined;
			if (engine === "xs") {
				// Live slots after gc, read after each event: the last before "begin", and once connected.
				let last = 0, baseline = 0, connected = 0;
				await runDevice({
					dir: tempDir("bench-dtls"), engine, entry: "bench/dtls-entry.ts", credentials, provisioned: true, config, runFor: 3000, heapAfterGc: true,
					onEvent: (event) => {
						const label = event.event === "log" ? String(event.message) : "";
						if (label === "begin") baseline = last;
						if (label === "records") connected = last;
					},
					onHeap: (slots) => { last = slots; },
				});
				sessionSlots = connected - baseline;
			}
			const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1];
			rows.push({ engine, handshakeMs: median(handshakes), perKiBMs: median(perKiB), sessionSlots });
		}
		return rows;
	}
	finally {
		await server.close();
	}
}

export function dtlsMarkdown(rows: DtlsBench[]): string {
	return ["", "### DTLS 1.2 PSK (bench/dtls.ts)", "", "| engine | handshake | per 1 KiB record (seal + open) | XS heap of a connected session |", "|---|---|---|---|",
		...rows.map((row) => `| ${row.engine} | ${row.handshakeMs.toFixed(1)} ms | ${row.perKiBMs.toFixed(2)} ms | ${row.sessionSlots === undefined ? "—" : `${row.sessionSlots} slots`} |`), ""].join("\n");
}

if (import.meta.filename === process.argv[1]) console.log(dtlsMarkdown(await dtlsBench()));
