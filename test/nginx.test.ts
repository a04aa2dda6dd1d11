// The done-when of the HTTP update, against a real server: a 1 MiB update through Debian's nginx, cut at ten
// random persistent writes across download, verify, switch and first boot, on both engines.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { startNginx, type NginxServer } from "../host-sim/server/nginx";
import { defaultFragmentBytes } from "../host-sim/board/network";
import { publish, remainingOps, run, seeded, tempDir } from "./support/sim";

// One checkpoint interval plus the fragment in flight per cut: see host-sim/torture.ts.
const refetchPerCut = 16384 + defaultFragmentBytes;
let www: string;
let nginx: NginxServer;

test.before(async () => {
	www = tempDir("nginx-www");
	nginx = await startNginx({ dir: www });
});
test.after(async () => {
	await nginx.close();
	fs.rmSync(www, { recursive: true, force: true });
});

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: 1 MiB through nginx survives ten cuts and fetches at most one checkpoint more per cut`, async () => {
		const image = publish(www, `app-${engine}.bin`, 1024 * 1024, "5.0.0");
		const board = tempDir("board");
		const random = seeded(engine === "xs" ? 11 : 5);
		let url: string | undefined = `${nginx.url}/app-${engine}.bin`;
		let fetched = 0;
		const states = new Set<number>();
		for (let cut = 0; cut < 10; cut++) {
			const left = url ? 600 : await remainingOps(board, engine);
			const span = cut % 3 === 1 ? Math.min(left, 12) : left;
			const cutAfterOps = left - Math.floor(random() * span);
			const outcome = await run({ dir: board, engine, url, cutAfterOps });
			url = undefined;
			assert.is(outcome.end, "power-cut");
			fetched += outcome.bytesFetched;
			states.add(outcome.state);
		}
		const final = await run({ dir: board, engine });
		fetched += final.bytesFetched;
		assert.is(final.result, 1);
		assert.is(final.running.version, "5.0.0");
		assert.is(final.running.sha256, image.sha256);
		assert.ok(fetched <= image.bytes.length + 10 * refetchPerCut, `fetched ${fetched}`);
		assert.ok(states.size >= 2, `cuts hit only states ${[...states]}`);
	});

	test(`${engine}: a file replaced on nginx between cuts ends with the new file`, async () => {
		const name = `swap-${engine}.bin`;
		publish(www, name, 256 * 1024, "6.0.0");
		const board = tempDir("board");
		assert.is((await run({ dir: board, engine, url: `${nginx.url}/${name}`, cutAfterOps: 100 })).end, "power-cut");
		const replacement = publish(www, name, 256 * 1024, "6.0.1");
		const later = new Date(Date.now() + 5000);
		fs.utimesSync(path.join(www, name), later, later);
		const final = await run({ dir: board, engine });
		assert.is(final.result, 1);
		assert.is(final.running.sha256, replacement.sha256);
	});
}

test.run();
