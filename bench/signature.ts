// One Secure Boot v2 verification on the xs engine (xsnap) and the node engine: `node --import
// ./host-sim/register.mjs bench/signature.ts`. Times checkImage's pass (with the signed-data digest riding it) and
// ImageTrust.refuses (running image's keys, the block's CRC, key digest, byte order, the signature check: here
// through the simulated FFI into Node BigInt arithmetic, on the chip Mbed TLS's PSA) for a 1 MiB image.

import * as fs from "node:fs";
import * as path from "node:path";
import { runDevice } from "../host-sim/device";
import { makeAppImage } from "../host-sim/image";
import { signImage } from "../host-sim/signing";
import { tempDir } from "../test/support/sim";

const fixtures = path.join(import.meta.dirname, "..", "test", "fixtures", "signed");
const image = makeAppImage({ size: 1024 * 1024, version: "1.0.0" });
for (const [name, key] of [["rsa-3072", "rsa3072-test-key.pem"], ["p-256", "p256-test-key.pem"]]) {
	const signed = signImage(image, [fs.readFileSync(path.join(fixtures, key))]);
	for (const engine of ["node", "xs"] as const) {
		const marks: { [label: string]: number[] } = { begin: [], checked: [], trusted: [], plain: [] };
		await runDevice({
			dir: tempDir("bench-signature"), engine, entry: "bench/signature-entry.ts", factoryImage: signed,
			onEvent: (event) => {
				if (event.event !== "log") return;
				const [label] = String(event.message).split(" ");
				marks[label]?.push(performance.now());
			},
		});
		if (marks.trusted.length !== 10) throw new Error(`${name} ${engine}: ${marks.trusted.length} of 10 verifications`);
		// The first round warms up; the median of the other nine.
		const median = (values: number[]) => values.slice(1).sort((a, b) => a - b)[4];
		const pass = median(marks.checked.map((at, i) => at - marks.begin[i]));
		const trust = median(marks.trusted.map((at, i) => at - marks.checked[i]));
		const plain = median(marks.plain.map((at, i) => at - marks.trusted[i]));
		console.log(`${name} ${engine}: checkImage over 1 MiB ${plain.toFixed(1)} ms alone, ${pass.toFixed(1)} ms with the signed-data digest; signature check ${trust.toFixed(1)} ms`);
	}
}
